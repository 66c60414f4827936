/**
 * The figures of a fault test, for the reliability report
 * (docs/reliability.md): each test writes its rows to
 * `test-output/reliability/<file>.json` (gitignored), replacing the file of
 * its previous run.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** One fault, as the report's table shows it. */
export interface ReliabilityRow {
  /** The fault, e.g. "SIGKILL of all 3 NATS nodes during writes". */
  readonly fault: string;
  /** How it was injected. */
  readonly injection: string;
  /** How many times it was injected in this run. */
  readonly count: number;
  /** Writes acknowledged to the caller before or during the fault. */
  readonly acknowledgedWrites: number;
  /** Acknowledged writes missing (or changed) when read back after recovery. */
  readonly acknowledgedWritesLost: number;
  /** Stores (buckets, streams, topics) that would not open or load after recovery. */
  readonly storesNotLoading: number;
  /** From the end of the fault to the first acknowledged write after it, in ms. */
  readonly recoveryMs: number;
  /** Anything else the test measured (rejections by kind, configuration, versions). */
  readonly details?: Record<string, unknown>;
}

const root = resolve(import.meta.dirname, "../..");
/** Where the figures go. */
export const RELIABILITY_OUTPUT_DIR = join(root, "test-output", "reliability");

/** Writes `rows` to `test-output/reliability/<file>.json` with the run's date; returns the path. */
export function writeReliabilityFigures(file: string, rows: readonly ReliabilityRow[]): string {
  mkdirSync(RELIABILITY_OUTPUT_DIR, { recursive: true });
  const path = join(RELIABILITY_OUTPUT_DIR, `${file}.json`);
  writeFileSync(path, `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
  return path;
}
