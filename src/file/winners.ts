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
import { type Change, ChangeType, CorruptionError } from "../index.js";
import { checkLineCrc, LineError } from "./format.js";
import { fdatasyncAsync, writeAll } from "./fs.js";
import { type HintSpans, readFully, SpanChecksums } from "./hint-spans.js";
import { CompactionStep, crashPoints } from "./internal.js";
import {
  corruption,
  type FileRead,
  fileRead,
  PASS_BYTES,
  RELEASED,
  readText,
  type Scan,
  type ScanContext,
  Scanner,
} from "./reader.js";

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
 *
 * Two passes over the file, each through reused buffers, so that the
 * compaction holds a few megabytes whatever the file's size: the scan
 * finds each key's latest line (its offset and length), then the copy
 * reads the winners again, in file order, checks each one's checksum and
 * decodes it (to drop expired tombstones), and writes it out. The file
 * below the scanned size does not change while a compaction runs (saves
 * only append), so the second read finds the lines the first one
 * checked; the copy checks them again anyway, as the hint's span
 * checksums vouch for every byte copied.
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
  let read = fileRead([], ctx, pause, []);
  let scanner = new Scanner(read);
  let completeBytes = 0;
  /** Reads and scans `[from, to)`, each chunk while the next one is read (into the same two buffers). */
  const scanTo = async (from: number, to: number): Promise<number> => {
    let at = from;
    const text = await readText(
      input.fd,
      to,
      Math.min(ctx.chunkBytes, PASS_BYTES),
      from,
      async (chunk) => {
        checkStop(stop);
        const c = read.chunks.length;
        read.chunks.push(chunk);
        read.chunkPos.push(at);
        at += chunk.length;
        await scanner.scanChunk(c);
        // Its bytes are overwritten by a later read: let nothing read them (nor keep a grown buffer alive).
        read.chunks[c] = RELEASED;
      },
      true,
    );
    return text.completeBytes;
  };
  completeBytes = await scanTo(0, input.size);
  checkStop(stop);
  const { worth } = input;
  const worthIt = (lines: number, keys: number): boolean =>
    !worth || lines > Math.max(worth.minLines, worth.ratio * keys);
  let scan = scanner.finish();
  if (worthIt(scan.lines, scan.winners.length)) {
    // Scan the lines saved meanwhile, so that their superseded lines stay out of the new file.
    for (let round = 0; nextSize && round < input.catchUpRounds; round++) {
      const size = await nextSize();
      checkStop(stop);
      const fresh = size - completeBytes;
      if (size < 0 || fresh < Math.max(CATCH_UP_SCAN_MIN_BYTES, completeBytes * CATCH_UP_SCAN_SHARE)) break;
      completeBytes = await scanTo(completeBytes, size);
    }
    scan = scanner.finish();
  }
  for (;;) {
    const found = { lines: scan.lines, keys: scan.winners.length, completeBytes };
    if (!worthIt(found.lines, found.keys)) {
      return {
        ...found,
        skipped: skippedOf(read),
        kept: -1,
        keptBytes: 0,
        keptLengths: undefined,
        keptSpans: undefined,
      };
    }
    const copied = await copyWinners(input, read, scan, completeBytes, pause, crashPoint);
    if (copied !== undefined) return { ...found, ...copied, skipped: skippedOf(read) };
    // A winner was damaged (skip mode; now in `read.bad`): its key falls back to its previous valid line.
    const bad = read.bad;
    read = fileRead([], ctx, pause, []);
    for (const index of bad) read.bad.add(index);
    scanner = new Scanner(read);
    await scanTo(0, completeBytes);
    checkStop(stop);
    scan = scanner.finish();
  }
}

/** 1-based numbers of the damaged lines skipped so far. */
function skippedOf(read: FileRead): number[] {
  return [...read.bad].sort((a, b) => a - b).map((i) => i + 1);
}

/** Winners copied between two pauses. */
const PAUSE_WINNERS = 0x3fff;

/**
 * The second pass of {@link writeWinners}: reads the winners of `scan`
 * again (in file order, through one reused window), checks and decodes
 * each, and writes those to keep to the temp file, fdatasynced. Returns
 * `undefined`, with the temp file removed, when a winner is damaged in
 * skip mode (it is added to `read.bad`). `size`: the bytes scanned.
 * @throws CorruptionError (not in skip mode)
 */
async function copyWinners(
  input: WinnersInput,
  read: FileRead,
  scan: Scan,
  size: number,
  pause: (() => Promise<void>) | undefined,
  crashPoint: (step: CompactionStep) => void,
): Promise<Pick<WinnersResult, "kept" | "keptBytes" | "keptLengths" | "keptSpans"> | undefined> {
  const { ctx, decoder, bad } = read;
  const count = scan.winners.length;
  const tempFd = openSync(input.temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  let done = false;
  try {
    crashPoint(CompactionStep.BeforeTempWrite);
    let kept = 0;
    let keptBytes = 0;
    const keptLengths = new Uint32Array(count);
    // Every line copied is checked first: the hint's span checksums are computed from these bytes.
    const spans = new SpanChecksums();
    let window = Buffer.allocUnsafe(Math.min(ctx.chunkBytes, PASS_BYTES));
    /** File offsets of `window`'s bytes: `[windowAt, windowEnd)`. */
    let windowAt = 0;
    let windowEnd = 0;
    let out = Buffer.allocUnsafe(OUT_BYTES);
    let used = 0;
    let damaged = false;
    for (let w = 0; w < count; w++) {
      if (pause && (w & PAUSE_WINNERS) === PAUSE_WINNERS) await pause();
      const at = (scan.chunkPos[scan.chunkOf[w] as number] as number) + (scan.starts[w] as number);
      const length = (scan.ends[w] as number) - (scan.starts[w] as number);
      if (at + length > windowEnd) {
        if (length > window.length) window = Buffer.allocUnsafe(length);
        const bytes = Math.min(window.length, size - at);
        if (bytes < length || !readFully(input.fd, window, bytes, at)) {
          const reason = "the file ended before this line, which the compaction's scan had read";
          throw new CorruptionError(ctx.file, (scan.winners[w] as number) + 1, reason, {
            cause: new LineError(reason),
          });
        }
        windowAt = at;
        windowEnd = at + bytes;
        // On the main thread, the event loop runs between windows too (sparse winners: a window per few lines).
        if (input.yielding && pause) await pause();
      }
      const start = at - windowAt;
      const end = start + length;
      // From the bytes read now, whatever the scan made of them (a line in another shape was parsed then).
      let change: Change;
      try {
        checkLineCrc(window, start, end, ctx.namespace);
        change = decoder.decode(window, start, end, false);
      } catch (error) {
        const index = scan.winners[w] as number;
        if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
        bad.add(index);
        damaged = true;
        continue;
      }
      if (damaged) continue; // the scan starts again: only the checks matter now
      if (change.changeType === ChangeType.Unset && change.timestamp.getTime() < input.expiredBefore) continue;
      const n = length + 1;
      if (used + n > out.length) {
        await writeAll(tempFd, out.subarray(0, used));
        used = 0;
        if (n > out.length) out = Buffer.allocUnsafe(n);
      }
      window.copy(out, used, start, end);
      out[used + n - 1] = 10;
      spans.add(out, used, used + n);
      used += n;
      keptBytes += n;
      keptLengths[kept++] = length;
    }
    if (damaged) return undefined;
    await writeAll(tempFd, out.subarray(0, used));
    await fdatasyncAsync(tempFd);
    done = true;
    return { kept, keptBytes, keptLengths: keptLengths.subarray(0, kept), keptSpans: spans.finish() };
  } finally {
    closeSync(tempFd);
    if (!done) {
      try {
        unlinkSync(input.temp);
      } catch {
        // gone already
      }
    }
  }
}
