/**
 * The raw-file baselines: the least work that makes a batch or a single
 * change durable.
 *
 * - The batch floor: `JSON.stringify` of the whole batch as one line,
 *   one `write`, one `fsync`, per batch; synchronous calls, so there is
 *   no thread-pool hop either. Nothing a store must do (validation, one
 *   line per change, integrity checks, locking) is in it.
 * - One fsync per save: the naive durable single-change save, each
 *   caller writing its own line and fsyncing it; no group commit.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { ChangeInput } from "../../src/core/change.js";
import { now } from "./measure.js";

/**
 * Appends each batch to `file` (`JSON.stringify` + write + fsync) and
 * returns the milliseconds spent doing so, leaving out the time the
 * workload generator took to build the batches.
 */
export function floorWrite(file: string, batches: Iterable<ChangeInput[]>): number {
  const fd = openSync(file, "a");
  let spent = 0;
  try {
    for (const batch of batches) {
      const start = now();
      writeSync(fd, `${JSON.stringify(batch)}\n`);
      fsyncSync(fd);
      spent += now() - start;
    }
  } finally {
    closeSync(fd);
  }
  return spent;
}

/**
 * `writers` concurrent async writers, each doing `savesPerWriter`
 * sequential saves of one change to `file`: write its line, then fsync,
 * then the next. Returns the wall time in milliseconds.
 */
export async function fsyncPerSave(
  file: string,
  changeFor: (writer: number, save: number) => ChangeInput,
  writers: number,
  savesPerWriter: number,
): Promise<number> {
  const handle = await open(file, "a");
  try {
    const start = now();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let s = 0; s < savesPerWriter; s++) {
          await handle.write(`${JSON.stringify(changeFor(w, s))}\n`);
          await handle.sync();
        }
      }),
    );
    return now() - start;
  } finally {
    await handle.close();
  }
}

/** Median milliseconds of one small (300 B) `write` + `fsync` to `file`, over `n` tries: the disk's durability cost. */
export function fsyncLatency(file: string, n = 200): number {
  const fd = openSync(file, "a");
  const line = `${"x".repeat(299)}\n`;
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const start = now();
      writeSync(fd, line);
      fsyncSync(fd);
      times.push(now() - start);
    }
  } finally {
    closeSync(fd);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/**
 * The same saves as {@link fsyncPerSave}, one at a time with blocking
 * calls (`writeSync` + `fsyncSync`), in the order the concurrent writers
 * would issue them: what one fsync per save costs when nothing overlaps.
 */
export function fsyncPerSaveSerialized(
  file: string,
  changeFor: (writer: number, save: number) => ChangeInput,
  writers: number,
  savesPerWriter: number,
): number {
  const fd = openSync(file, "a");
  try {
    const start = now();
    for (let s = 0; s < savesPerWriter; s++) {
      for (let w = 0; w < writers; w++) {
        writeSync(fd, `${JSON.stringify(changeFor(w, s))}\n`);
        fsyncSync(fd);
      }
    }
    return now() - start;
  } finally {
    closeSync(fd);
  }
}
