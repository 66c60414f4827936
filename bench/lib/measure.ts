/**
 * Timing, ratio and reporting helpers shared by the benchmarks.
 *
 * Every comparison is a ratio against a baseline measured in the same run
 * on the same machine: absolute figures on a shared, noisy machine mean
 * little, ratios a lot more.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Options every benchmark module receives from `bench/run.ts`. */
export interface BenchOptions {
  /** Smaller workload and fewer repetitions: a smoke run, not figures to record. */
  readonly quick: boolean;
  /** Cancels the run between measurements. */
  readonly signal?: AbortSignal | undefined;
}

/** How a ratio reads. */
export const RatioKind = {
  /** baseline time / statelog time: higher is better (statelog is N× as fast). */
  Speedup: "speedup",
  /** statelog time / baseline time: lower is better (statelog takes N× the baseline's time). */
  TimeRatio: "time-ratio",
} as const;
export type RatioKind = (typeof RatioKind)[keyof typeof RatioKind];

/** One measured comparison: one row of the table. */
export interface BenchResult {
  /** Which suite produced it, e.g. `"core"`. */
  readonly suite: string;
  /** What was measured, e.g. `"durable batched writes"`. */
  readonly operation: string;
  /** What statelog ran, e.g. `"FileStore (fsync)"`. */
  readonly subject: string;
  /** What it was compared with, short, e.g. `"better-sqlite3"`. */
  readonly baseline: string;
  /** How the baseline works, in full (printed as a footnote). */
  readonly baselineDetail?: string | undefined;
  /** statelog's median time, in milliseconds. */
  readonly subjectMs: number;
  /** The baseline's median time, in milliseconds. */
  readonly baselineMs: number;
  /** Units of work per measurement (changes, saves, entities), for throughput. */
  readonly units: number;
  /** Name of the unit, e.g. `"changes"`. */
  readonly unit: string;
  /** How {@link ratio} reads. */
  readonly ratioKind: RatioKind;
  /** The ratio, per {@link ratioKind}. */
  readonly ratio: number;
  /** The target, per {@link ratioKind} (a minimum for speedups, a maximum for time ratios), if there is one. */
  readonly target?: number | undefined;
  /** Whether the target was met; `undefined` without a target. */
  readonly met?: boolean | undefined;
  /** Repetitions behind each median. */
  readonly repetitions: number;
  /** Every sample, in milliseconds. */
  readonly samples: { readonly subject: number[]; readonly baseline: number[] };
  /** Anything a reader must know to judge the row. */
  readonly note?: string | undefined;
}

/** Builds a result from samples: medians, ratio and whether the target is met. */
export function compare(
  row: Omit<BenchResult, "subjectMs" | "baselineMs" | "ratio" | "met" | "repetitions" | "samples">,
  subject: number[],
  baseline: number[],
): BenchResult {
  const subjectMs = median(subject);
  const baselineMs = median(baseline);
  const ratio = row.ratioKind === RatioKind.Speedup ? baselineMs / subjectMs : subjectMs / baselineMs;
  const met =
    row.target === undefined
      ? undefined
      : row.ratioKind === RatioKind.Speedup
        ? ratio >= row.target
        : ratio <= row.target;
  return {
    ...row,
    subjectMs,
    baselineMs,
    ratio,
    met,
    repetitions: Math.min(subject.length, baseline.length),
    samples: { subject, baseline },
  };
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = (): number => performance.now();

/** Times one async call, in milliseconds. */
export async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

/** Runs `fn` `warmup` times unmeasured, then `repetitions` times measured; returns the samples (ms). */
export async function sample(
  repetitions: number,
  fn: () => Promise<number> | number,
  options: { warmup?: number; signal?: AbortSignal | undefined } = {},
): Promise<number[]> {
  for (let i = 0; i < (options.warmup ?? 0); i++) {
    options.signal?.throwIfAborted();
    await fn();
  }
  const out: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    options.signal?.throwIfAborted();
    out.push(await fn());
  }
  return out;
}

/**
 * Where benchmarks put their files: `<repo>/.bench` (ignored by git
 * and Biome), on the same disk as the work tree, so every system
 * measured writes to the same device.
 */
export const BENCH_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../.bench");

/** Runs `fn` with a fresh temp dir under {@link BENCH_ROOT}, removed afterwards. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(BENCH_ROOT, { recursive: true });
  const dir = await mkdtemp(path.join(BENCH_ROOT, `${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** "1.23 s" / "456 ms" / "78.9 µs". */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 1) return `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`;
  return `${(ms * 1000).toFixed(1)} µs`;
}

/** "123k changes/s". */
export function formatRate(units: number, ms: number, unit: string): string {
  const perSecond = (units / ms) * 1000;
  const figure =
    perSecond >= 1e6
      ? `${(perSecond / 1e6).toFixed(2)}M`
      : perSecond >= 1e3
        ? `${(perSecond / 1e3).toFixed(1)}k`
        : perSecond.toFixed(0);
  return `${figure} ${unit}/s`;
}

/** The ratio as read: "4.21× faster" or "0.73× the time". */
export function formatRatio(result: Pick<BenchResult, "ratio" | "ratioKind">): string {
  return result.ratioKind === RatioKind.Speedup
    ? `${result.ratio.toFixed(2)}× as fast`
    : `${result.ratio.toFixed(2)}× the time`;
}

/** The target as read: ">= 4× as fast" or "<= 1.0× the time". */
export function formatTarget(result: Pick<BenchResult, "target" | "ratioKind">): string {
  if (result.target === undefined) return "—";
  return result.ratioKind === RatioKind.Speedup ? `>= ${result.target}×` : `<= ${result.target}× time`;
}

/** "met" / "NOT MET" / "—". */
export function formatMet(result: Pick<BenchResult, "met">): string {
  return result.met === undefined ? "—" : result.met ? "met" : "NOT MET";
}

function cells(r: BenchResult): string[] {
  return [
    r.operation,
    `${r.subject}: ${formatMs(r.subjectMs)} (${formatRate(r.units, r.subjectMs, r.unit)})`,
    `${r.baseline}: ${formatMs(r.baselineMs)} (${formatRate(r.units, r.baselineMs, r.unit)})`,
    formatRatio(r),
    formatTarget(r),
    formatMet(r),
  ];
}

const HEADER = ["operation", "statelog", "baseline", "ratio", "target", "met?"];

/** The baselines' and rows' details, once each, as footnote lines. */
function footnotes(results: readonly BenchResult[]): string[] {
  const out = new Set<string>();
  for (const r of results) {
    if (r.baselineDetail) out.add(`${r.baseline}: ${r.baselineDetail}`);
  }
  for (const r of results) {
    if (r.note) out.add(`${r.operation} (${r.subject}): ${r.note}`);
  }
  return [...out];
}

/** Renders results as a fixed-width text table, with footnotes. */
export function table(results: readonly BenchResult[]): string {
  const rows = results.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cs: string[]) => cs.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  return [
    line(HEADER),
    widths.map((w) => "-".repeat(w)).join("-|-"),
    ...rows.map(line),
    "",
    ...footnotes(results).map((f) => `  * ${f}`),
  ].join("\n");
}

/** Renders results as a Markdown table with footnotes (for docs/performance.md). */
export function markdownTable(results: readonly BenchResult[]): string {
  return [
    `| ${HEADER.join(" | ")} |`,
    `| ${HEADER.map(() => "---").join(" | ")} |`,
    ...results.map((r) => `| ${cells(r).join(" | ")} |`),
    "",
    ...footnotes(results).map((f) => `- ${f}`),
  ].join("\n");
}

let gcFn: (() => void) | undefined;
/** Runs a full garbage collection between measurements, so one measurement's garbage is not collected in the next. */
export async function collectGarbage(): Promise<void> {
  if (!gcFn) {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    gcFn = vm.runInNewContext("gc") as () => void;
  }
  gcFn();
}
