/**
 * A `load` with a hint (hint.ts): reads the winning lines the hint names,
 * then every line appended after the bytes it covers, and resolves them
 * as a full read would. And the hint of a finished read.
 */
import { readSync } from "node:fs";
import { type Change, CorruptionError } from "../index.js";
import { LineError } from "./format.js";
import type { Hint } from "./hint.js";
import { GAP_BYTES, SPAN_BYTES, WinnerCheck } from "./hinted-check.js";
import { decodeWinners, fileRead, type Resolved, readText, type Scan, type ScanContext, Scanner } from "./reader.js";

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
 * @param checkWorker the worker module that checks the winners'
 *   checksums on another core while this thread decodes them
 *   (hinted-check.ts); without it, this thread checks them
 * @throws system errors of reading the file
 */
export async function resolveWithHint(
  fd: number,
  size: number,
  hint: Hint,
  ctx: ScanContext,
  parseEntities: boolean,
  checkWorker?: URL,
): Promise<Resolved | undefined> {
  // Strict: the first damaged line ends the hinted read (the full read decides what to do with it).
  const read = fileRead([], { ...ctx, skip: false }, undefined, []);
  const { offsets, lengths, lineNumbers, dataBytes } = hint;
  const n = offsets.length;
  let span: Buffer | undefined;
  let check: WinnerCheck | undefined;
  // With a worker and no lines after the hint's, the winners are the result: the worker also checks
  // that no two of them share a key, and this thread only decodes them (no key table, no scanner).
  const direct = checkWorker !== undefined && n > 0 && size === dataBytes;
  const decoded: Change[] = [];
  const scanner = direct ? undefined : new Scanner(read, n);
  try {
    if (checkWorker && n > 0) {
      check = new WinnerCheck(checkWorker, fd, offsets, lengths, direct ? { ctx } : undefined);
      if (scanner) scanner.ownCrcCheckedElsewhere = true;
    }
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
        if (scanner) scanner.scanAt(c, start, stop, lineNumbers[w] as number, parseEntities);
        else decoded.push(read.decoder.decode(buf, start, stop, parseEntities));
      }
      // Every line of the span is decoded: its bytes are not read again (the next span reuses the buffer).
      read.chunks[c] = RELEASED;
    }
    if (check) {
      const firstBad = await check.result();
      check = undefined;
      if (firstBad >= 0) throw new HintMismatch();
    }
    if (!scanner) return { scan: directScan(hint), decoded, skipped: [] };
    scanner.ownCrcCheckedElsewhere = false;
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
    check?.stop();
    if (error instanceof HintMismatch || error instanceof CorruptionError || error instanceof LineError) {
      return undefined;
    }
    throw error;
  }
}

/**
 * The scan of a hinted read whose winners are the hint's: its line count
 * and winners, no bytes (the lines are decoded, their buffers reused).
 * Nothing of it is to be hinted again: the hint holds.
 */
function directScan(hint: Hint): Scan {
  const none = new Int32Array(0);
  return {
    lines: hint.lines,
    winners: Int32Array.from(hint.lineNumbers),
    starts: none,
    ends: none,
    chunkOf: none,
    chunks: [],
    chunkPos: [],
    parsed: undefined,
  };
}

/** The hint of a read of the first `dataBytes` bytes of a file that found `resolved`. */
export function hintOf(resolved: Resolved, dataBytes: number): Hint {
  const { scan } = resolved;
  const n = scan.winners.length;
  if (scan.starts.length !== n) throw new Error("a scan without its lines' places cannot be hinted");
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
