/**
 * Runs only the core suite's MemoryStore vs Map section:
 * `npx tsx bench/memory-only.ts [--quick] [--reps N]`.
 */
import os from "node:os";
import { memoryStore } from "./lib/memory.js";
import { FULL, QUICK } from "./lib/plan.js";

const quick = process.argv.includes("--quick");
const repsAt = process.argv.indexOf("--reps");
const base = quick ? QUICK : FULL;
const plan = repsAt > 0 ? { ...base, memoryRepetitions: Number(process.argv[repsAt + 1]) } : base;
const before = os.loadavg();
const r = await memoryStore(plan, undefined);
const after = os.loadavg();
console.log(
  `MemoryStore ${r.subjectMs.toFixed(0)} ms, Map ${r.baselineMs.toFixed(0)} ms → ${r.ratio.toFixed(2)}× (target ≤ ${r.target}×, ${r.met ? "met" : "NOT met"}); ` +
    `samples MemoryStore [${r.samples.subject.map((s) => s.toFixed(0)).join(", ")}] Map [${r.samples.baseline.map((s) => s.toFixed(0)).join(", ")}]; ` +
    `load average ${before.map((l) => l.toFixed(2)).join(" ")} → ${after.map((l) => l.toFixed(2)).join(" ")}`,
);
