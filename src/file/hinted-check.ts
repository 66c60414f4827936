/**
 * The checksums of a hint's winning lines, checked on another core: a
 * large hinted `load` (hinted-read.ts) decodes the winners on its own
 * thread while a worker thread reads the same lines and checks their
 * checksums. The load's result is used only once every checksum holds;
 * otherwise the load reads the whole file, as for any damaged line. When
 * no line follows the hint's, the worker also checks that no two winners
 * share a key, and the load decodes the winners without a key table.
 */
import { readSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { KeyShape, LineDecoder } from "./decoder.js";
import { LineError, ownCrcAt, ownCrcHolds, parseLineObject } from "./format.js";
import type { ScanContext } from "./reader.js";

/** Winning lines closer than this are read together (with the bytes between them). */
export const GAP_BYTES = 4096;
/** Largest read of several winning lines at once, into one buffer reused from read to read. */
export const SPAN_BYTES = 1024 * 1024;

/** What a worker thread is given to check (see {@link firstUnusableWinner}). */
export interface CrcCheckTask {
  readonly check: {
    readonly fd: number;
    readonly offsets: Float64Array;
    readonly lengths: Uint32Array;
    readonly keys: WinnerKeys | undefined;
    /** `[0]`: how many lines the worker has checked so far (shared memory). */
    readonly progress: Int32Array;
  };
}

/** Check that the winners' keys are distinct: how their file is read. */
export interface WinnerKeys {
  readonly ctx: ScanContext;
}

/**
 * Reads the lines `[offsets[i], offsets[i] + lengths[i])` of the file at
 * `fd` (in file order) and checks the checksum of each line that ends in
 * statelog's own (`,"crc":"<8 hex>"}`); lines in any other shape are left
 * to their reader. With `keys`, also finds each line's key: a line whose
 * key cannot be found, or is an earlier line's, makes the hint unusable
 * too. Returns the index of the first line that makes the hint unusable
 * (including one that cannot be read whole), or -1.
 * @param progress `[0]` is set to the number of lines checked, read after
 *   read (to all of them as soon as the answer is known)
 * @throws system errors of reading the file
 */
export function firstUnusableWinner(
  fd: number,
  offsets: Float64Array,
  lengths: Uint32Array,
  keys?: WinnerKeys,
  progress?: Int32Array,
): number {
  const n = offsets.length;
  const found = (w: number): number => {
    // The answer is final: say so at once (a caller waits for an answer once it is half way).
    if (progress) Atomics.store(progress, 0, n);
    return w;
  };
  const seen = keys && new Set<string>();
  const decoder = keys && new LineDecoder(keys.ctx.namespace, keys.ctx.prefix);
  let span: Buffer | undefined;
  for (let w = 0; w < n; ) {
    const first = offsets[w] as number;
    let end = first + (lengths[w] as number);
    let k = w + 1;
    while (k < n) {
      const next = offsets[k] as number;
      const nextEnd = next + (lengths[k] as number);
      if (next - end > GAP_BYTES || nextEnd - first > SPAN_BYTES) break;
      end = nextEnd;
      k++;
    }
    const bytes = end - first;
    if (span === undefined || span.length < bytes) span = Buffer.allocUnsafe(Math.max(bytes, SPAN_BYTES));
    for (let got = 0; got < bytes; ) {
      const r = readSync(fd, span, got, bytes - got, first + got);
      if (r === 0) return found(w);
      got += r;
    }
    for (; w < k; w++) {
      const start = (offsets[w] as number) - first;
      const stop = start + (lengths[w] as number);
      const crcAt = ownCrcAt(span, start, stop);
      if (crcAt >= 0 && !ownCrcHolds(span, start, stop, crcAt)) return found(w);
      if (seen && decoder) {
        const key = keyOfLine(decoder, span, start, stop, keys.ctx.namespace);
        if (key === undefined || seen.has(key)) return found(w);
        seen.add(key);
      }
    }
    if (progress) Atomics.store(progress, 0, w);
  }
  return -1;
}

/** The key of the line `buf[start, end)` in {@link keyOf}'s form, or `undefined` when it has none. */
function keyOfLine(
  decoder: LineDecoder,
  buf: Buffer,
  start: number,
  end: number,
  namespace: string,
): string | undefined {
  const shape = decoder.key(buf, start, end);
  if (shape === KeyShape.Raw) return buf.toString("utf8", decoder.keyStart, decoder.keyEnd);
  if (shape === KeyShape.Escaped) return decoder.escapedKey;
  try {
    return parseLineObject(buf.toString("utf8", start, end), namespace).key;
  } catch (error) {
    if (error instanceof LineError) return undefined;
    throw error;
  }
}

/** Worker modules found missing in this process (see {@link WinnerCheck}). */
const missingWorkers = new Set<string>();

/** The bytes of the lines a hint names (what a hinted load decodes). */
export function winnerBytes(lengths: Uint32Array): number {
  let sum = 0;
  for (let i = 0; i < lengths.length; i++) sum += lengths[i] as number;
  return sum;
}

/**
 * {@link firstUnusableWinner} in a worker thread, started at once and
 * asked for its answer when the caller has decoded the lines: the
 * worker's, when it has answered or got at least half way; otherwise
 * (still starting, or slowed down) it is stopped and the lines are checked
 * on the caller's thread. A worker that cannot run is checked for on the
 * caller's thread too. The descriptor is shared by the threads of a
 * process: the caller keeps it open until {@link result} has settled
 * (or it has called {@link stop}).
 */
export class WinnerCheck {
  readonly #check: CrcCheckTask["check"];
  readonly #worker: Worker | undefined;
  /** The worker's answer, once it came. */
  #answer: number | undefined;
  /** Settles when the worker has answered, failed or ended. */
  readonly #over: Promise<void> | undefined;

  /**
   * @param url the worker module (compact-worker.js, which runs either task)
   */
  constructor(url: URL, fd: number, offsets: Float64Array, lengths: Uint32Array, keys: WinnerKeys | undefined) {
    const progress = new Int32Array(new SharedArrayBuffer(4));
    this.#check = { fd, offsets, lengths, keys, progress };
    let worker: Worker | undefined;
    try {
      if (!missingWorkers.has(url.href)) {
        worker = new Worker(url, { workerData: { check: this.#check } satisfies CrcCheckTask });
      }
    } catch {
      worker = undefined;
    }
    this.#worker = worker;
    this.#over =
      worker &&
      new Promise<void>((resolve) => {
        worker.once("message", (message: { firstBad?: unknown }) => {
          if (typeof message.firstBad === "number") this.#answer = message.firstBad;
          resolve();
        });
        // A worker that cannot run (a module it cannot load, a thread that cannot start) or fails.
        worker.once("error", (error: NodeJS.ErrnoException) => {
          // A module that is not there (a bundle without it) stays missing: no more threads for it.
          if (error?.code === "MODULE_NOT_FOUND" || error?.code === "ERR_MODULE_NOT_FOUND")
            missingWorkers.add(url.href);
          resolve();
        });
        worker.once("exit", () => resolve());
      });
  }

  /** Lines the worker has checked so far. */
  get checked(): number {
    return Atomics.load(this.#check.progress, 0);
  }

  /** {@link firstUnusableWinner}'s answer. */
  async result(): Promise<number> {
    const { fd, offsets, lengths, keys } = this.#check;
    if (this.#answer === undefined && this.#over && this.checked * 2 >= offsets.length) {
      await this.#over;
    }
    if (this.#answer !== undefined) return this.#answer;
    this.stop();
    return firstUnusableWinner(fd, offsets, lengths, keys);
  }

  /**
   * Stops the worker, without waiting for it to end (a thread still
   * starting takes long to stop). It may still be in a read: reads change
   * nothing, and what it finds is no longer listened to (once the caller
   * has closed the descriptor, the worker's reads fail, or read another
   * file that got the same descriptor number).
   */
  stop(): void {
    this.#worker?.terminate().catch(() => undefined);
  }
}
