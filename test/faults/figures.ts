/**
 * The reliability figures of the fault tests: each test records a row,
 * and after the file's tests they are written to
 * `test-output/reliability/<name>.json` (docs/reliability.md is built from them).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
export const OUTPUT_DIR = path.resolve(here, "../../test-output/reliability");

export interface Figure {
  readonly backend: string;
  readonly fault: string;
  readonly injection: string;
  /** Failing system calls (or fault episodes) injected. */
  readonly injections: number;
  /** Writes acknowledged (resolved) during the test. */
  readonly acknowledged: number;
  /** Acknowledged writes missing from the store once reopened. */
  readonly acknowledgedLost: number;
  /** Rejected writes whose data showed up anyway (not an acknowledgement; counted for the record). */
  readonly rejectedVisible: number;
  /** Stores that would not open or load once the fault was gone. */
  readonly unloadableStores: number;
  /** From the fault's removal to the first successful write, in ms. */
  readonly recoveryMs: number;
}

/** Collects the figures of one test file into `test-output/reliability/<name>.json`. */
export function figures(name: string): (figure: Figure) => void {
  const rows: Figure[] = [];
  afterAll(() => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const out = { name, date: new Date().toISOString(), node: process.version, figures: rows };
    writeFileSync(path.join(OUTPUT_DIR, `${name}.json`), `${JSON.stringify(out, null, 2)}\n`);
  });
  return (figure) => {
    rows.push(figure);
  };
}
