/** Running a fault child (fixtures/fault-child.ts) under the I/O error shim and reading what it acknowledged. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { spawnChild } from "../file/spawn.js";
import { type Fault, readCounters, type ShimCounters, shimEnv } from "./shim.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, "fixtures", "fault-child.ts");

export interface Failure {
  readonly index: number;
  readonly code: string | undefined;
  readonly errno: string | undefined;
  readonly operation: string | undefined;
  readonly message: string | undefined;
}

export interface ChildRun {
  /** Every line the child printed. */
  readonly lines: readonly string[];
  readonly acked: number[];
  readonly failed: Failure[];
  readonly counters: ShimCounters;
}

/** A child's run without the shim: its lines and what it acknowledged. */
export type PlainRun = Omit<ChildRun, "counters">;

/**
 * Runs `role` with `args` (and `env`); resolves once the child printed
 * `done` and exited 0. At each `pause <label>` line of the child,
 * `onPause(label, pid)` runs, then the child goes on.
 */
export async function runChild(
  role: string,
  args: object,
  env: Record<string, string>,
  onPause?: (label: string, pid: number) => void | Promise<void>,
): Promise<PlainRun> {
  const child = await spawnChild(role, args, env, fixture);
  const seen = new Set<string>();
  for (;;) {
    const line = await child.waitFor((l) => l === "done" || (l.startsWith("pause ") && !seen.has(l)));
    if (line === "done") break;
    seen.add(line);
    await onPause?.(line.slice("pause ".length), child.process.pid as number);
    child.process.stdin?.write("\n");
  }
  const { code } = await child.exited;
  if (code !== 0) throw new Error(`child exited ${code}: ${child.stderr()}`);
  const acked: number[] = [];
  const failed: Failure[] = [];
  for (const line of child.lines) {
    const [word, index, ...rest] = line.split(" ");
    if (word === "ack") acked.push(Number(index));
    if (word === "fail") failed.push({ index: Number(index), ...(JSON.parse(rest.join(" ")) as object) } as Failure);
  }
  return { lines: child.lines, acked, failed };
}

/** {@link runChild} under `fault` (the I/O error shim), with the shim's counters. */
export async function runUnderShim(
  role: string,
  args: object,
  fault: Fault,
  onPause?: (label: string, pid: number) => void | Promise<void>,
): Promise<ChildRun> {
  const run = await runChild(role, args, shimEnv(fault), onPause);
  return { ...run, counters: readCounters(fault.report) };
}

/**
 * Checks a run in which the shim failed one `op` during `calls` writes: the shim was in the path (it counted the child's calls
 * and failed one), the failed descriptor was never fsynced again, exactly
 * call `failedIndex` rejected with WriteFailedError naming the errno and
 * operation, and every other call was acknowledged.
 */
export function expectOneFailedCall(
  run: ChildRun,
  op: "write" | "fsync" | "rename" | "open",
  calls: number,
  failedIndex: number,
): void {
  expect(run.counters.injected).toBe(1);
  expect(run.counters[op]).toBeGreaterThanOrEqual(calls);
  expect(run.counters.fsyncs_on_failed_fd).toBe(0);
  expect(run.failed.map((f) => f.index)).toEqual([failedIndex]);
  expect(run.failed[0]).toMatchObject({ code: "STATELOG_WRITE_FAILED", errno: "EIO", operation: op });
  expect(run.acked).toEqual([...Array(calls).keys()].filter((i) => i !== failedIndex));
}
