/**
 * A `load` with a hint (hint.ts): reads the winning lines the hint names,
 * then every line appended after the bytes it covers, and resolves them
 * as a full read would. And the hint of a finished read.
 */
import { crc32 } from "node:zlib";
import { CorruptionError } from "../index.js";
import { LineError } from "./format.js";
import type { Hint } from "./hint.js";
import { readFully, SPAN_BYTES, spanBytes, spanEnd, wholeLine } from "./hint-spans.js";
import {
  decodeWinners,
  fileRead,
  PASS_BYTES,
  RELEASED,
  type Resolved,
  readText,
  type Scan,
  type ScanContext,
  Scanner,
} from "./reader.js";

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
 * With `withSpans`, a hint without span checksums, and no line after its
 * bytes, the result holds the spans' checksums, each computed once every
 * winner of its span passed its own checksum (as `hintSpans` does).
 * @throws system errors of reading the file
 */
export async function resolveWithHint(
  fd: number,
  size: number,
  hint: Hint,
  ctx: ScanContext,
  parseEntities: boolean,
  withSpans = false,
): Promise<Resolved | undefined> {
  // Strict: the first damaged line ends the hinted read (the full read decides what to do with it).
  const read = fileRead([], { ...ctx, skip: false }, undefined, []);
  const { offsets, lengths, lineNumbers, dataBytes, spans } = hint;
  const n = offsets.length;
  const scanner = new Scanner(read, n, spans !== undefined && size === dataBytes);
  let span: Buffer | undefined;
  const made =
    withSpans && spans === undefined && size === dataBytes ? { first: [] as number[], crc: [] as number[] } : undefined;
  try {
    for (let w = 0, s = 0; w < n; s++) {
      const k = spans
        ? s + 1 < spans.first.length
          ? (spans.first[s + 1] as number)
          : n
        : spanEnd(offsets, lengths, w);
      const [from, end] = spanBytes(offsets, lengths, w, k);
      if (end > dataBytes || end <= from) throw new HintMismatch();
      made?.first.push(w);
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
      // Every winner of the span passed its own checksum (scanAt): the span's checksum may vouch for it.
      made?.crc.push(crc32(buf.subarray(0, bytes)));
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
    const resolved = await decodeWinners(read, scanner.finish(), parseEntities);
    return made
      ? { ...resolved, spans: { first: Uint32Array.from(made.first), crc: Uint32Array.from(made.crc) } }
      : resolved;
  } catch (error) {
    if (error instanceof HintMismatch || error instanceof CorruptionError || error instanceof LineError) {
      return undefined;
    }
    throw error;
  }
}

/**
 * Resolves the file at `fd` (`size` bytes of whole lines) in two passes,
 * each through buffers it reuses, so that the read holds about a megabyte
 * of the file, not all of it: a scan finds each key's latest line (every
 * line's checksum checked, superseded ones too), then
 * {@link resolveWithHint} reads and decodes those lines as if a hint had
 * named them, checking each one's checksum again. `undefined` when a line
 * is damaged or the second pass finds the file changed: the caller then
 * reads the whole file at once, which reports (or skips) damage as usual.
 * @throws system errors of reading the file
 */
export async function resolveInTwoPasses(
  fd: number,
  size: number,
  ctx: ScanContext,
  parseEntities: boolean,
): Promise<Resolved | undefined> {
  const hint = await latestLines(fd, size, ctx);
  return hint && resolveWithHint(fd, size, hint, ctx, parseEntities, true);
}

/**
 * The first pass of {@link resolveInTwoPasses}: where each key's latest
 * line lies, as a hint without span checksums (nothing else of the scan
 * is kept); `undefined` when a line is damaged.
 */
async function latestLines(fd: number, size: number, ctx: ScanContext): Promise<Hint | undefined> {
  const read = fileRead([], { ...ctx, skip: false }, undefined, []);
  const scanner = new Scanner(read);
  let at = 0;
  let scan: Scan;
  try {
    const text = await readText(
      fd,
      size,
      Math.min(ctx.chunkBytes, PASS_BYTES),
      0,
      async (chunk) => {
        const c = read.chunks.length;
        read.chunks.push(chunk);
        read.chunkPos.push(at);
        at += chunk.length;
        await scanner.scanChunk(c);
        read.chunks[c] = RELEASED; // its buffer is read into again
      },
      true,
    );
    if (text.completeBytes !== size) return undefined;
    scan = scanner.finish();
  } catch (error) {
    if (error instanceof CorruptionError || error instanceof LineError) return undefined;
    throw error;
  }
  return winnersOf(scan, size);
}

/**
 * The hint of a read of the first `dataBytes` bytes of a file that found
 * `resolved`, with the span checksums the read computed (a read in two
 * passes); without them (a hinted read), `writeHint` reads the winners
 * back and checks them first.
 */
export function hintOf(resolved: Resolved, dataBytes: number): Hint {
  const hint = winnersOf(resolved.scan, dataBytes);
  const { spans } = resolved;
  return spans ? { ...hint, spans } : hint;
}

/** Where the winners of `scan` lie in the first `dataBytes` bytes of its file: a hint without span checksums. */
function winnersOf(scan: Scan, dataBytes: number): Hint {
  const n = scan.winners.length;
  const offsets = new Float64Array(n);
  const lengths = new Uint32Array(n);
  for (let w = 0; w < n; w++) {
    const start = scan.starts[w] as number;
    offsets[w] = (scan.chunkPos[scan.chunkOf[w] as number] as number) + start;
    lengths[w] = (scan.ends[w] as number) - start;
  }
  return { dataBytes, lines: scan.lines, offsets, lengths, lineNumbers: Uint32Array.from(scan.winners) };
}
