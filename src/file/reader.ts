/**
 * Reading a namespace file: the bytes up to a size taken under the lock,
 * in large chunks cut at line ends; then the latest line per key, found
 * from the line prefixes (no `JSON.parse` of superseded lines).
 */
import { read } from "node:fs";
import { promisify } from "node:util";
import { type Change, CorruptionError } from "../index.js";
import { EntityBatchError, KeyShape, LineDecoder } from "./decoder.js";
import { type Chunk, checkLineCrc, LineError, parseLineObject } from "./format.js";
import type { HintSpans } from "./hint-spans.js";
import { grow, KeyTable } from "./keys.js";

const readAsync = promisify(read);

/**
 * Bytes a pass over a file that keeps nothing of its chunks reads at once
 * (at most: a smaller `chunkBytes` wins), into buffers it reuses: small
 * enough that a chunk is still in the CPU's cache when it is scanned, and
 * that the buffers cost few page faults.
 */
export const PASS_BYTES = 1024 * 1024;

/** What a read leaves in place of a chunk whose bytes it let go of (its buffer reused). */
export const RELEASED: Buffer = Buffer.alloc(0);

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
 * @param chunkBytes bytes read at once (a longer line grows the buffer)
 * @param onChunk called with each chunk while the next one is being read
 * @param reuse read into two buffers in turn instead of a new one per
 *   chunk: a chunk is valid only until `onChunk` returns (or its promise
 *   settles), and the result holds no chunks. Fresh memory costs a page
 *   fault per 4 KiB page on first touch (on some virtual machines far more
 *   than the read itself); a scan that keeps nothing of a chunk should
 *   not pay it for every megabyte of the file.
 */
export async function readText(
  fd: number,
  to: number,
  chunkBytes: number,
  from = 0,
  onChunk?: (chunk: Chunk) => void | Promise<void>,
  reuse = false,
): Promise<FileText> {
  const chunks: Chunk[] = [];
  let carry: Buffer = Buffer.alloc(0);
  let pos = from;
  let complete = from;
  let pending: Promise<Block> | undefined;
  /** With `reuse`: the two buffers read into in turn, and the one the next read fills. */
  const spare: (Buffer | undefined)[] = [undefined, undefined];
  let turn = 0;
  const next = (): Promise<Block> => {
    if (!reuse) return fill(fd, carry, pos, to, chunkBytes);
    const t = turn;
    turn ^= 1;
    return fill(fd, carry, pos, to, chunkBytes, spare[t]).then((block) => {
      spare[t] = block.backing;
      return block;
    });
  };
  try {
    while (pos < to) {
      const block = await (pending ?? next());
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
        if (!reuse) chunks.push(chunk);
        complete += nl + 1;
        carry = buf.subarray(nl + 1, filled);
      }
      if (eof) {
        if (chunk && onChunk) await onChunk(chunk);
        break;
      }
      if (chunk && onChunk) {
        // The next read copies `carry` out of this chunk's buffer before it awaits anything.
        if (pos < to) {
          pending = next();
          // Awaited below (or in the catch): not an unhandled rejection if it fails while `onChunk` runs.
          pending.catch(() => undefined);
        }
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
  /** The whole buffer `buf` lies in (for a reader that reuses it). */
  readonly backing: Buffer;
  readonly filled: number;
  /** File position after the block. */
  readonly pos: number;
}

/**
 * Reads the next block: `carry` (the unfinished line of the previous one),
 * then up to `chunkBytes` from `pos`; into `into` when it has room for
 * `carry` and half a chunk (reading only what fits), else into a new
 * buffer. `carry` is copied before the first `await`.
 */
async function fill(
  fd: number,
  carry: Buffer,
  pos: number,
  to: number,
  chunkBytes: number,
  into?: Buffer,
): Promise<Block> {
  let want = carry.length + Math.min(to - pos, chunkBytes);
  let backing: Buffer;
  // At least one byte of room: a buffer full of `carry` alone would read nothing, forever.
  if (into !== undefined && into.length - carry.length >= Math.min(to - pos, Math.max(1, chunkBytes >>> 1))) {
    backing = into;
    want = Math.min(want, into.length);
  } else {
    backing = Buffer.allocUnsafe(want);
  }
  const buf = backing.subarray(0, want);
  carry.copy(buf, 0);
  let filled = carry.length;
  while (filled < buf.length) {
    const { bytesRead } = await readAsync(fd, buf, filled, buf.length - filled, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    filled += bytesRead;
  }
  return { buf, backing, filled, pos };
}

/** How a namespace's file is read (plain data: it crosses to a compaction worker). */
export interface ScanContext {
  readonly file: string;
  readonly namespace: string;
  /** {@link linePrefix} of the namespace. */
  readonly prefix: Uint8Array;
  /** Skip damaged lines (recording their 1-based numbers) instead of throwing. */
  readonly skip: boolean;
  /** Bytes read at once. */
  readonly chunkBytes: number;
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
  /** File offset of each chunk's first byte. */
  readonly chunkPos: number[];
  /**
   * Per winner, its change when the scan already decoded the line (a line
   * not in statelog's own shape, parsed to find its key; a hint's winner,
   * decoded as it was read, its entity possibly still waiting in the
   * decoder's batch until {@link decodeWinners} flushes it), so that it is
   * not decoded again; `undefined` when no line was.
   */
  readonly parsed: (Change | undefined)[] | undefined;
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

/** One read of a file: its chunks, its decoder, the damaged lines found so far. */
export interface FileRead {
  readonly chunks: Chunk[];
  /** File offset of each chunk's first byte. */
  readonly chunkPos: number[];
  readonly ctx: ScanContext;
  readonly decoder: LineDecoder;
  /** Indexes of damaged lines (only grows in skip mode). */
  readonly bad: Set<number>;
  /** Awaited every few thousand lines (background work), or nothing. */
  readonly pause: (() => Promise<void>) | undefined;
}

export function fileRead(
  chunks: Chunk[],
  ctx: ScanContext,
  pause: (() => Promise<void>) | undefined,
  chunkPos: number[] = offsetsOf(chunks),
): FileRead {
  return { chunks, chunkPos, ctx, decoder: new LineDecoder(ctx.namespace, ctx.prefix, true), bad: new Set(), pause };
}

/** The file offsets of consecutive chunks read from offset 0. */
function offsetsOf(chunks: readonly Chunk[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const c of chunks) {
    out.push(at);
    at += c.length;
  }
  return out;
}

/** The first pass over a file's lines, fed chunk by chunk (possibly while the next chunk is read). */
export class Scanner {
  /** Key → slot; per slot, the key's latest line and where it lies. */
  readonly #slotOf: KeyTable;
  #cap: number;
  #lineOf: Int32Array<ArrayBuffer>;
  #startOf: Int32Array<ArrayBuffer>;
  #endOf: Int32Array<ArrayBuffer>;
  #chunkOf: Int32Array<ArrayBuffer>;
  /** Per slot, the change of its latest line when that line was parsed in full; made on the first such line. */
  #parsedOf: (Change | undefined)[] | undefined;
  #line = 0;
  /** With `distinctKeys`: no key table, each line scanned gets the next slot; the slots given so far. */
  readonly #distinct: boolean;
  #slots = 0;

  /**
   * @param read the file read whose chunks are scanned
   * @param expectedKeys keys expected (when known, as from a hint): room for them is made at once
   * @param distinctKeys the caller knows that no two lines it scans share a key (the winners of a
   *   hint whose bytes are verified, with no line after them): keys are not looked up
   */
  constructor(
    readonly read: FileRead,
    expectedKeys = 0,
    distinctKeys = false,
  ) {
    this.#distinct = distinctKeys;
    this.#slotOf = new KeyTable(read.chunks, distinctKeys ? 0 : expectedKeys);
    this.#cap = Math.max(1024, expectedKeys);
    this.#lineOf = new Int32Array(this.#cap);
    this.#startOf = new Int32Array(this.#cap);
    this.#endOf = new Int32Array(this.#cap);
    this.#chunkOf = new Int32Array(this.#cap);
  }

  /** Scans `chunks[c]`; awaits only with `pause`. */
  async scanChunk(c: number): Promise<void> {
    const { bad, pause } = this.read;
    const checkBad = bad.size > 0;
    const buf = this.read.chunks[c] as Chunk;
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
      this.#scanLine(buf, c, start, stop, index, false);
    }
  }

  /**
   * Scans the line `chunks[c][start, stop)` (no `\r\n`), line `index` of
   * the file, read from a hint's winners. With `parseEntity` given, also
   * decodes it at once (parsing its entity when `true`, possibly in the
   * decoder's batch, which {@link decodeWinners} flushes), so that
   * {@link decodeWinners} does not read `chunks[c]` for it again (the
   * caller may reuse that buffer: a batch holds a copy of the entity's
   * text). With `verified`, the line's own
   * checksum is not computed: the caller checked a checksum over bytes
   * that hold it.
   * @throws CorruptionError | LineError (a line that cannot be decoded)
   */
  scanAt(c: number, start: number, stop: number, index: number, parseEntity?: boolean, verified = false): void {
    if (index >= this.#line) this.#line = index + 1;
    if (stop <= start) return;
    const slot = this.#scanLine(this.read.chunks[c] as Chunk, c, start, stop, index, verified);
    if (parseEntity === undefined || slot < 0) return;
    if (this.#parsedOf?.[slot] !== undefined) return; // a line in another shape: parsed to find its key
    this.#parsedOf ??= [];
    const { decoder } = this.read;
    this.#parsedOf[slot] = decoder.decodeScanned(this.read.chunks[c] as Chunk, start, stop, parseEntity, index);
    if (decoder.entitiesDue()) decoder.flushEntities();
  }

  /** The next line scanned by {@link scanChunk} is line `index` (after a hint's winners: the hint's line count). */
  continueAt(index: number): void {
    this.#line = index;
  }

  /** Scans one line; returns its key's slot, or -1 when the line is blank or damaged (and skipped). */
  #scanLine(buf: Buffer, c: number, start: number, stop: number, index: number, verified: boolean): number {
    const { ctx, bad, decoder } = this.read;
    const slotOf = this.#slotOf;
    const shape = decoder.key(buf, start, stop);
    let slot: number;
    let parsed: Change | undefined;
    if (shape !== KeyShape.Other) {
      // Every checksummed line is verified, superseded ones too: damage to a line's key
      // could otherwise make a later line of another key supersede it unnoticed.
      if (!verified) {
        try {
          checkLineCrc(buf, start, stop, ctx.namespace);
        } catch (error) {
          if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
          bad.add(index);
          return -1;
        }
      }
      slot = this.#distinct
        ? this.#slots++
        : shape === KeyShape.Raw
          ? slotOf.slot(c, decoder.keyStart, decoder.keyEnd)
          : slotOf.slotOfText(decoder.escapedKey);
    } else {
      if (blank(buf, start, stop)) return -1;
      try {
        const keyed = parseLineObject(buf.toString("utf8", start, stop), ctx.namespace);
        slot = this.#distinct ? this.#slots++ : slotOf.slotOfText(keyed.key);
        parsed = keyed.change;
      } catch (error) {
        if (!(error instanceof LineError) || !ctx.skip) throw corruption(ctx, index, error);
        bad.add(index);
        return -1;
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
    if (parsed !== undefined) {
      this.#parsedOf ??= [];
      this.#parsedOf[slot] = parsed;
    } else if (this.#parsedOf !== undefined) {
      this.#parsedOf[slot] = undefined;
    }
    return slot;
  }

  /** The winners in file order. */
  finish(): Scan {
    const keys = this.#distinct ? this.#slots : this.#slotOf.size;
    const line = this.#line;
    // Mark each winning line with its slot, then walk the lines.
    const slotAtLine = new Int32Array(line).fill(-1);
    for (let s = 0; s < keys; s++) slotAtLine[this.#lineOf[s] as number] = s;
    const winners = new Int32Array(keys);
    const starts = new Int32Array(keys);
    const ends = new Int32Array(keys);
    const chunkOf = new Int32Array(keys);
    const parsedOf = this.#parsedOf;
    const parsed: (Change | undefined)[] | undefined = parsedOf && new Array(keys);
    let w = 0;
    for (let i = 0; i < line; i++) {
      const s = slotAtLine[i] as number;
      if (s < 0) continue;
      winners[w] = i;
      starts[w] = this.#startOf[s] as number;
      ends[w] = this.#endOf[s] as number;
      chunkOf[w] = this.#chunkOf[s] as number;
      if (parsed) parsed[w] = parsedOf?.[s];
      w++;
    }
    return {
      lines: line,
      winners,
      starts,
      ends,
      chunkOf,
      chunks: this.read.chunks,
      chunkPos: this.read.chunkPos,
      parsed,
    };
  }
}

async function scanAll(read: FileRead): Promise<Scan> {
  const scanner = new Scanner(read);
  for (let c = 0; c < read.chunks.length; c++) await scanner.scanChunk(c);
  return scanner.finish();
}

/** What {@link resolve} found. */
export interface Resolved {
  readonly scan: Scan;
  /** The winning lines, decoded, in file order: `decoded[i]` is the line `scan.winners[i]`. */
  readonly decoded: Change[];
  /** 1-based numbers of damaged lines that were skipped (only when `ctx.skip`). */
  readonly skipped: number[];
  /** The winners' spans and their checksums, when the read checked every winner and computed them (for a hint). */
  readonly spans?: HintSpans | undefined;
}

/**
 * Reads `fd` up to `size` and finds and decodes its latest valid line per
 * key (see {@link resolve}), scanning each chunk while the next one is
 * being read (for `load`).
 * @throws CorruptionError (not in skip mode)
 */
export async function readAndResolve(
  fd: number,
  size: number,
  ctx: ScanContext,
  parseEntities: boolean,
): Promise<Resolved> {
  const read = fileRead([], ctx, undefined, []);
  const scanner = new Scanner(read);
  let at = 0;
  await readText(fd, size, ctx.chunkBytes, 0, (chunk) => {
    read.chunks.push(chunk);
    read.chunkPos.push(at);
    at += chunk.length;
    return scanner.scanChunk(read.chunks.length - 1);
  });
  return decodeWinners(read, scanner.finish(), parseEntities);
}

/**
 * Finds the latest valid line per key of `chunks` and decodes it. With
 * `ctx.skip`, a damaged winner is dropped and the key falls back to its
 * previous valid line (as if the damaged line were not there).
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
  const read = fileRead(chunks, ctx, pause);
  return decodeWinners(read, await scanAll(read), parseEntities);
}

/** Decodes the winners of `scan`; a damaged one (in skip mode) is marked bad and the file scanned again. */
export async function decodeWinners(read: FileRead, first: Scan, parseEntities: boolean): Promise<Resolved> {
  const { ctx, decoder, bad, pause } = read;
  for (let scan = first; ; scan = await scanAll(read)) {
    const decoded: Change[] = [];
    let again = false;
    /** Marks the damaged line(s) of `error`, a damage of line `index` unless it names its own; throws unless skipping. */
    const damaged = (error: unknown, index: number): void => {
      const lines = error instanceof EntityBatchError ? error.lines : [index];
      if (!(error instanceof LineError) || !ctx.skip) {
        if (error instanceof LineError && !(error instanceof EntityBatchError)) {
          // Entities still waiting in a batch are of earlier lines: the first damaged line is the one named.
          try {
            decoder.flushEntities();
          } catch (earlier) {
            throw corruption(ctx, earlier instanceof EntityBatchError ? (earlier.lines[0] as number) : index, earlier);
          }
        }
        throw corruption(ctx, lines[0] as number, error);
      }
      for (const line of lines) bad.add(line);
      again = true;
    };
    // Entities a scan with a hint left waiting (scanAt) are parsed first.
    try {
      decoder.flushEntities();
    } catch (error) {
      damaged(error, -1);
    }
    for (let w = 0; w < scan.winners.length; w++) {
      if (pause && (w & PAUSE_EVERY) === PAUSE_EVERY) await pause();
      const parsed = scan.parsed?.[w];
      if (parsed !== undefined) {
        decoded.push(parsed);
        continue;
      }
      const chunk = scan.chunks[scan.chunkOf[w] as number] as Chunk;
      const index = scan.winners[w] as number;
      try {
        decoded.push(decoder.decode(chunk, scan.starts[w] as number, scan.ends[w] as number, parseEntities, index));
        if (decoder.entitiesDue()) decoder.flushEntities();
      } catch (error) {
        damaged(error, index);
      }
    }
    try {
      decoder.flushEntities();
    } catch (error) {
      damaged(error, -1);
    }
    if (!again) return { scan, decoded, skipped: [...bad].sort((a, b) => a - b).map((i) => i + 1) };
  }
}

/** A {@link LineError} of line `index` (0-based) as the file's {@link CorruptionError}; other errors as they are. */
export function corruption(ctx: ScanContext, index: number, error: unknown): unknown {
  if (!(error instanceof LineError)) return error;
  return new CorruptionError(
    ctx.file,
    index + 1,
    `${error.message} (pass onCorruption: "skip" to skip damaged lines)`,
    { cause: error },
  );
}
