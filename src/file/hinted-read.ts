/**
 * A `load` with a hint (hint.ts): reads the winning lines the hint names,
 * then every line appended after the bytes it covers, and resolves them
 * as a full read would. And the hint of a finished read.
 */
import { crc32 } from "node:zlib";
import { CorruptionError } from "../index.js";
import { LineError } from "./format.js";
import type { Hint } from "./hint.js";
import { type HintSpans, readFully, SPAN_BYTES, spanBytes, spanEnd, wholeLine } from "./hint-spans.js";
import { decodeWinners, fileRead, type Resolved, readText, type ScanContext, Scanner } from "./reader.js";

/** What a hinted read leaves in place of a span's bytes once its lines are decoded. */
const RELEASED: Buffer = Buffer.alloc(0);

/** A line of a hint that is not where the hint says (stale or damaged hint). */
class HintMismatch extends Error {}

/**
 * Resolves the file at `fd` (`size` bytes of whole lines) from `hint`:
 * its winners, each decoded as soon as it is read, then the lines after
 * `hint.dataBytes`. The winners are read span by span (hint-spans.ts), each
 * into one buffer reused from span to span: a load holds about a span of
 * the file in memory, not all of it. A span whose CRC-32 matches the
 * hint's is the bytes that were verified when the hint was written: its
 * lines' own checksums are not computed again, and when no line follows
 * the hint's bytes, no two winners share a key (no key table). A hint
 * without span checksums (version 1) has each winner's checksum checked.
 * `undefined` when the file does not match the hint (a span's checksum
 * differs, a winner is not a whole line, fails its checksum, cannot be
 * decoded or cannot be read) or holds a damaged line: the caller then
 * reads the whole file, which reports (or skips) damage as usual.
 * @throws system errors of reading the file
 */
export async function resolveWithHint(
  fd: number,
  size: number,
  hint: Hint,
  ctx: ScanContext,
  parseEntities: boolean,
): Promise<Resolved | undefined> {
  // Strict: the first damaged line ends the hinted read (the full read decides what to do with it).
  const read = fileRead([], { ...ctx, skip: false }, undefined, []);
  const { offsets, lengths, lineNumbers, dataBytes, spans } = hint;
  const n = offsets.length;
  const scanner = new Scanner(read, n, spans !== undefined && size === dataBytes);
  let span: Buffer | undefined;
  try {
    for (let w = 0, s = 0; w < n; s++) {
      const k = spans
        ? s + 1 < spans.first.length
          ? (spans.first[s + 1] as number)
          : n
        : spanEnd(offsets, lengths, w);
      const [from, end] = spanBytes(offsets, lengths, w, k);
      if (end > dataBytes || end <= from) throw new HintMismatch();
      const bytes = end - from;
      // One byte more when there is one: the `\n` of a last line that ends in `\r\n` (its length ends before the `\r`).
      const readBytes = Math.min(bytes + 1, dataBytes - from);
      if (span === undefined || span.length < readBytes) span = Buffer.allocUnsafe(Math.max(readBytes, SPAN_BYTES));
      const buf = span;
      if (!readFully(fd, buf, readBytes, from)) throw new HintMismatch();
      // Native CRC-32 of the whole span: many times faster than each line's own checksum in JavaScript.
      const verified = spans !== undefined && crc32(buf.subarray(0, bytes)) === spans.crc[s];
      if (spans && !verified) throw new HintMismatch();
      const c = read.chunks.length;
      read.chunks.push(buf);
      read.chunkPos.push(from);
      for (; w < k; w++) {
        const start = (offsets[w] as number) - from;
        const stop = start + (lengths[w] as number);
        if (!wholeLine(buf, start, stop, readBytes)) throw new HintMismatch();
        scanner.scanAt(c, start, stop, lineNumbers[w] as number, parseEntities, verified);
      }
      // Every line of the span is decoded: its bytes are not read again (the next span reuses the buffer).
      read.chunks[c] = RELEASED;
    }
    scanner.continueAt(hint.lines);
    let at = dataBytes;
    await readText(fd, size, ctx.chunkBytes, dataBytes, (chunk) => {
      read.chunks.push(chunk);
      read.chunkPos.push(at);
      at += chunk.length;
      return scanner.scanChunk(read.chunks.length - 1);
    });
    return await decodeWinners(read, scanner.finish(), parseEntities);
  } catch (error) {
    if (error instanceof HintMismatch || error instanceof CorruptionError || error instanceof LineError) {
      return undefined;
    }
    throw error;
  }
}

/**
 * The hint of a read of the first `dataBytes` bytes of a file that found
 * `resolved`. When that read still holds every byte it checked (a full
 * read), the span checksums are computed from them; otherwise (a hinted
 * read let go of its spans' bytes) `writeHint` reads the winners back and
 * checks them first.
 */
export function hintOf(resolved: Resolved, dataBytes: number): Hint {
  const { scan } = resolved;
  const n = scan.winners.length;
  const offsets = new Float64Array(n);
  const lengths = new Uint32Array(n);
  const lineNumbers = new Uint32Array(n);
  for (let w = 0; w < n; w++) {
    const start = scan.starts[w] as number;
    offsets[w] = (scan.chunkPos[scan.chunkOf[w] as number] as number) + start;
    lengths[w] = (scan.ends[w] as number) - start;
    lineNumbers[w] = scan.winners[w] as number;
  }
  const hint = { dataBytes, lines: scan.lines, offsets, lengths, lineNumbers };
  const spans = spansInMemory(hint, scan.chunks, scan.chunkPos);
  return spans ? { ...hint, spans } : hint;
}

/**
 * The spans of `hint` with the CRC-32 of each one's bytes, taken from
 * `chunks` (consecutive, at file offsets `chunkPos`, every line of them
 * checked by the read that holds them); `undefined` when a span's bytes
 * are not all there.
 */
function spansInMemory(hint: Hint, chunks: readonly Buffer[], chunkPos: readonly number[]): HintSpans | undefined {
  const { offsets, lengths } = hint;
  for (let c = 1; c < chunks.length; c++) {
    if ((chunkPos[c - 1] as number) + (chunks[c - 1] as Buffer).length !== chunkPos[c]) return undefined;
  }
  const first: number[] = [];
  const crc: number[] = [];
  let c = 0;
  for (let w = 0; w < offsets.length; ) {
    const k = spanEnd(offsets, lengths, w);
    const [from, end] = spanBytes(offsets, lengths, w, k);
    while (c < chunks.length && (chunkPos[c] as number) + (chunks[c] as Buffer).length <= from) c++;
    let value = 0;
    for (let at = from, i = c; at < end; i++) {
      const chunk = chunks[i];
      if (chunk === undefined || (chunkPos[i] as number) > at) return undefined;
      const base = chunkPos[i] as number;
      const stop = Math.min(end, base + chunk.length);
      value = crc32(chunk.subarray(at - base, stop - base), value);
      at = stop;
    }
    first.push(w);
    crc.push(value);
    w = k;
  }
  return { first: Uint32Array.from(first), crc: Uint32Array.from(crc) };
}
