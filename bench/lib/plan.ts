/** How large the core benchmarks' workloads are and how often each measurement repeats. */
import { FULL_WORKLOAD, QUICK_WORKLOAD, type WorkloadOptions } from "./workload.js";

/** The suite name the core rows carry. */
export const SUITE = "core";

/** Prints one progress line of the core suite. */
export function log(message: string): void {
  console.log(`[core] ${message}`);
}

/** How much each measurement repeats. */
export interface Plan {
  readonly workload: WorkloadOptions;
  /** A short workload run once per system before measuring (JIT, page cache, file system). */
  readonly warmupWorkload: WorkloadOptions;
  readonly writeRepetitions: number;
  readonly restoreRepetitions: number;
  readonly concurrentWriters: number;
  readonly savesPerWriter: number;
  readonly concurrentRepetitions: number;
  readonly memoryRepetitions: number;
}

export const FULL: Plan = {
  workload: FULL_WORKLOAD,
  warmupWorkload: { ...FULL_WORKLOAD, changes: 30_000, entities: 10_000 },
  writeRepetitions: 3,
  restoreRepetitions: 5,
  concurrentWriters: 32,
  savesPerWriter: 50,
  concurrentRepetitions: 5,
  memoryRepetitions: 3,
};

export const QUICK: Plan = {
  workload: QUICK_WORKLOAD,
  warmupWorkload: { ...QUICK_WORKLOAD, changes: 5_000, entities: 1_000 },
  writeRepetitions: 2,
  restoreRepetitions: 3,
  concurrentWriters: 32,
  savesPerWriter: 10,
  concurrentRepetitions: 2,
  memoryRepetitions: 2,
};
