/**
 * The segments of the file event store on disk: reading events back from
 * them (positioned reads on descriptors opened on first use). The open's
 * scan of their lines is in `./scan.ts`.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { RecordedEvent } from "../../events/index.js";
import { CorruptionError } from "../../index.js";
import { readUpTo } from "../fs.js";
import { decodeLinesAt } from "./format.js";

/** One segment file: its name, the global position of its first event, and its valid size in bytes. */
export interface Segment {
  readonly name: string;
  readonly first: number;
  size: number;
  /** Bytes at the start of the segment its index file covers. */
  indexed: number;
  /** Global position after the last event its index file covers. */
  indexedEnd: number;
  /** False after a failed write to its index file: the next open scans what the file misses. */
  indexWritable: boolean;
}

/**
 * Most bytes read at once when reads go through a segment in order (a
 * catch-up reads the lines after the ones it just read): one positioned
 * read serves the next few thousand lines. Each read in order reads twice
 * as much as the one before, up to this: a catch-up of one stream, whose
 * lines come in runs between other streams' lines, reads little past the
 * end of each run.
 */
const READ_AHEAD_BYTES = 1 << 20;

/**
 * Lines decoded per `JSON.parse` (a read of more lines is decoded in runs
 * of this many): one parse of a few hundred lines costs less than one per
 * line, but the arrays of thousands of events one parse of a long run
 * builds outlive the collector's young generation and cost more.
 */
const DECODE_RUN_LINES = 256;

/** A read that starts at most this many bytes after the previous one's end counts as in order. */
const SEQUENTIAL_GAP_BYTES = 64 * 1024;

/** The segments in global order, and descriptors to read them. */
export class Segments {
  readonly list: Segment[] = [];
  readonly #fds = new Map<string, number>();
  /** The bytes of the last read from a segment (only committed bytes: never past the segment's size). */
  #window: { segment: Segment; offset: number; buf: Buffer } | undefined;
  /**
   * The memory of every window of at most {@link READ_AHEAD_BYTES}, reused
   * from read to read: a fresh buffer of that size per read costs more
   * (the system maps and clears new pages) than copying the bytes into it.
   * Decoding copies what it keeps, so nothing refers to a window's bytes
   * after the next read.
   */
  #scratch: Buffer | undefined;

  constructor(readonly directory: string) {}

  /** The segment that holds global position `g` (the last one whose first position is at most `g`). */
  holding(g: number): Segment | undefined {
    const list = this.list;
    let lo = 0;
    let hi = list.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = list[mid] as Segment;
      if (s.first <= g) {
        found = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  #fd(segment: Segment): number {
    let fd = this.#fds.get(segment.name);
    if (fd === undefined) {
      fd = openSync(join(this.directory, segment.name), "r");
      this.#fds.set(segment.name, fd);
    }
    return fd;
  }

  /** Reads `bytes` at `offset` of `segment` (into `buf` when given: at least `bytes` long). */
  readAt(segment: Segment, offset: number, bytes: number, buf: Buffer = Buffer.allocUnsafe(bytes)): Buffer {
    const done = readUpTo(this.#fd(segment), buf, bytes, offset);
    return done === buf.length ? buf : buf.subarray(0, done);
  }

  /**
   * `count` consecutive events from their lines (`bytes` at `offset` of the
   * segment holding global position `g`); `kept`: whether they are read to
   * be kept or, in global order, to pass (`decodeLinesAt`).
   * @throws CorruptionError when a line is damaged or is not the event the index expects
   */
  readLines(g: number, offset: number, bytes: number, count: number, kept = true): RecordedEvent[] {
    const segment = this.holding(g);
    const file = join(this.directory, segment?.name ?? "?");
    if (!segment) throw new CorruptionError(file, undefined, `no segment holds global position ${g}`);
    const { buf, start } = this.#bytes(segment, offset, bytes);
    // Runs of at most DECODE_RUN_LINES lines per JSON.parse (see there).
    let out: RecordedEvent[] | undefined;
    let at = start;
    for (let i = 0; i < count; ) {
      const n = Math.min(DECODE_RUN_LINES, count - i);
      const run = buf.length - start < bytes ? { bad: 0, at } : decodeLinesAt(buf, at, n, kept);
      if (run.records === undefined) {
        // Forget the bytes read: a later read goes to the disk again (the line may have been repaired by then).
        this.#window = undefined;
        const line = offset + run.at - start;
        throw new CorruptionError(
          file,
          undefined,
          `damaged event line at byte ${line} (checksum or JSON); restore from a backup or remove the line, then delete the index-*.idx files`,
        );
      }
      const records = run.records;
      for (let k = 0; k < n; k++) {
        const found = (records[k] as RecordedEvent).globalPosition;
        if (found !== g + i + k) {
          throw new CorruptionError(
            file,
            undefined,
            `the line of event ${i + k + 1} of ${count} read from byte ${offset} holds global position ${found}, the index says ${g + i + k} (delete the index-*.idx files: the next open rebuilds them)`,
          );
        }
      }
      if (n === count) return records;
      out ??= [];
      for (let k = 0; k < n; k++) out.push(records[k] as RecordedEvent);
      i += n;
      at = run.end;
    }
    return out ?? [];
  }

  /**
   * `bytes` at `offset` of `segment`: `buf` from `start` on (shorter when
   * the file is). From the last read's bytes when they hold them; a read
   * that follows the last one in order reads ahead: twice the last read's
   * bytes, up to {@link READ_AHEAD_BYTES}, never past the segment's
   * committed size.
   */
  #bytes(segment: Segment, offset: number, bytes: number): { buf: Buffer; start: number } {
    const w = this.#window;
    const same = w !== undefined && w.segment === segment && offset >= w.offset;
    if (same && offset + bytes <= w.offset + w.buf.length) return { buf: w.buf, start: offset - w.offset };
    const inOrder = same && offset <= w.offset + w.buf.length + SEQUENTIAL_GAP_BYTES;
    const size = inOrder ? Math.max(bytes, Math.min(READ_AHEAD_BYTES, 2 * w.buf.length, segment.size - offset)) : bytes;
    let into: Buffer | undefined;
    if (size <= READ_AHEAD_BYTES) {
      this.#scratch ??= Buffer.allocUnsafe(READ_AHEAD_BYTES);
      into = this.#scratch.subarray(0, size);
    }
    const buf = this.readAt(segment, offset, size, into);
    this.#window = { segment, offset, buf };
    return { buf, start: 0 };
  }

  /** Closes the descriptor of one segment (before it is deleted). */
  forget(segment: Segment): void {
    if (this.#window?.segment === segment) this.#window = undefined;
    const fd = this.#fds.get(segment.name);
    if (fd !== undefined) closeSync(fd);
    this.#fds.delete(segment.name);
  }

  closeAll(): void {
    this.#window = undefined;
    this.#scratch = undefined;
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

/** The index entries of scanned lines, in global order. */
export interface ScannedLines {
  /** Global position of the first line (NaN when none). */
  g: number;
  readonly lengths: number[];
  readonly times: number[];
  readonly streams: string[];
  readonly positions: number[];
  /** Absolute byte offset just past the last whole batch. */
  good: number;
}
