/**
 * The soak benchmark (a benchmark, not a test): 8 processes for several
 * minutes against the FileStore and the FileEventStore, with mixed saves
 * (sets and unsets), loads, appends, subscriptions and compactions over
 * 200 namespaces. It reports each process's maximum RSS (`VmHWM`) and
 * maximum open descriptors (`/proc/<pid>/fd`, sampled every 200 ms),
 * throughput over time, and acknowledged writes lost: at the end every
 * process closes its stores, opens them anew and reads back every write
 * that was acknowledged (must be 0 lost).
 *
 * How the processes share the work: each owns its directory (one
 * FileStore, one FileEventStore) and 25 of the 200 namespaces. The
 * FileEventStore is single-writer per directory (a `LOCK` file) and the
 * FileStore is meant to be run by one process per directory too, so no
 * two processes write one directory: the soak measures 8 stores working
 * side by side on one disk, not several writers of one store. Inside a
 * process, 4 loops run at once (saves of different loops share group
 * commits); each loop owns its keys and streams, so that what the last
 * acknowledged write of a key or stream was is known exactly.
 *
 * Run: `npm run bench -- soak` (not in the default set: it takes
 * minutes). Duration: 180 s, `--quick` 20 s, or `STATELOG_SOAK_SECONDS`.
 * Also runnable alone: `npx tsx bench/soak.ts [--quick] [--seconds N]`.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ChangeInput } from "../src/core/change.js";
import { createEvent } from "../src/events/index.js";
import { FileEventStore } from "../src/file/index.js";
import { openFileStore } from "./lib/filestore.js";
import { type BenchOptions, withTempDir } from "./lib/measure.js";

const PROCESSES = 8;
const NAMESPACES = 200;
const LOOPS = 4;
const KEYS_PER_LOOP = 10;
const SAMPLE_MS = 200;
const REPORT_MS = 1000;
const self = fileURLToPath(import.meta.url);

/** What one worker process reports at the end. */
interface WorkerResult {
  readonly worker: number;
  readonly ops: Record<Op, number>;
  readonly errors: number;
  readonly firstError?: string;
  readonly acknowledged: number;
  readonly lost: number;
  readonly subscriptionMissed: number;
  readonly maxFds: number;
  readonly maxRssBytes: number;
  readonly verifyMs: number;
}

type Op = "save" | "load" | "append" | "subscribe" | "compact";
const OPS: readonly Op[] = ["save", "load", "append", "subscribe", "compact"];

/** A small seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fdCount = (pid: number | "self"): number => readdirSync(`/proc/${pid}/fd`).length;
function rssHighWater(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) * 1024 : process.memoryUsage().rss;
}

/** One worker process: its own stores, 25 namespaces, {@link LOOPS} loops until `seconds` have passed. */
async function worker(index: number, dir: string, seconds: number): Promise<WorkerResult> {
  let maxFds = fdCount("self");
  const sampler = setInterval(() => {
    maxFds = Math.max(maxFds, fdCount("self"));
  }, SAMPLE_MS);
  const namespaces = Array.from(
    { length: NAMESPACES / PROCESSES },
    (_, j) => `ns-${index * (NAMESPACES / PROCESSES) + j}`,
  );
  const storeDir = path.join(dir, `w${index}`, "store");
  const eventsDir = path.join(dir, `w${index}`, "events");
  const store = await openFileStore(storeDir);
  const events = await FileEventStore.open({ directory: eventsDir, sync: "fsync" });
  const ops: Record<Op, number> = { save: 0, load: 0, append: 0, subscribe: 0, compact: 0 };
  let errors = 0;
  let firstError: string | undefined;
  /** namespace → key → sequence of the last acknowledged save (-1: unset). */
  const savedKeys = new Map<string, Map<string, number>>(namespaces.map((ns) => [ns, new Map()]));
  /** stream → ids of the acknowledged appends, in order. */
  const appended = new Map<string, string[]>();
  let acknowledged = 0;
  // One long-lived subscription over every event, checked at the end.
  let delivered = 0;
  const all = events.subscribeAll(0);
  const consumer = (async () => {
    for await (const _ of all) delivered++;
  })();
  const begin = Date.now();
  const deadline = begin + seconds * 1000;
  // Progress since this process's loops began (processes start a few seconds apart: each compiles the sources).
  const report = setInterval(() => {
    process.stdout.write(`${JSON.stringify({ progress: { ...ops }, t: Date.now() - begin })}\n`);
  }, REPORT_MS);

  async function loop(loopIndex: number): Promise<void> {
    const random = prng(index * 100 + loopIndex + 1);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    let seq = 0;
    while (Date.now() < deadline) {
      const r = random();
      const ns = pick(namespaces);
      try {
        if (r < 0.45) {
          const s = ++seq;
          const keys = new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => random()));
          const changes: ChangeInput[] = [...keys].map((k) => {
            const entityId = `l${loopIndex}-k${Math.floor(k * KEYS_PER_LOOP)}`;
            return random() < 0.1
              ? { namespace: ns, changeType: "unset", entityType: "item", entityId, timestamp: new Date() }
              : {
                  namespace: ns,
                  changeType: "set",
                  entityType: "item",
                  entityId,
                  entity: { s, loop: loopIndex, pad: "x".repeat(50 + Math.floor(random() * 400)) },
                  timestamp: new Date(),
                };
          });
          await store.save(changes);
          const keysOf = savedKeys.get(ns) as Map<string, number>;
          for (const c of changes) keysOf.set(c.entityId, c.changeType === "unset" ? -1 : s);
          acknowledged++;
          ops.save++;
        } else if (r < 0.7) {
          await store.load(ns);
          ops.load++;
        } else if (r < 0.93) {
          const stream = `${ns}-l${loopIndex}`;
          const batch = Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
            createEvent("tick", { loop: loopIndex, pad: "e".repeat(Math.floor(random() * 200)) }),
          );
          await events.append(stream, batch);
          const ids = appended.get(stream) ?? [];
          for (const e of batch) ids.push(e.id);
          appended.set(stream, ids);
          acknowledged++;
          ops.append++;
        } else if (r < 0.98) {
          // A short-lived subscription to one of this loop's streams, read until it has caught up.
          const stream = `${ns}-l${loopIndex}`;
          const want = appended.get(stream)?.length ?? 0;
          if (want > 0) {
            const sub = events.subscribe(stream, 0);
            let n = 0;
            for await (const _ of sub) if (++n >= want) break;
            sub.close();
          }
          ops.subscribe++;
        } else {
          await store.compact(ns);
          ops.compact++;
        }
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
  }

  await Promise.all(Array.from({ length: LOOPS }, (_, l) => loop(l)));
  clearInterval(report);
  const head = events.stats().globalPosition;
  const waitUntil = Date.now() + 30_000;
  while (delivered < head && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 20));
  const subscriptionMissed = head - delivered;
  all.close();
  await consumer;
  await store.close();
  await events.close();

  // Read back every acknowledged write from stores opened anew.
  const verifyStart = Date.now();
  let lost = 0;
  const reopened = await openFileStore(storeDir);
  for (const [ns, keys] of savedKeys) {
    const loaded = new Map(
      (await reopened.load(ns))
        .filter((c) => c.changeType === "set")
        .map((c) => [c.entityId, (c.entity as { s: number }).s]),
    );
    for (const [key, s] of keys) if ((s < 0 ? undefined : s) !== loaded.get(key)) lost++;
  }
  await reopened.close();
  const reopenedEvents = await FileEventStore.open({ directory: eventsDir, sync: "fsync" });
  for (const [stream, ids] of appended) {
    const read = (await reopenedEvents.readStream(stream)).map((e) => e.id);
    for (let i = 0; i < ids.length; i++) if (read[i] !== ids[i]) lost++;
  }
  await reopenedEvents.close();
  clearInterval(sampler);
  return {
    worker: index,
    ops,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    acknowledged,
    lost,
    subscriptionMissed,
    maxFds: Math.max(maxFds, fdCount("self")),
    maxRssBytes: rssHighWater(),
    verifyMs: Date.now() - verifyStart,
  };
}

/** What the soak reports. */
export interface SoakReport {
  readonly seconds: number;
  readonly processes: number;
  readonly namespaces: number;
  readonly started: string;
  /** Operations per second of all processes together, per window of `windowSeconds` (from each process's start). */
  readonly throughput: { readonly atSeconds: number; readonly opsPerSecond: number }[];
  readonly windowSeconds: number;
  readonly totals: Record<Op, number>;
  readonly acknowledged: number;
  readonly acknowledgedLost: number;
  readonly errors: number;
  readonly subscriptionMissed: number;
  readonly maxRssBytes: number;
  readonly maxOpenFds: number;
  readonly workers: WorkerResult[];
}

/** Runs the soak: {@link PROCESSES} worker processes for `seconds`, and gathers their figures. */
export async function soak(seconds: number): Promise<SoakReport> {
  return withTempDir("soak", async (dir) => {
    const started = new Date().toISOString();
    /** Per worker: (time, ops so far) samples. */
    const progress: { t: number; total: number }[][] = Array.from({ length: PROCESSES }, () => []);
    const runs = Array.from(
      { length: PROCESSES },
      (_, i) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ["--import", "tsx", self, "--worker", JSON.stringify({ index: i, dir, seconds })],
            { stdio: ["ignore", "pipe", "inherit"] },
          );
          let buffer = "";
          let result: WorkerResult | undefined;
          child.stdout.setEncoding("utf8").on("data", (data: string) => {
            buffer += data;
            for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
              const line = JSON.parse(buffer.slice(0, nl)) as {
                progress?: Record<Op, number>;
                t?: number;
                result?: WorkerResult;
              };
              buffer = buffer.slice(nl + 1);
              if (line.progress) {
                const total = OPS.reduce((sum, op) => sum + (line.progress?.[op] ?? 0), 0);
                progress[i]?.push({ t: line.t as number, total });
              }
              if (line.result) result = line.result;
            }
          });
          child.on("exit", (code) =>
            result ? resolve(result) : reject(new Error(`soak worker ${i} exited ${code} without a result`)),
          );
        }),
    );
    const workers = await Promise.all(runs);
    const windowSeconds = seconds >= 120 ? 15 : 5;
    const throughput: SoakReport["throughput"] = [];
    for (let end = windowSeconds; end <= seconds; end += windowSeconds) {
      let ops = 0;
      for (const samples of progress)
        ops += totalAt(samples, end * 1000) - totalAt(samples, (end - windowSeconds) * 1000);
      throughput.push({ atSeconds: end, opsPerSecond: Math.round(ops / windowSeconds) });
    }
    const totals = { save: 0, load: 0, append: 0, subscribe: 0, compact: 0 };
    for (const w of workers) for (const op of OPS) totals[op] += w.ops[op];
    return {
      seconds,
      processes: PROCESSES,
      namespaces: NAMESPACES,
      started,
      throughput,
      windowSeconds,
      totals,
      acknowledged: workers.reduce((s, w) => s + w.acknowledged, 0),
      acknowledgedLost: workers.reduce((s, w) => s + w.lost, 0),
      errors: workers.reduce((s, w) => s + w.errors, 0),
      subscriptionMissed: workers.reduce((s, w) => s + w.subscriptionMissed, 0),
      maxRssBytes: Math.max(...workers.map((w) => w.maxRssBytes)),
      maxOpenFds: Math.max(...workers.map((w) => w.maxFds)),
      workers,
    };
  });
}

/** Ops a worker had done by `ms` after the start (from its samples, linear between them). */
function totalAt(samples: readonly { t: number; total: number }[], ms: number): number {
  let before = { t: 0, total: 0 };
  for (const s of samples) {
    if (s.t >= ms) {
      const span = s.t - before.t;
      return span <= 0 ? s.total : before.total + ((s.total - before.total) * (ms - before.t)) / span;
    }
    before = s;
  }
  return before.total;
}

export function formatSoak(r: SoakReport): string {
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  return [
    `soak: ${r.processes} processes × ${r.seconds} s, ${r.namespaces} namespaces (started ${r.started})`,
    `operations: ${OPS.map((op) => `${op} ${r.totals[op]}`).join(", ")}; errors ${r.errors}`,
    `throughput (ops/s, all processes, per ${r.windowSeconds} s): ${r.throughput.map((w) => w.opsPerSecond).join(" ")}`,
    `max RSS of a process: ${mib(r.maxRssBytes)}; max open descriptors of a process: ${r.maxOpenFds}`,
    `acknowledged writes: ${r.acknowledged}; lost: ${r.acknowledgedLost}; events the long-lived subscriptions missed: ${r.subscriptionMissed}`,
  ].join("\n");
}

/** The `soak` suite of `npm run bench`. @throws when an acknowledged write was lost */
export async function runSoakBenchmarks(options: BenchOptions): Promise<SoakReport> {
  const fromEnv = Number(process.env.STATELOG_SOAK_SECONDS);
  const seconds = Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : options.quick ? 20 : 180;
  const report = await soak(seconds);
  console.log(formatSoak(report));
  if (report.acknowledgedLost > 0 || report.errors > 0 || report.subscriptionMissed > 0) {
    throw Object.assign(
      new Error(`soak: ${report.acknowledgedLost} acknowledged writes lost, ${report.errors} errors`),
      {
        partialResults: report,
      },
    );
  }
  return report;
}

if (process.argv[1] === self) {
  const argv = process.argv.slice(2);
  if (argv[0] === "--worker") {
    const { index, dir, seconds } = JSON.parse(argv[1] as string) as { index: number; dir: string; seconds: number };
    const result = await worker(index, dir, seconds);
    process.stdout.write(`${JSON.stringify({ result })}\n`);
  } else {
    const at = argv.indexOf("--seconds");
    const seconds = at >= 0 ? Number(argv[at + 1]) : argv.includes("--quick") ? 20 : 180;
    const report = await soak(seconds);
    console.log(formatSoak(report));
    console.log(JSON.stringify(report));
    process.exitCode = report.acknowledgedLost > 0 ? 1 : 0;
  }
}
