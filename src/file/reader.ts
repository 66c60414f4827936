/**
 * Reading a namespace file: the bytes up to a size taken under the lock,
 * in large chunks cut at line ends; then the latest line per key, found
 * from the line prefixes (no `JSON.parse` of superseded lines).
 */
import { read } from "node:fs";
import { promisify } from "node:util";
import type { Change } from "../core/change.js";
import { CorruptionError } from "../core/errors.js";
import {
  type Chunk,
  canonicalKey,
  checkLineCrc,
  decodeLine,
  KeyShape,
  keyRange,
  LineError,
  lineKey,
  parseLineObject,
} from "./format.js";
import { grow, KeyTable } from "./keys.js";

const readAsync = promisify(read);

/** Bytes read at once (a longer line grows the buffer). */
let chunkBytes = 32 * 1024 * 1024;

/** Test hook: bytes read at once (small values exercise chunk boundaries). */
export function setReadChunkBytes(bytes: number): void {
  chunkBytes = bytes;
}

/** The text of a file, cut into chunks that each end with `\n`. */
export interface FileText {
  readonly chunks: Chunk[];
  /** Byte offset just past the last `\n`: the complete lines. */
  readonly completeBytes: number;
  /** Bytes after the last `\n` (a torn last line), dropped. */
  readonly tornBytes: number;
}

/**
 * Reads `fd` from `from` to `to` (bytes), keeping complete lines only.
 * @param onChunk called with each chunk while the next one is being read
 */
export async function readText(
  fd: number,
  to: number,
  from = 0,
  onChunk?: (chunk: Chunk) => void | Promise<void>,
): Promise<FileText> {
  const chunks: Chunk[] = [];
  let carry: Buffer = Buffer.alloc(0);
  let pos = from;
  let complete = from;
  let pending: Promise<Block> | undefined;
  try {
    while (pos < to) {
      const block = await (pending ?? fill(fd, carry, pos, to));
      pending = undefined;
      pos = block.pos;
      const { buf, filled } = block;
      const eof = filled < buf.length; // the file shrank (a torn tail was cut off): what we have is all
      const nl = buf.lastIndexOf(10, filled - 1);
      let chunk: Chunk | undefined;
      if (nl < 0) {
        carry = buf.subarray(0, filled);
      } else {
        chunk = buf.subarray(0, nl + 1);
        chunks.push(chunk);
        complete += nl + 1;
        carry = buf.subarray(nl + 1, filled);
      }
      if (eof) {
        if (chunk && onChunk) await onChunk(chunk);
        break;
      }
      if (chunk && onChunk) {
        if (pos < to) pending = fill(fd, carry, pos, to);
        await onChunk(chunk);
      }
    }
  } catch (error) {
    // Never leave a read running into a descriptor the caller is about to close.
    await pending?.catch(() => undefined);
    throw error;
  }
  return { chunks, completeBytes: complete, tornBytes: carry.length };
}

interface Block {
  readonly buf: Buffer;
  readonly filled: number;
  /** File position after the block. */
  readonly pos: number;
}

/** Reads the next block: `carry` (the unfinished line of the previous one), then up to the chunk size from `pos`. */
async function fill(fd: number, carry: Buffer, pos: number, to: number): Promise<Block> {
  const buf = Buffer.allocUnsafe(carry.length + Math.min(to - pos, chunkBytes));
  carry.copy(buf, 0);
  let filled = carry.length;
  while (filled < buf.length) {
    const { bytesRead } = await readAsync(fd, buf, filled, buf.length - filled, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    filled += bytesRead;
  }
  return { buf, filled, pos };
}

/** How damaged lines are handled. */
export interface ScanContext {
  readonly file: string;
  readonly namespace: string;
  /** {@link linePrefix} of the namespace. */
  readonly prefix: Buffer;
  /** Skip damaged lines (recording their 1-based numbers) instead of throwing. */
  readonly skip: boolean;
}

/** The latest line per key: for each winner (in file order), its line index and where it lies. */
export interface Scan {
  /** Physical lines seen (1-based numbers run up to this). */
  readonly lines: number;
  /** Winning line indexes, in file order. */
  readonly winners: Int32Array;
  /** Start offset of each winner in its chunk. */
  readonly starts: Int32Array;
  /** End offset (before `\n` or `\r\n`) of each winner in its chunk. */
  readonly ends: Int32Array;
  /** Chunk of each winner. */
  readonly chunkOf: Int32Array;
  readonly chunks: Chunk[];
}

/** Lines between two pauses of a yielding scan (see {@link resolve}). */
const PAUSE_EVERY = 0x3fff;

/** Whether `buf[from, to)` is blank: only whitespace, as `String.prototype.trim` sees it. */
function blank(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c !== 32 && c !== 9 && c !== 13 && c !== 11 && c !== 12) return buf.toString("utf8", from, to).trim() === "";
  }
  return true;
}

/** The first pass over a file's lines, fed chunk by chunk (possibly while the next chunk is read). */
class Scanner {
  /** Key → slot; per slot, the key's latest line and where it lies. */
  readonly #slotOf: KeyTable;
  #cap = 1024;
  #lineOf = new Int32Array(this.#cap);
  #startOf = new Int32Array(this.#cap);
  #endOf = new Int32Array(this.#cap);
  #chunkOf = new Int32Array(this.#cap);
  #line = 0;

  constructor(
    readonly chunks: Chunk[],
    readonly ctx: ScanContext,
    readonly bad: Set<number>,
    readonly pause: (() => Promise<void>) | undefined,
  ) {
    this.#slotOf = new KeyTable(chunks);
  }

  /** Scans `chunks[c]`; awaits only with `pause`. */
  async scanChunk(c: number): Promise<void> {
    const { ctx, bad, pause } = this;
    const checkBad = bad.size > 0;
    const prefix = ctx.prefix;
    const slotOf = this.#slotOf;
    const buf = this.chunks[c] as Chunk;
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      let end = buf.indexOf(10, pos);
      if (end < 0) end = len;
      const index = this.#line++;
      if (pause && (index & PAUSE_EVERY) === 0) await pause();
      const start = pos;
      let stop = end;
      if (stop > start && buf[stop - 1] === 13) stop--;
      pos = end + 1;
      if (stop === start) continue; // empty line
      if (checkBad && bad.has(index)) continue;
      const shape = lineKey(buf, start, stop, prefix);
      let slot: number;
      if (shape !== KeyShape.Other) {
        // Every checksummed line is verified, superseded ones too: damage to a line's key
        // could otherwise make a later line of another key supersede it unnoticed.
        const from = keyRange[0] as number;
        const to = keyRange[1] as number;
        try {
          checkLineCrc(buf, start, stop, ctx.namespace);
        } catch (error) {
          if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
          bad.add(index);
          continue;
        }
        slot = shape === KeyShape.Raw ? slotOf.slot(c, from, to) : slotOf.slotOfText(canonicalKey);
      } else {
        if (blank(buf, start, stop)) continue;
        try {
          slot = slotOf.slotOfText(parseLineObject(buf.toString("utf8", start, stop), ctx.namespace).key);
        } catch (error) {
          if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
          bad.add(index);
          continue;
        }
      }
      if (slot === this.#cap) {
        this.#cap *= 2;
        this.#lineOf = grow(this.#lineOf);
        this.#startOf = grow(this.#startOf);
        this.#endOf = grow(this.#endOf);
        this.#chunkOf = grow(this.#chunkOf);
      }
      this.#lineOf[slot] = index;
      this.#startOf[slot] = start;
      this.#endOf[slot] = stop;
      this.#chunkOf[slot] = c;
    }
  }

  /** The winners in file order. */
  finish(): Scan {
    const keys = this.#slotOf.size;
    const line = this.#line;
    // Mark each winning line with its slot, then walk the lines.
    const slotAtLine = new Int32Array(line).fill(-1);
    for (let s = 0; s < keys; s++) slotAtLine[this.#lineOf[s] as number] = s;
    const winners = new Int32Array(keys);
    const starts = new Int32Array(keys);
    const ends = new Int32Array(keys);
    const chunkOf = new Int32Array(keys);
    let w = 0;
    for (let i = 0; i < line; i++) {
      const s = slotAtLine[i] as number;
      if (s < 0) continue;
      winners[w] = i;
      starts[w] = this.#startOf[s] as number;
      ends[w] = this.#endOf[s] as number;
      chunkOf[w] = this.#chunkOf[s] as number;
      w++;
    }
    return { lines: line, winners, starts, ends, chunkOf, chunks: this.chunks };
  }
}

async function scanOnce(
  chunks: Chunk[],
  ctx: ScanContext,
  bad: Set<number>,
  pause: (() => Promise<void>) | undefined,
): Promise<Scan> {
  const scanner = new Scanner(chunks, ctx, bad, pause);
  for (let c = 0; c < chunks.length; c++) await scanner.scanChunk(c);
  return scanner.finish();
}

/**
 * Reads `fd` up to `size` and {@link resolve}s it, scanning each chunk
 * while the next one is being read (for `load`).
 * @throws CorruptionError (not in skip mode)
 */
export async function readAndResolve(
  fd: number,
  size: number,
  ctx: ScanContext,
  parseEntities: boolean,
): Promise<Resolved> {
  const chunks: Chunk[] = [];
  const bad = new Set<number>();
  const scanner = new Scanner(chunks, ctx, bad, undefined);
  await readText(fd, size, 0, (chunk) => {
    chunks.push(chunk);
    return scanner.scanChunk(chunks.length - 1);
  });
  return resolve(chunks, ctx, parseEntities, undefined, { bad, scan: scanner.finish() });
}

/** What {@link resolve} found. */
export interface Resolved {
  readonly scan: Scan;
  /** The winning lines, decoded, in file order. */
  readonly decoded: Change[];
  /** For each of `decoded`, its position in `scan.winners` (and `scan.starts`…). */
  readonly positions: number[];
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
  first?: { readonly bad: Set<number>; readonly scan: Scan },
): Promise<Resolved> {
  const bad = first?.bad ?? new Set<number>();
  let firstScan = first?.scan;
  for (;;) {
    const scan = firstScan ?? (await scanOnce(chunks, ctx, bad, pause));
    firstScan = undefined;
    const decoded: Change[] = [];
    const positions: number[] = [];
    let again = false;
    for (let w = 0; w < scan.winners.length; w++) {
      if (pause && (w & PAUSE_EVERY) === PAUSE_EVERY) await pause();
      const chunk = chunks[scan.chunkOf[w] as number] as Chunk;
      try {
        decoded.push(
          decodeLine(chunk, scan.starts[w] as number, scan.ends[w] as number, ctx.namespace, ctx.prefix, parseEntities),
        );
        positions.push(w);
      } catch (error) {
        const index = scan.winners[w] as number;
        if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
        bad.add(index);
        again = true;
      }
    }
    if (!again) return { scan, decoded, positions, skipped: [...bad].sort((a, b) => a - b).map((i) => i + 1) };
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
