/**
 * A `load` with a hint (hint.ts): reads the winning lines the hint names,
 * then every line appended after the bytes it covers, and resolves them
 * as a full read would. And the hint of a finished read.
 */
import { readSync } from "node:fs";
import { CorruptionError } from "../index.js";
import { LineError } from "./format.js";
import type { Hint } from "./hint.js";
import { decodeWinners, fileRead, type Resolved, readText, type ScanContext, Scanner } from "./reader.js";

/** Winning lines closer than this are read together (with the bytes between them). */
const GAP_BYTES = 4096;
/**
 * Largest read of several winning lines at once, into one buffer reused
 * from read to read (each line is decoded as soon as it is read): the
 * bytes stay in the processor's cache, and a load holds this much of the
 * file in memory, not all of it.
 */
const SPAN_BYTES = 1024 * 1024;
/** What a hinted read leaves in place of a span's bytes once its lines are decoded. */
const RELEASED: Buffer = Buffer.alloc(0);

/** A line of a hint that is not where the hint says (stale or damaged hint). */
class HintMismatch extends Error {}

/**
 * Resolves the file at `fd` (`size` bytes of whole lines) from `hint`:
 * its winners, each decoded as soon as it is read, then the lines after
 * `hint.dataBytes`. `undefined` when the file does not match the hint (a
 * winner is not a whole line, fails its checksum, cannot be decoded or
 * cannot be read) or holds a damaged line: the caller then reads the
 * whole file, which reports (or skips) damage as usual.
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
  const { offsets, lengths, lineNumbers, dataBytes } = hint;
  const n = offsets.length;
  const scanner = new Scanner(read, n);
  let span: Buffer | undefined;
  try {
    for (let w = 0; w < n; ) {
      // One read from the byte before the first line to the byte after the last one (`\n` both).
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
      const from = first > 0 ? first - 1 : 0;
      if (end > dataBytes) throw new HintMismatch();
      const bytes = end - from;
      if (span === undefined || span.length < bytes) span = Buffer.allocUnsafe(Math.max(bytes, SPAN_BYTES));
      const buf = span;
      for (let got = 0; got < bytes; ) {
        const r = readSync(fd, buf, got, bytes - got, from + got);
        if (r === 0) throw new HintMismatch();
        got += r;
      }
      const c = read.chunks.length;
      read.chunks.push(buf);
      read.chunkPos.push(from);
      for (; w < k; w++) {
        const start = (offsets[w] as number) - from;
        const stop = start + (lengths[w] as number);
        if (start > 0 && buf[start - 1] !== 10) throw new HintMismatch();
        const after = buf[stop];
        if (after !== 10 && !(after === 13 && buf[stop + 1] === 10)) throw new HintMismatch();
        scanner.scanAt(c, start, stop, lineNumbers[w] as number, parseEntities);
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

/** The hint of a read of the first `dataBytes` bytes of a file that found `resolved`. */
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
  return { dataBytes, lines: scan.lines, offsets, lengths, lineNumbers };
}
