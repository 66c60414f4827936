/**
 * The spans of a hint (hint.ts): runs of winning lines a hinted load
 * reads at once, and the CRC-32 of each one's bytes, so that the load
 * checks a span with one native checksum instead of each of its lines'
 * own. A span checksum is only ever computed over a span whose winners
 * were just checked (each a whole line passing its own checksum): by the
 * second pass of a load that read every line (`resolveWithHint` with
 * `withSpans`, hinted-read.ts), by a compaction's copy of the winners
 * ({@link SpanChecksums}, winners.ts), or by reading the winners back and
 * checking each ({@link hintSpans}).
 */
import { setImmediate } from "node:timers/promises";
import { crc32 } from "node:zlib";
import { checkLineCrc, LineError } from "./format.js";
import { readUpTo } from "./fs.js";
import type { Hint } from "./hint.js";

/** Winning lines closer than this are read together (with the bytes between them). */
const GAP_BYTES = 4096;
/** Largest span of several winning lines (a span of one line may be longer). */
export const SPAN_BYTES = 1024 * 1024;

/**
 * The end (exclusive) of the span of winners that starts at winner `w`:
 * the following winners whose lines start at most {@link GAP_BYTES} after
 * the previous one ends, while the span stays within {@link SPAN_BYTES}.
 */
export function spanEnd(offsets: Float64Array, lengths: Uint32Array, w: number): number {
  const n = offsets.length;
  const first = offsets[w] as number;
  let end = first + (lengths[w] as number) + 1;
  let k = w + 1;
  while (k < n) {
    const next = offsets[k] as number;
    const nextEnd = next + (lengths[k] as number) + 1;
    if (next - end > GAP_BYTES || nextEnd - first > SPAN_BYTES) break;
    end = nextEnd;
    k++;
  }
  return k;
}

/**
 * The bytes `[from, end)` of the span of winners `[w, k)`: from the byte
 * before its first line (its `\n`; 0 for a line at the file's start) to
 * the byte after its last line (its `\n`).
 */
export function spanBytes(offsets: Float64Array, lengths: Uint32Array, w: number, k: number): [number, number] {
  const first = offsets[w] as number;
  return [first > 0 ? first - 1 : 0, (offsets[k - 1] as number) + (lengths[k - 1] as number) + 1];
}

/** Per span of a hint's winners, in file order: its first winner and the CRC-32 of its bytes. */
export interface HintSpans {
  readonly first: Uint32Array;
  readonly crc: Uint32Array;
}

/** The `\n` a span after the first one starts with (the end of the line before it). */
const NEWLINE = Buffer.from("\n");

/**
 * The spans ({@link spanEnd}) and their checksums of lines written one
 * after another from the start of a file (a compaction's new file), as
 * they are written: each line with its `\n` goes to {@link add}, whose
 * bytes need not be kept.
 */
export class SpanChecksums {
  readonly #first: number[] = [];
  readonly #crc: number[] = [];
  /** Lines added, bytes added, and the current span's first byte offset and checksum so far. */
  #lines = 0;
  #bytes = 0;
  #spanStart = 0;
  #value = 0;

  /** Adds the next line: `buf[start, end)`, its `\n` last. */
  add(buf: Buffer, start: number, end: number): void {
    const at = this.#bytes;
    // spanEnd's rule for lines without gaps: a line joins the span while the span stays within SPAN_BYTES.
    if (this.#lines === 0 || at + (end - start) - this.#spanStart > SPAN_BYTES) {
      if (this.#lines > 0) this.#crc.push(this.#value);
      this.#first.push(this.#lines);
      this.#spanStart = at;
      this.#value = at > 0 ? crc32(NEWLINE) : 0;
    }
    this.#value = crc32(buf.subarray(start, end), this.#value);
    this.#bytes += end - start;
    this.#lines++;
  }

  /** The spans of the lines added. */
  finish(): HintSpans {
    const crc = this.#lines > 0 ? [...this.#crc, this.#value] : [];
    return { first: Uint32Array.from(this.#first), crc: Uint32Array.from(crc) };
  }
}

/**
 * The spans of `hint`'s winners in the file at `fd`, with the CRC-32 of
 * each one's bytes, once every winner is checked there as a load checks
 * it without span checksums: a whole line, passing its own checksum. A
 * span checksum so certifies only bytes whose winners were found intact.
 * `undefined` when a winner is not (the hint is then not written).
 * Yields to the event loop after each span: the checksums of a large
 * file's winners take a while (about 1 ms per 1,000 lines here), and
 * saves and reads go on meanwhile.
 * @throws system errors of reading the file
 */
export async function hintSpans(fd: number, namespace: string, hint: Hint): Promise<HintSpans | undefined> {
  const { offsets, lengths, dataBytes } = hint;
  const first: number[] = [];
  const crc: number[] = [];
  let buf = Buffer.allocUnsafe(0);
  for (let w = 0; w < offsets.length; ) {
    const k = spanEnd(offsets, lengths, w);
    const [from, end] = spanBytes(offsets, lengths, w, k);
    if (end > dataBytes || end <= from) return undefined;
    const bytes = end - from;
    const readBytes = Math.min(bytes + 1, dataBytes - from);
    if (buf.length < readBytes) buf = Buffer.allocUnsafe(Math.max(readBytes, SPAN_BYTES));
    if (!readFully(fd, buf, readBytes, from)) return undefined;
    for (let i = w; i < k; i++) {
      const start = (offsets[i] as number) - from;
      const stop = start + (lengths[i] as number);
      if (!wholeLine(buf, start, stop, readBytes)) return undefined;
      try {
        checkLineCrc(buf, start, stop, namespace);
      } catch (error) {
        if (error instanceof LineError) return undefined;
        throw error;
      }
    }
    first.push(w);
    crc.push(crc32(buf.subarray(0, bytes)));
    w = k;
    if (w < offsets.length) await setImmediate();
  }
  return { first: Uint32Array.from(first), crc: Uint32Array.from(crc) };
}

/**
 * Whether `buf[start, stop)` (of the `size` bytes read) is a whole line: a
 * `\n` (or the file's start, `start` 0 of a span read from offset 0)
 * before it, and `\n` or `\r\n` after it.
 */
export function wholeLine(buf: Buffer, start: number, stop: number, size: number): boolean {
  if (start > 0 && buf[start - 1] !== 10) return false;
  const after = buf[stop];
  return after === 10 || (after === 13 && stop + 1 < size && buf[stop + 1] === 10);
}

/**
 * Reads `bytes` bytes at `position` into `buf` (which must hold them);
 * false when the file ends before.
 * @throws system errors of reading the file
 */
export function readFully(fd: number, buf: Uint8Array, bytes: number, position: number): boolean {
  return readUpTo(fd, buf, bytes, position) === bytes;
}
