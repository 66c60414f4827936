/**
 * The first step of a compaction, done without any lock: read the file
 * up to a snapshot's size, find the latest line per key, then read and
 * scan the lines saved meanwhile (a few rounds, each up to a size the
 * caller takes under the shared lock), and write the winners, byte for
 * byte and in file order, to a temp file (fdatasynced). Scanning the
 * lines saved during the scan, rather than copying them as they are,
 * keeps their superseded lines out of the new file: on a busy file a
 * scan lasts as long as writing a large share of the file again.
 * It runs on the main thread or, for large files, in a worker thread
 * (compact-worker.ts), so that saves keep the main thread meanwhile:
 * everything it needs and returns is plain data.
 */
import { closeSync, constants, openSync, unlinkSync } from "node:fs";
import { ChangeType } from "../index.js";
import { fdatasyncAsync, writeAll } from "./fs.js";
import { type HintSpans, SpanChecksums } from "./hint-spans.js";
import { CompactionStep, crashPoints } from "./internal.js";
import { decodeWinners, fileRead, readText, type ScanContext, Scanner } from "./reader.js";

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
   * Rounds of scanning the lines saved since the last size read (see
   * {@link NextSize}) before the winners are written. 0: none.
   */
  readonly catchUpRounds: number;
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

/**
 * The size of the data file now (whole saves only: taken under the
 * shared lock), for a catch-up round; -1 when the file was replaced (the
 * compaction will give up) or the round should not run.
 */
export type NextSize = () => Promise<number>;

/** What {@link writeWinners} found and did. */
export interface WinnersResult {
  /** Lines and keys of the file up to {@link completeBytes}. */
  readonly lines: number;
  readonly keys: number;
  /** Lines written to the temp file; -1 when it was not worth it (nothing written). */
  readonly kept: number;
  /** Bytes of the lines written to the temp file. */
  readonly keptBytes: number;
  /** Per line written, its length without the `\n` (its offset is the sum of the lengths before it, plus one per line): the new file's hint. */
  readonly keptLengths: Uint32Array | undefined;
  /** The spans of the lines written and their checksums, for that hint. */
  readonly keptSpans: HintSpans | undefined;
  /** 1-based numbers of damaged lines skipped. */
  readonly skipped: number[];
  /** Bytes read: the lines appended after them are copied under the lock. */
  readonly completeBytes: number;
}

/** Catch-up rounds stop once fewer new bytes than this are left (the caller copies them as they are). */
export const CATCH_UP_SCAN_MIN_BYTES = 1024 * 1024;
/** …or fewer than this share of the bytes already scanned. */
const CATCH_UP_SCAN_SHARE = 1 / 16;

/** Bytes of winning lines gathered before each write of the temp file. */
const OUT_BYTES = 4 * 1024 * 1024;

/**
 * Step 1 of a compaction (see compaction.ts). Leaves the temp file
 * written and fdatasynced, or removes it on failure.
 * @throws CorruptionError (not in skip mode)
 */
export async function writeWinners(input: WinnersInput, nextSize?: NextSize): Promise<WinnersResult> {
  const crashPoint = crashPoints(input.crashAt);
  const { stop, ctx } = input;
  const pause = input.yielding
    ? () => {
        checkStop(stop);
        return new Promise<void>((r) => setImmediate(r));
      }
    : stop && (async () => checkStop(stop));
  const read = fileRead([], ctx, pause, []);
  const scanner = new Scanner(read);
  let completeBytes = 0;
  /** Reads and scans `[completeBytes, to)`, each chunk while the next one is read. */
  const scanTo = async (to: number): Promise<void> => {
    let at = completeBytes;
    const text = await readText(input.fd, to, ctx.chunkBytes, completeBytes, (chunk) => {
      checkStop(stop);
      read.chunks.push(chunk);
      read.chunkPos.push(at);
      at += chunk.length;
      return scanner.scanChunk(read.chunks.length - 1);
    });
    completeBytes = text.completeBytes;
  };
  await scanTo(input.size);
  checkStop(stop);
  const { worth } = input;
  const worthIt = (lines: number, keys: number): boolean =>
    !worth || lines > Math.max(worth.minLines, worth.ratio * keys);
  let first = scanner.finish();
  if (worthIt(first.lines, first.winners.length)) {
    // Scan the lines saved meanwhile, so that their superseded lines stay out of the new file.
    for (let round = 0; nextSize && round < input.catchUpRounds; round++) {
      const size = await nextSize();
      checkStop(stop);
      const fresh = size - completeBytes;
      if (size < 0 || fresh < Math.max(CATCH_UP_SCAN_MIN_BYTES, completeBytes * CATCH_UP_SCAN_SHARE)) break;
      await scanTo(size);
    }
    first = scanner.finish();
  }
  const resolved = await decodeWinners(read, first, false);
  checkStop(stop);
  const lines = resolved.scan.lines;
  const keys = resolved.decoded.length;
  const found = { lines, keys, skipped: resolved.skipped, completeBytes };
  if (!worthIt(lines, keys)) return { ...found, kept: -1, keptBytes: 0, keptLengths: undefined, keptSpans: undefined };

  const tempFd = openSync(input.temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  try {
    crashPoint(CompactionStep.BeforeTempWrite);
    let kept = 0;
    let keptBytes = 0;
    const keptLengths = new Uint32Array(resolved.decoded.length);
    // Every line copied was checked by the scan: the hint's span checksums are computed from these bytes.
    const spans = new SpanChecksums();
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
      spans.add(out, used, used + n);
      used += n;
      keptBytes += n;
      keptLengths[kept++] = n - 1;
    }
    await writeAll(tempFd, out.subarray(0, used));
    await fdatasyncAsync(tempFd);
    return { ...found, kept, keptBytes, keptLengths: keptLengths.subarray(0, kept), keptSpans: spans.finish() };
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
