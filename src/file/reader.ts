/**
 * Reading a namespace file: the bytes up to a size taken under the lock,
 * in large chunks cut at line ends; then the latest line per key, found
 * from the line prefixes (no `JSON.parse` of superseded lines).
 */
import { read } from "node:fs";
import { promisify } from "node:util";
import { CorruptionError } from "../core/errors.js";
import { type DecodedLine, decodeLine, LineError, lineKey, parseLineObject } from "./format.js";

const readAsync = promisify(read);

/** Bytes read at once (a longer line grows the buffer). */
const CHUNK_BYTES = 32 * 1024 * 1024;

/** The text of a file, cut into chunks that each end with `\n`. */
export interface FileText {
  readonly chunks: string[];
  /** Byte offset just past the last `\n`: the complete lines. */
  readonly completeBytes: number;
  /** Bytes after the last `\n` (a torn last line), dropped. */
  readonly tornBytes: number;
}

/** Reads `fd` from `from` to `to` (bytes), keeping complete lines only. */
export async function readText(fd: number, to: number, from = 0): Promise<FileText> {
  const chunks: string[] = [];
  let buf = Buffer.allocUnsafe(Math.max(1, Math.min(to - from, CHUNK_BYTES)));
  let filled = 0;
  let pos = from;
  let complete = from;
  while (pos < to) {
    if (filled === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, filled);
      buf = bigger;
    }
    const { bytesRead } = await readAsync(fd, buf, filled, Math.min(buf.length - filled, to - pos), pos);
    if (bytesRead === 0) break; // the file shrank (a torn tail was repaired): what we have is all
    pos += bytesRead;
    filled += bytesRead;
    const nl = buf.lastIndexOf(10, filled - 1);
    if (nl < 0) continue;
    chunks.push(buf.toString("utf8", 0, nl + 1));
    complete += nl + 1;
    buf.copy(buf, 0, nl + 1, filled);
    filled -= nl + 1;
  }
  return { chunks, completeBytes: complete, tornBytes: filled };
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
  /** Chunk of each line. */
  readonly chunkOf: Uint32Array;
  readonly chunks: string[];
}

function scanOnce(chunks: string[], ctx: ScanContext, bad: Set<number>): Scan {
  const winner = new Map<string, number>();
  const starts: number[] = [];
  const chunkIds: number[] = [];
  let line = 0;
  for (let c = 0; c < chunks.length; c++) {
    const text = chunks[c] as string;
    let pos = 0;
    const len = text.length;
    while (pos < len) {
      let end = text.indexOf("\n", pos);
      if (end < 0) end = len;
      const index = line++;
      starts.push(pos);
      chunkIds.push(c);
      let stop = end;
      if (text.charCodeAt(stop - 1) === 13) stop--;
      if (stop > pos && !bad.has(index)) {
        let key = lineKey(text, pos, stop, ctx.prefix);
        if (key === undefined) {
          const blank = text.slice(pos, stop).trim() === "";
          if (!blank) {
            try {
              key = parseLineObject(text.slice(pos, stop), ctx.namespace).key;
            } catch (error) {
              if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
              bad.add(index);
            }
          }
        }
        if (key !== undefined) winner.set(key, index);
      }
      pos = end + 1;
    }
  }
  const winners = Int32Array.from(winner.values()).sort();
  return { lines: line, winners, starts, chunkOf: Uint32Array.from(chunkIds), chunks };
}

/** The text range of line `index` of a scan. */
export function lineRange(scan: Scan, index: number): { text: string; start: number; end: number } {
  const text = scan.chunks[scan.chunkOf[index] as number] as string;
  const start = scan.starts[index] as number;
  let end = text.indexOf("\n", start);
  if (end < 0) end = text.length;
  if (text.charCodeAt(end - 1) === 13) end--;
  return { text, start, end };
}

/** What {@link resolve} found. */
export interface Resolved {
  readonly scan: Scan;
  /** The winning lines, decoded, in file order. */
  readonly decoded: DecodedLine[];
  /** Winning line indexes matching `decoded`. */
  readonly indexes: number[];
  /** 1-based numbers of damaged lines that were skipped (only when `ctx.skip`). */
  readonly skipped: number[];
}

/**
 * Finds the latest valid line per key and decodes it. With `ctx.skip`, a
 * damaged winner is dropped and the key falls back to its previous valid
 * line (as if the damaged line were not there).
 * @throws CorruptionError (not in skip mode)
 */
export function resolve(chunks: string[], ctx: ScanContext, parseEntities: boolean): Resolved {
  const bad = new Set<number>();
  for (;;) {
    const scan = scanOnce(chunks, ctx, bad);
    const decoded: DecodedLine[] = [];
    const indexes: number[] = [];
    let again = false;
    for (const index of scan.winners) {
      const { text, start, end } = lineRange(scan, index);
      try {
        decoded.push(decodeLine(text, start, end, ctx.namespace, ctx.prefix, parseEntities));
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
