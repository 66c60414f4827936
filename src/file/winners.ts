/**
 * The first step of a compaction, done without any lock: read the file
 * up to a snapshot's size, find the latest line per key, and write those
 * lines, byte for byte and in file order, to a temp file (fdatasynced).
 * It runs on the main thread or, for large files, in a worker thread
 * (compact-worker.ts), so that saves keep the main thread meanwhile:
 * everything it needs and returns is plain data.
 */
import { closeSync, constants, openSync, unlinkSync } from "node:fs";
import { ChangeType } from "../index.js";
import { fdatasyncAsync, writeAll } from "./fs.js";
import { CompactionStep, crashPoints } from "./internal.js";
import { readText, resolve, type ScanContext } from "./reader.js";

/** What {@link writeWinners} needs (plain data: it may cross to a worker thread). */
export interface WinnersInput {
  /** A read descriptor on the file and the size to read (whole lines). */
  readonly fd: number;
  readonly size: number;
  readonly ctx: ScanContext;
  /** The temp file to write, `<base>.<pid>.<tag>.tmp` next to the data file (see compaction.ts). */
  readonly temp: string;
  /** Tombstones older than this (ms) are dropped. */
  readonly expiredBefore: number;
  /** Automatic compaction: write only when the file has more than `max(minLines, ratio × keys)` lines. */
  readonly worth?: { readonly minLines: number; readonly ratio: number } | undefined;
  /** Yield to the event loop every few thousand lines (on the main thread). */
  readonly yielding: boolean;
  /** The step at which to kill the process (crash tests; see internal.ts). */
  readonly crashAt: CompactionStep | undefined;
  /**
   * Set to 1 (on any thread) to abandon the compaction: the scan stops at
   * its next pause with a {@link CompactionAbandoned} (shared memory, so
   * that a worker sees it while it runs).
   */
  readonly stop?: Int32Array | undefined;
}

/** A compaction given up on request (the store is closing): nothing was replaced. */
export class CompactionAbandoned extends Error {
  constructor() {
    super("the compaction was abandoned: the store is closing");
  }
}

/** Throws {@link CompactionAbandoned} once `stop` is set. */
export function checkStop(stop: Int32Array | undefined): void {
  if (stop !== undefined && Atomics.load(stop, 0) !== 0) throw new CompactionAbandoned();
}

/** What {@link writeWinners} found and did. */
export interface WinnersResult {
  /** Lines and keys of the file up to the snapshot. */
  readonly lines: number;
  readonly keys: number;
  /** Lines written to the temp file; -1 when it was not worth it (nothing written). */
  readonly kept: number;
  /** 1-based numbers of damaged lines skipped. */
  readonly skipped: number[];
  /** Bytes read: the lines appended after them are copied under the lock. */
  readonly completeBytes: number;
}

/** Bytes of winning lines gathered before each write of the temp file. */
const OUT_BYTES = 4 * 1024 * 1024;

/**
 * Step 1 of a compaction (see compaction.ts). Leaves the temp file
 * written and fdatasynced, or removes it on failure.
 * @throws CorruptionError (not in skip mode)
 */
export async function writeWinners(input: WinnersInput): Promise<WinnersResult> {
  const crashPoint = crashPoints(input.crashAt);
  const { stop } = input;
  const text = await readText(input.fd, input.size, input.ctx.chunkBytes, 0, () => checkStop(stop));
  const pause = input.yielding
    ? () => {
        checkStop(stop);
        return new Promise<void>((r) => setImmediate(r));
      }
    : stop && (async () => checkStop(stop));
  const resolved = await resolve(text.chunks, input.ctx, false, pause);
  checkStop(stop);
  const lines = resolved.scan.lines;
  const keys = resolved.decoded.length;
  const found = { lines, keys, skipped: resolved.skipped, completeBytes: text.completeBytes };
  const { worth } = input;
  if (worth && !(lines > Math.max(worth.minLines, worth.ratio * keys))) return { ...found, kept: -1 };

  const tempFd = openSync(input.temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  try {
    crashPoint(CompactionStep.BeforeTempWrite);
    let kept = 0;
    // Winning lines are copied byte for byte into one buffer, written out whenever it fills.
    const { scan } = resolved;
    let out = Buffer.allocUnsafe(OUT_BYTES);
    let used = 0;
    for (let w = 0; w < resolved.decoded.length; w++) {
      const change = resolved.decoded[w]!;
      if (change.changeType === ChangeType.Unset && change.timestamp.getTime() < input.expiredBefore) continue;
      const chunk = scan.chunks[scan.chunkOf[w]!]!;
      const start = scan.starts[w]!;
      const end = scan.ends[w]!;
      const n = end - start + 1;
      if (used + n > out.length) {
        await writeAll(tempFd, out.subarray(0, used));
        used = 0;
        if (n > out.length) out = Buffer.allocUnsafe(n);
      }
      chunk.copy(out, used, start, end);
      out[used + n - 1] = 10;
      used += n;
      kept++;
    }
    await writeAll(tempFd, out.subarray(0, used));
    await fdatasyncAsync(tempFd);
    return { ...found, kept };
  } catch (error) {
    try {
      unlinkSync(input.temp);
    } catch {
      // gone already
    }
    throw error;
  } finally {
    closeSync(tempFd);
  }
}
