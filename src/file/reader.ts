/**
 * Reading a namespace file: the bytes up to a size taken under the lock,
 * in large chunks cut at line ends; then the latest line per key, found
 * from the line prefixes (no `JSON.parse` of superseded lines).
 */
import { read } from "node:fs";
import { promisify } from "node:util";
import type { Change } from "../core/change.js";
import { CorruptionError } from "../core/errors.js";
import { type Chunk, decodeLine, LineError, lineKey, parseLineObject } from "./format.js";

const readAsync = promisify(read);

/** Bytes read at once (a longer line grows the buffer). */
const CHUNK_BYTES = 32 * 1024 * 1024;

/** The text of a file, cut into chunks that each end with `\n`. */
export interface FileText {
  readonly chunks: Chunk[];
  /** Byte offset just past the last `\n`: the complete lines. */
  readonly completeBytes: number;
  /** Bytes after the last `\n` (a torn last line), dropped. */
  readonly tornBytes: number;
}

/** Reads `fd` from `from` to `to` (bytes), keeping complete lines only. */
export async function readText(fd: number, to: number, from = 0): Promise<FileText> {
  const chunks: Chunk[] = [];
  let carry = Buffer.alloc(0);
  let pos = from;
  let complete = from;
  while (pos < to) {
    const buf = Buffer.allocUnsafe(carry.length + Math.min(to - pos, CHUNK_BYTES));
    carry.copy(buf, 0);
    let filled = carry.length;
    while (filled < buf.length) {
      const { bytesRead } = await readAsync(fd, buf, filled, buf.length - filled, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      filled += bytesRead;
    }
    const eof = filled < buf.length; // the file shrank (a torn tail was cut off): what we have is all
    const nl = buf.lastIndexOf(10, filled - 1);
    if (nl < 0) {
      carry = buf.subarray(0, filled);
    } else {
      const bytes = buf.subarray(0, nl + 1);
      const text = bytes.toString("utf8");
      // Same length: every byte is one character, so offsets in the text are offsets in the bytes.
      chunks.push({ text, bytes: text.length === bytes.length ? bytes : undefined });
      complete += nl + 1;
      carry = buf.subarray(nl + 1, filled);
    }
    if (eof) break;
  }
  return { chunks, completeBytes: complete, tornBytes: carry.length };
}

/** How damaged lines are handled. */
export interface ScanContext {
  readonly file: string;
  readonly namespace: string;
  readonly prefix: string;
  /** Skip damaged lines (recording their 1-based numbers) instead of throwing. */
  readonly skip: boolean;
}

/** The latest line per key. */
export interface Scan {
  /** Physical lines seen (1-based numbers run up to this). */
  readonly lines: number;
  /** Winning line indexes, in file order. */
  readonly winners: Int32Array;
  /** Start offset of each line in its chunk. */
  readonly starts: number[];
  /** End offset (before `\n` or `\r\n`) of each line in its chunk. */
  readonly ends: number[];
  /** Chunk of each line. */
  readonly chunkOf: Uint32Array;
  readonly chunks: Chunk[];
}

/** Lines between two pauses of a yielding scan (see {@link resolve}). */
const PAUSE_EVERY = 0x3fff;

async function scanOnce(
  chunks: Chunk[],
  ctx: ScanContext,
  bad: Set<number>,
  pause: (() => Promise<void>) | undefined,
): Promise<Scan> {
  const winner = new Map<string, number>();
  const starts: number[] = [];
  const ends: number[] = [];
  const chunkIds: number[] = [];
  const checkBad = bad.size > 0;
  let line = 0;
  for (let c = 0; c < chunks.length; c++) {
    const text = (chunks[c] as Chunk).text;
    let pos = 0;
    const len = text.length;
    while (pos < len) {
      let end = text.indexOf("\n", pos);
      if (end < 0) end = len;
      const index = line++;
      if (pause && (index & PAUSE_EVERY) === 0) await pause();
      let stop = end;
      if (text.charCodeAt(stop - 1) === 13) stop--;
      starts.push(pos);
      ends.push(stop);
      chunkIds.push(c);
      pos = end + 1;
      if (stop === starts[index]) continue; // empty line
      if (checkBad && bad.has(index)) continue;
      let key = lineKey(text, starts[index] as number, stop, ctx.prefix);
      if (key === undefined) {
        const raw = text.slice(starts[index], stop);
        if (raw.trim() === "") continue;
        try {
          key = parseLineObject(raw, ctx.namespace).key;
        } catch (error) {
          if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
          bad.add(index);
          continue;
        }
      }
      winner.set(key, index);
    }
  }
  const winners = Int32Array.from(winner.values()).sort();
  return { lines: line, winners, starts, ends, chunkOf: Uint32Array.from(chunkIds), chunks };
}

/** The text range of line `index` of a scan. */
export function lineRange(scan: Scan, index: number): { chunk: Chunk; start: number; end: number } {
  return {
    chunk: scan.chunks[scan.chunkOf[index] as number] as Chunk,
    start: scan.starts[index] as number,
    end: scan.ends[index] as number,
  };
}

/** What {@link resolve} found. */
export interface Resolved {
  readonly scan: Scan;
  /** The winning lines, decoded, in file order. */
  readonly decoded: Change[];
  /** Winning line indexes matching `decoded`. */
  readonly indexes: number[];
  /** 1-based numbers of damaged lines that were skipped (only when `ctx.skip`). */
  readonly skipped: number[];
}

/**
 * Finds the latest valid line per key and decodes it. With `ctx.skip`, a
 * damaged winner is dropped and the key falls back to its previous valid
 * line (as if the damaged line were not there).
 * @param pause awaited every few thousand lines: background work (compaction)
 *   lets the event loop serve saves meanwhile; `load` runs straight through
 * @throws CorruptionError (not in skip mode)
 */
export async function resolve(
  chunks: Chunk[],
  ctx: ScanContext,
  parseEntities: boolean,
  pause?: () => Promise<void>,
): Promise<Resolved> {
  const bad = new Set<number>();
  for (;;) {
    const scan = await scanOnce(chunks, ctx, bad, pause);
    const decoded: Change[] = [];
    const indexes: number[] = [];
    let again = false;
    for (let w = 0; w < scan.winners.length; w++) {
      if (pause && (w & PAUSE_EVERY) === PAUSE_EVERY) await pause();
      const index = scan.winners[w] as number;
      const { chunk, start, end } = lineRange(scan, index);
      try {
        decoded.push(decodeLine(chunk, start, end, ctx.namespace, ctx.prefix, parseEntities));
        indexes.push(index);
      } catch (error) {
        if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
        bad.add(index);
        again = true;
      }
    }
    if (!again) return { scan, decoded, indexes, skipped: [...bad].sort((a, b) => a - b).map((i) => i + 1) };
  }
}

function corruption(ctx: ScanContext, index: number, error: unknown): unknown {
  if (!(error instanceof LineError)) return error;
  return new CorruptionError(
    ctx.file,
    index + 1,
    `${error.message} (pass onCorruption: "skip" to skip damaged lines)`,
    {
      cause: error,
    },
  );
}
