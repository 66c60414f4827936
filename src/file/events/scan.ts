/**
 * The read-only scan of a file event store's directory: everything an open
 * decides, as data, without writing, cutting or removing anything (and
 * without a lock file). The open (`./load.ts`) loads the events it hands
 * out into the index and applies its decisions (the repairs);
 * `statelog verify` reports from the same data.
 *
 * Decided here: the snapshot (the newest that decodes); the index files
 * whose segment is gone; per segment, whether it is an empty file the open
 * must not use, how much of its index file agrees with it and with the
 * segments before it (the open trusts that part and cuts the rest off),
 * whether its first event is at the position its name says,
 * where its last whole append ends and the torn tail after it (allowed in
 * the last segment that holds bytes only: the empty segments after it are
 * what a roll left before an OS crash with sync "none"); the global
 * position of the next append; each stream's positions; the stored events;
 * and the damage (faults) for which the open refuses the store.
 *
 * Like the open, the scan reads an index file instead of the lines it
 * covers and scans only the rest of each segment, `readBytes` at a time
 * into one reused buffer. `everyLine` (verify) reads every line, each one
 * also checked to decode as an event, with the same decisions;
 * `allFaults` (verify) goes on after a fault instead of stopping at the
 * first one.
 */
import { closeSync, fstatSync, openSync, readFileSync, type Stats, statSync } from "node:fs";
import { join } from "node:path";
import { CorruptionError } from "../../index.js";
import { readUpTo } from "../fs.js";
import {
  decodeLineAt,
  INDEX_PREFIX,
  INDEX_SUFFIX,
  indexName,
  lineCrcMatches,
  numberIn,
  SEGMENT_PREFIX,
  SEGMENT_SUFFIX,
  SNAPSHOT_PREFIX,
  SNAPSHOT_SUFFIX,
  snapshotName,
} from "./format.js";
import { agreeingBlocks, decodeIndex, type IndexBlock } from "./index-file.js";
import { blockFromScan } from "./index-writer.js";
import { decodeSnapshot, type SnapshotData } from "./snapshot.js";

/** Bytes of a segment that no index covers read at once. */
export const REBUILD_READ_BYTES = 1024 * 1024;

/** The kinds of damage the scan finds (see {@link Fault}). */
export const FaultKind = {
  /** A line that fails its checksum or is not JSON (or its `"n"` is not a batch length). */
  Damaged: "damaged",
  /** `everyLine` only: a whole, checksummed line that does not decode as an event. */
  NotAnEvent: "not an event",
  /** A global position that is not the one expected (or not past every one seen). */
  Position: "position",
  /** An append that starts inside another one. */
  NestedBatch: "nested batch",
  /** A stream's position that does not follow its last one. */
  StreamJump: "stream jump",
  /** A segment before the last one that holds bytes ends inside an append (a crash cuts only the log's last). */
  CutAppend: "cut append",
  /**
   * A segment whose first event is not at the global position its name
   * says (renamed by hand, or a copy gone wrong): reads find an event by
   * the names, so they would read another segment's lines.
   */
  Misnamed: "misnamed segment",
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

/** An append as the scan found it: its length (its first line's `"n"`), its first line, and its whole lines. */
export interface Batch {
  readonly length: number;
  readonly line: number;
  readonly whole: number;
}

/** Damage: the open refuses the store for the first one. `file`: the segment's path; `line`: 1-based. */
export type Fault =
  | { readonly kind: typeof FaultKind.Damaged; readonly file: string; readonly line: number }
  | { readonly kind: typeof FaultKind.NotAnEvent; readonly file: string; readonly line: number }
  | {
      readonly kind: typeof FaultKind.Position;
      readonly file: string;
      readonly line: number;
      readonly g: number;
      /** The position the log needed there (NaN: unknown, after damage or before the first event). */
      readonly expected: number;
      /** The highest position seen before. */
      readonly after: number;
      /** Whether it is the first line of its segment. */
      readonly segmentStart: boolean;
    }
  | {
      readonly kind: typeof FaultKind.NestedBatch;
      readonly file: string;
      readonly line: number;
      readonly length: number;
      readonly outer: { readonly length: number; readonly line: number };
    }
  | {
      readonly kind: typeof FaultKind.StreamJump;
      readonly file: string;
      readonly line: number;
      readonly stream: string;
      readonly position: number;
      readonly after: number;
    }
  | {
      readonly kind: typeof FaultKind.Misnamed;
      readonly file: string;
      /** Always 1: the segment's first line. */
      readonly line: number;
      /** The global position its name says. */
      readonly named: number;
      /** The global position of its first event. */
      readonly g: number;
      /** Whether another segment of the directory is named after `g`. */
      readonly taken: boolean;
    }
  | {
      readonly kind: typeof FaultKind.CutAppend;
      readonly file: string;
      /** The append cut short (fewer whole lines than announced), if any. */
      readonly batch: Batch | undefined;
      /** The line number of a last line without its newline, if any. */
      readonly tornLine: number | undefined;
    };

/** The end of the last segment that holds bytes, after its last whole append: dropped (and cut off) by the open. */
export interface TornTail {
  /** Byte offset where it starts: the open cuts the segment there. */
  readonly from: number;
  /** The append it cuts short (fewer whole lines than announced), if any. */
  readonly batch: Batch | undefined;
  /** A last whole line that fails its checksum (taken for a write a crash cut short), if any: its line number. */
  readonly damagedLine: number | undefined;
  /** A last line without its newline, if any: its line number. */
  readonly tornLine: number | undefined;
}

/** A segment's index file, as the scan found it. */
export interface IndexScan {
  /** Its size. */
  readonly bytes: number;
  /** Bytes of its blocks that pass their checksums (`decodeIndex`). */
  readonly valid: number;
  /** Bytes of the blocks that agree with the segment, from the first block's position on (`agreeingBlocks`). */
  readonly agreeing: number;
  /** Bytes the open keeps: the agreeing blocks when they follow the events of the segments before; the rest is cut off. */
  readonly kept: number;
  /** Blocks it keeps. */
  readonly blocks: number;
}

/** Why the open removes an empty segment (with its index file) instead of using it. */
export const RemovedSegment = {
  /** Its name claims positions an earlier segment holds: a roll whose new segment could neither be made durable nor removed. */
  Held: "held",
  /** Named past the events: a roll, then an OS crash with sync "none" that lost the appends before it. */
  Past: "past",
} as const;
export type RemovedSegment = (typeof RemovedSegment)[keyof typeof RemovedSegment];

/** What the scan decided for one segment. */
export interface SegmentScan {
  readonly name: string;
  readonly file: string;
  /** The global position its name says it starts at. */
  readonly first: number;
  /** Its size on disk. */
  readonly size: number;
  /** Set when the open removes it: an empty segment it must not use. */
  readonly removed: RemovedSegment | undefined;
  /** The global position the next event had to have when the scan came to it (NaN: any). */
  readonly nextBefore: number;
  /** The global position of its first event (undefined: none read). */
  readonly firstEvent: number | undefined;
  /** Its index file, when it has one (not read for a removed segment). */
  readonly index: IndexScan | undefined;
  /** Bytes at its start that the index file covers (its kept blocks), and the global position after them. */
  readonly indexed: number;
  readonly indexedEnd: number;
  /** The offset just past its last whole append: its size when nothing is torn. */
  readonly good: number;
  readonly torn: TornTail | undefined;
  /** Whole lines read (with `everyLine` all of them, otherwise those no index covers). */
  readonly lines: number;
  /** Stored events in it (of whole appends, not expired). */
  readonly events: number;
}

/** A stream's positions: its first stored one and its last one. */
export interface StreamPositions {
  first: number;
  last: number;
}

/** What the scan decided for the directory. */
export interface DirectoryScan {
  /** The snapshot the open uses (the newest that decodes), if any; `legacy`: of the earlier version (to rewrite). */
  readonly snapshot: { readonly data: SnapshotData; readonly legacy: boolean } | undefined;
  /** Events before this global position expired (retention, as the snapshot recorded it). */
  readonly expiredBefore: number;
  /** Index files whose segment is gone (derived data of nothing): the open removes them. */
  readonly orphanIndexes: readonly string[];
  /** The segments, in global order (the scan stops at the first fault without `allFaults`). */
  readonly segments: readonly SegmentScan[];
  /** The global position of the next append. */
  readonly next: number;
  /** Each stream's positions, streams of the snapshot whose events all expired included. */
  readonly streams: ReadonlyMap<string, StreamPositions>;
  /** Stored events (of whole appends, not expired). */
  readonly events: number;
  /** Whole lines read. */
  readonly lines: number;
  /** The damage found, in the order of the segments (and of the lines in each); the open refuses the store for any. */
  readonly faults: readonly Fault[];
}

/** Where the events and decisions go as the scan finds them (the open fills its index and repairs from here). */
export interface ScanSink {
  /** Before the segments: the snapshot's `expiredBefore`, and the bytes of the index files it will read. */
  begin?(start: { readonly expiredBefore: number; readonly indexBytes: number }): void;
  /**
   * A run of whole appends of `segment`, in global order: the blocks of its
   * index file, then (`scanned`) the lines no index covers, one block per
   * read (`mtime` empty). None after the first fault.
   */
  run?(segment: string, block: IndexBlock, scanned: boolean): void;
  /** A segment's decisions, once scanned, before the next one is (not after a fault in it without `allFaults`). */
  segment?(segment: SegmentScan): Promise<void> | void;
  /** After each read of segment bytes. */
  read?(bytes: number): Promise<void> | void;
}

export interface ScanOptions {
  /** Bytes of a segment read at once. @default REBUILD_READ_BYTES */
  readonly readBytes?: number;
  /** Read every line of every segment, each also checked to decode as an event (not only what no index covers). */
  readonly everyLine?: boolean;
  /** Go on after a fault (every fault is reported), instead of stopping at the first. */
  readonly allFaults?: boolean;
  readonly sink?: ScanSink;
}

/** Thrown inside the scan to stop at the first fault. */
const STOP = Symbol("stop");

/**
 * Scans `directory` (whose file names are `names`) without changing it:
 * see the module's description.
 */
export async function scanDirectory(
  directory: string,
  names: readonly string[],
  options: ScanOptions = {},
): Promise<DirectoryScan> {
  return new DirectoryScanner(directory, names, options).scan();
}

/**
 * `file`'s status: a file, named as `what` (`a segment`…), is expected there.
 * @throws CorruptionError (a directory or something else in its place)
 */
function regularFile(file: string, what: string): Stats {
  const st = statSync(file);
  if (st.isFile()) return st;
  const found = st.isDirectory() ? "a directory" : "not a regular file";
  throw new CorruptionError(file, undefined, `${found} where ${what} belongs: move it away`);
}

/** The index fields of one line, undefined when it is damaged (its checksum, its JSON, or its `"n"`). */
function parseLine(
  buf: Buffer,
  start: number,
  end: number,
): { g: number; n: number; s: string; p: number; ts: number } | undefined {
  if (!lineCrcMatches(buf, start, end)) return undefined;
  let o: { g: number; n?: number; s: string; p: number; ts: string };
  try {
    o = JSON.parse(buf.toString("utf8", start, end));
  } catch {
    return undefined;
  }
  if (o.n !== undefined && !(Number.isSafeInteger(o.n) && o.n > 1)) return undefined;
  return { g: o.g, n: o.n ?? 1, s: o.s, p: o.p, ts: Date.parse(o.ts) };
}

/**
 * The rule of a stream's positions, for an event of a whole append at
 * `position` of stream `s`: it must follow the stream's last one (the first
 * one seen may be any: retention deletes old segments). Moves the stream's
 * positions on (an `expired` event, before the snapshot's first stored
 * position, moves its first one past it). Returns the stream's last
 * position before when the event does not follow it, else -1.
 */
function follow(s: StreamPositions, position: number, expired: boolean): number {
  const last = s.last;
  let jumped = -1;
  if (last === 0) {
    // First sight of a stream whose older events retention deleted: its positions go on from here.
    if (position > 1) s.first = position;
  } else if (position !== last + 1) jumped = last;
  s.last = position;
  if (expired) s.first = position + 1;
  return jumped;
}

/** Lines of a segment read but not yet handed out as a run (the last ones may be an append still open). */
class PendingLines {
  g = Number.NaN;
  readonly lengths: number[] = [];
  readonly times: number[] = [];
  readonly streams: string[] = [];
  readonly positions: number[] = [];
  readonly globals: number[] = [];

  get length(): number {
    return this.lengths.length;
  }

  push(g: number, length: number, time: number, stream: string, position: number): void {
    if (this.lengths.length === 0) this.g = g;
    this.lengths.push(length);
    this.times.push(time);
    this.streams.push(stream);
    this.positions.push(position);
    this.globals.push(g);
  }

  /** Removes the first `n` lines, returning their block (from byte `from`). */
  take(n: number, from: number): IndexBlock | undefined {
    const block = blockFromScan(
      {
        g: this.g,
        lengths: this.lengths.slice(0, n),
        times: this.times.slice(0, n),
        streams: this.streams.slice(0, n),
        positions: this.positions.slice(0, n),
        good: from,
      },
      from,
      "",
    );
    this.drop(0, n);
    return block;
  }

  /** Drops lines `from…from + n - 1`. */
  drop(from: number, n: number): void {
    for (const column of [this.lengths, this.times, this.streams, this.positions, this.globals]) column.splice(from, n);
    this.g = this.globals[0] ?? Number.NaN;
  }
}

class DirectoryScanner {
  readonly #readBytes: number;
  readonly #everyLine: boolean;
  readonly #allFaults: boolean;
  readonly #sink: ScanSink;
  readonly #faults: Fault[] = [];
  /** The faults of the segment being scanned (in line order once it ends). */
  #segmentFaults: Fault[] = [];
  readonly #streams = new Map<string, StreamPositions>();
  /** The global positions the segments' names say. */
  #named = new Set<number>();
  #expiredBefore = 0;
  /** The global position the next event must have (NaN before the first one, and after damage). */
  #next = Number.NaN;
  /** The highest global position seen. */
  #highest = 0;
  /** The highest global position of an event of a whole append. */
  #held = 0;
  #events = 0;
  #lineCount = 0;
  #buf: Buffer | undefined;

  constructor(
    readonly directory: string,
    readonly names: readonly string[],
    options: ScanOptions,
  ) {
    this.#readBytes = options.readBytes ?? REBUILD_READ_BYTES;
    this.#everyLine = options.everyLine ?? false;
    this.#allFaults = options.allFaults ?? false;
    this.#sink = options.sink ?? {};
  }

  async scan(): Promise<DirectoryScan> {
    const { directory, names } = this;
    const snapshot = newestSnapshot(directory, names);
    this.#expiredBefore = snapshot?.data.globalFirst ?? 0;
    const segs = names
      .map((n) => ({ name: n, first: numberIn(n, SEGMENT_PREFIX, SEGMENT_SUFFIX) }))
      .filter((s): s is { name: string; first: number } => s.first !== undefined)
      .sort((a, b) => a.first - b.first);
    const firsts = new Set(segs.map((s) => s.first));
    this.#named = firsts;
    const indexes = new Set<number>();
    const orphanIndexes: string[] = [];
    let indexBytes = 0;
    for (const n of names) {
      const first = numberIn(n, INDEX_PREFIX, INDEX_SUFFIX);
      if (first === undefined) continue;
      if (!firsts.has(first)) {
        // The index of a segment retention deleted (a crash between the two deletions).
        orphanIndexes.push(n);
        continue;
      }
      indexes.add(first);
      indexBytes += regularFile(join(directory, n), "an index file").size;
    }
    this.#sink.begin?.({ expiredBefore: this.#expiredBefore, indexBytes });
    // The last segment that holds bytes may end in a torn append (an OS crash with sync "none" after a roll tears
    // the segment the log rolled away from): only empty segments, passed over or removed, follow it.
    const sizes = segs.map((s) => regularFile(join(directory, s.name), "a segment").size);
    let lastWithData = segs.length - 1;
    while (lastWithData > 0 && sizes[lastWithData] === 0) lastWithData--;
    const segments: SegmentScan[] = [];
    let lastKept: SegmentScan | undefined;
    try {
      for (let i = 0; i < segs.length; i++) {
        const { name, first } = segs[i] as { name: string; first: number };
        const segment = await this.#segment(
          name,
          first,
          sizes[i] as number,
          indexes.has(first),
          i === segs.length - 1,
          i >= lastWithData,
        );
        segments.push(segment);
        if (segment.removed === undefined) lastKept = segment;
        await this.#sink.segment?.(segment);
      }
    } catch (error) {
      if (error !== STOP) throw error;
    }
    const streams = this.#streams;
    for (const [id, first, last] of snapshot?.data.streams ?? []) {
      // Streams whose events all expired with their segments: their positions go on from the snapshot's.
      if (!streams.has(id)) streams.set(id, { first, last });
    }
    // The next append follows the last event on disk: the index has no room for a gap. Only without one (retention
    // deleted them all) do the snapshot and the last segment's name say where the positions stopped. A snapshot
    // past the events is what an OS crash with sync "none" leaves (it lost the appends after them).
    const next = Number.isNaN(this.#next)
      ? Math.max(snapshot?.data.lastGlobal ?? 0, lastKept ? lastKept.first - 1 : 0) + 1
      : this.#next;
    return {
      snapshot,
      expiredBefore: this.#expiredBefore,
      orphanIndexes,
      segments,
      next,
      streams,
      events: this.#events,
      lines: this.#lineCount,
      faults: this.#faults,
    };
  }

  /** A segment named `named` whose first line holds global position `g`: a fault unless they are the same. */
  #checkName(file: string, named: number, g: number): void {
    if (g === named) return;
    this.#fault({ kind: FaultKind.Misnamed, file, line: 1, named, g, taken: this.#named.has(g) });
  }

  /** Records a fault; without `allFaults` the scan stops there. */
  #fault(fault: Fault): void {
    this.#segmentFaults.push(fault);
    if (!this.#allFaults) {
      this.#faults.push(fault);
      throw STOP;
    }
  }

  #stream(id: string): StreamPositions {
    let s = this.#streams.get(id);
    if (s === undefined) {
      s = { first: 1, last: 0 };
      this.#streams.set(id, s);
    }
    return s;
  }

  /** The event at `g` of a whole append, at `position` of stream `id` (`s`): see {@link follow}. */
  #follow(s: StreamPositions, id: string, position: number, g: number, file: string, line: number): void {
    const expired = g < this.#expiredBefore;
    const jumped = follow(s, position, expired);
    if (jumped >= 0) this.#fault({ kind: FaultKind.StreamJump, file, line, stream: id, position, after: jumped });
    if (!expired) this.#events++;
    if (g > this.#held) this.#held = g;
  }

  /** The events of an index block (lines `line + 1…` of `file`), as {@link #follow} (one loop: the open's hot path). */
  #followBlock(b: IndexBlock, file: string, line: number): void {
    const table = b.streams.map((id) => this.#stream(id));
    const { g, streamNo, positions } = b;
    const n = b.lengths.length;
    const expiredBefore = this.#expiredBefore;
    for (let i = 0; i < n; i++) {
      const no = streamNo[i] as number;
      const position = positions[i] as number;
      const jumped = follow(table[no] as StreamPositions, position, g + i < expiredBefore);
      if (jumped >= 0) {
        const stream = b.streams[no] as string;
        this.#fault({ kind: FaultKind.StreamJump, file, line: line + i + 1, stream, position, after: jumped });
      }
    }
    this.#events += Math.max(0, Math.min(n, g + n - expiredBefore));
    if (g + n - 1 > this.#held) this.#held = g + n - 1;
  }

  /** After damage: the lost event's position and stream are unknown (`allFaults` goes on from there). */
  #forget(): void {
    this.#next = Number.NaN;
    for (const s of this.#streams.values()) s.last = 0;
  }

  async #segment(
    name: string,
    first: number,
    size: number,
    hasIndex: boolean,
    isLast: boolean,
    mayEndTorn: boolean,
  ): Promise<SegmentScan> {
    const file = join(this.directory, name);
    const nextBefore = this.#next;
    this.#segmentFaults = [];
    // An empty segment the open must not use: one before the last, or a last one not named by the next position.
    // A roll whose new segment could neither be made durable nor removed leaves one named inside the segment before
    // it, while the appends go on there: its name would claim events that segment holds. A roll that worked, then an
    // OS crash with sync "none" that lost the last appends to the segment before it, leaves one named past the next
    // position: appends to it would follow a gap the segments before it fail to load across. It holds no data.
    if (size === 0 && !(isLast && (Number.isNaN(nextBefore) || first === nextBefore))) {
      return {
        name,
        file,
        first,
        size,
        removed: first <= this.#held ? RemovedSegment.Held : RemovedSegment.Past,
        nextBefore,
        firstEvent: undefined,
        index: undefined,
        indexed: 0,
        indexedEnd: first,
        good: 0,
        torn: undefined,
        lines: 0,
        events: 0,
      };
    }
    const eventsBefore = this.#events;
    const linesBefore = this.#lineCount;
    const fd = openSync(file, "r");
    try {
      const st = fstatSync(fd);
      const { index, blocks } = hasIndex ? this.#index(fd, first, st) : { index: undefined, blocks: [] };
      const last = blocks.at(-1);
      let line = 0;
      if (!this.#everyLine) {
        if (blocks[0] !== undefined) this.#checkName(file, first, blocks[0].g);
        for (const b of blocks) {
          this.#followBlock(b, file, line);
          line += b.lengths.length;
          if (this.#faults.length === 0 && this.#segmentFaults.length === 0) this.#sink.run?.(name, b, false);
          this.#next = b.g + b.lengths.length;
          this.#highest = Math.max(this.#highest, this.#next - 1);
        }
      }
      const from = this.#everyLine ? 0 : (last?.to ?? 0);
      const firstEvent = this.#everyLine ? undefined : blocks[0]?.g;
      const scanned = await this.#scanLines(
        name,
        file,
        fd,
        { first, size: st.size, from, line, firstEvent },
        mayEndTorn,
      );
      // In line order (a stream's jump is found once its append is whole), then the end of the segment.
      this.#segmentFaults.sort((a, b) => ("line" in a ? a.line : 0) - ("line" in b ? b.line : 0));
      if (scanned.cut) this.#segmentFaults.push(scanned.cut);
      this.#faults.push(...this.#segmentFaults);
      if (scanned.cut && !this.#allFaults) throw STOP;
      return {
        name,
        file,
        first,
        size: st.size,
        removed: undefined,
        nextBefore,
        firstEvent: scanned.firstEvent,
        index,
        indexed: last?.to ?? 0,
        indexedEnd: last ? last.g + last.lengths.length : first,
        good: scanned.good,
        torn: scanned.torn,
        lines: this.#lineCount - linesBefore,
        events: this.#events - eventsBefore,
      };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The index file of the segment open on `fd` that starts at `first`: how
   * much of it agrees with the segment, and the blocks the open trusts
   * (those that agree, when they follow the events of the segments before:
   * the index has no room for a gap).
   */
  #index(
    fd: number,
    first: number,
    st: { readonly size: number; readonly mtimeMs: number },
  ): { index: IndexScan; blocks: IndexBlock[] } {
    const buf = readFileSync(join(this.directory, indexName(first)));
    const decoded = decodeIndex(buf);
    const readAt = (offset: number, bytes: number): Buffer => {
      const out = Buffer.allocUnsafe(bytes);
      return out.subarray(0, readUpTo(fd, out, bytes, offset));
    };
    const own = agreeingBlocks(decoded, { size: st.size, mtimeMs: st.mtimeMs }, readAt, undefined);
    const follows =
      own.blocks.length > 0 && (Number.isNaN(this.#next) || (own.blocks[0] as IndexBlock).g === this.#next);
    const blocks = follows ? own.blocks : [];
    return {
      index: {
        bytes: buf.length,
        valid: decoded.valid,
        agreeing: own.bytes,
        kept: follows ? own.bytes : 0,
        blocks: blocks.length,
      },
      blocks,
    };
  }

  /** The read buffer: at least `bytes` long when it has to be allocated again, reused otherwise. */
  #buffer(bytes: number): Buffer {
    if (this.#buf === undefined || this.#buf.length < bytes) this.#buf = Buffer.allocUnsafe(bytes);
    return this.#buf;
  }

  /**
   * Scans the lines of a segment from byte `from` (the `line`-th line ends
   * there) to its `size`, `readBytes` at a time into one reused buffer (a
   * new buffer per read would cost a page fault per 4 KiB): each line's
   * checksum, global positions following one another, appends whole, each
   * stream's positions. A read ends before a line it holds only part of
   * (and, in a segment that may end torn, before a damaged line after which
   * it holds no newline: what follows decides); that line is read again
   * with the next read, which grows when it ends before its first line.
   * Each read's whole appends go to the sink as one block.
   */
  async #scanLines(
    name: string,
    file: string,
    fd: number,
    at: { first: number; size: number; from: number; line: number; firstEvent: number | undefined },
    mayEndTorn: boolean,
  ): Promise<{ good: number; torn: TornTail | undefined; cut: Fault | undefined; firstEvent: number | undefined }> {
    const { size, from } = at;
    let { line, firstEvent } = at;
    const pending = new PendingLines();
    /** Where the pending lines start; where the last whole append ends, and the next position after it. */
    let runFrom = from;
    let good = from;
    let nextWhole = this.#next;
    /** The open append: its length, its first line, the lines still to come, and its first pending line. */
    let batchLength = 0;
    let batchLine = 0;
    let missing = 0;
    let batchAt = 0;
    let damagedLine: number | undefined;
    let tornLine: number | undefined;
    let pos = from;
    let buf = this.#buffer(Math.min(this.#readBytes, size - from));
    /** After a fault (`allFaults`: nothing more goes to the sink): the open append's lines, which cannot be whole, are dropped. */
    const dropOpenBatch = () => {
      pending.drop(batchAt, pending.length - batchAt);
      missing = 0;
    };
    while (pos < size) {
      const bytes = Math.min(buf.length, size - pos);
      const got = readUpTo(fd, buf, bytes, pos);
      if (this.#sink.read) await this.#sink.read(got);
      const atEnd = got < bytes || pos + got >= size;
      const view = got < buf.length ? buf.subarray(0, got) : buf;
      let p = 0;
      while (p < got) {
        const nl = view.indexOf(10, p);
        if (nl < 0) {
          // A line without its newline: the end of the segment (a torn write), or read again with the next read.
          if (atEnd) tornLine = line + 1;
          break;
        }
        const parsed = parseLine(view, p, nl);
        // A damaged line after which no newline follows may be the segment's last whole line: read what follows first.
        const lastWhole = parsed === undefined && mayEndTorn && view.indexOf(10, nl + 1) < 0;
        if (lastWhole && !atEnd) break;
        line++;
        this.#lineCount++;
        if (parsed === undefined) {
          if (lastWhole) {
            // The segment's last whole line: taken for a write a crash cut short (only a torn line follows it).
            damagedLine = line;
            p = nl + 1;
            continue;
          }
          this.#fault({ kind: FaultKind.Damaged, file, line });
          // Its position and append are unknown: the lines after it are not held against them.
          dropOpenBatch();
          this.#forget();
          nextWhole = Number.NaN;
          p = nl + 1;
          continue;
        }
        if (this.#everyLine && decodeLineAt(view, p, nl) === undefined) {
          this.#fault({ kind: FaultKind.NotAnEvent, file, line });
        }
        if (missing > 0 && parsed.n > 1) {
          this.#fault({
            kind: FaultKind.NestedBatch,
            file,
            line,
            length: parsed.n,
            outer: { length: batchLength, line: batchLine },
          });
          dropOpenBatch();
        }
        if (missing === 0) {
          batchLength = parsed.n;
          batchLine = line;
          missing = parsed.n;
          batchAt = pending.length;
        }
        const g = parsed.g;
        // Before its position is held against the segments before: a misnamed segment may also be out of their order.
        if (line === 1) this.#checkName(file, at.first, g);
        if ((!Number.isNaN(this.#next) && g !== this.#next) || g <= this.#highest) {
          this.#fault({
            kind: FaultKind.Position,
            file,
            line,
            g,
            expected: this.#next,
            after: this.#highest,
            segmentStart: firstEvent === undefined,
          });
        }
        firstEvent ??= g;
        this.#next = g + 1;
        if (g > this.#highest) this.#highest = g;
        pending.push(g, nl + 1 - p, parsed.ts, parsed.s, parsed.p);
        p = nl + 1;
        if (--missing === 0) {
          // A whole append: its streams' positions.
          for (let k = batchAt; k < pending.length; k++) {
            const id = pending.streams[k] as string;
            this.#follow(
              this.#stream(id),
              id,
              pending.positions[k] as number,
              pending.globals[k] as number,
              file,
              batchLine + k - batchAt,
            );
          }
          batchAt = pending.length;
          good = pos + p;
          nextWhole = this.#next;
        }
      }
      if (p === 0 && !atEnd) buf = this.#buffer(buf.length * 2);
      pos += p;
      this.#handOut(name, pending, runFrom, batchAt);
      runFrom = good;
      batchAt = 0;
      if (atEnd) break;
    }
    if (missing === 0 && damagedLine === undefined && tornLine === undefined) {
      return { good, torn: undefined, cut: undefined, firstEvent };
    }
    const batch = missing > 0 ? { length: batchLength, line: batchLine, whole: batchLength - missing } : undefined;
    if (!mayEndTorn) {
      return { good, torn: undefined, cut: { kind: FaultKind.CutAppend, file, batch, tornLine }, firstEvent };
    }
    // The append a crash interrupted: left out, and the next append follows the last whole one.
    this.#next = nextWhole;
    return { good, torn: { from: good, batch, damagedLine, tornLine }, cut: undefined, firstEvent };
  }

  /** Hands the first `whole` pending lines (whole appends, from byte `from`) to the sink as one block. */
  #handOut(name: string, pending: PendingLines, from: number, whole: number): void {
    if (whole === 0) return;
    if (this.#sink.run === undefined || this.#faults.length > 0 || this.#segmentFaults.length > 0) {
      pending.drop(0, whole);
      return;
    }
    const block = pending.take(whole, from);
    if (block) this.#sink.run(name, block, true);
  }
}

/** The newest snapshot of `directory` that decodes, if any (a damaged one is skipped: an older one, or the segments, have the data). */
function newestSnapshot(
  directory: string,
  names: readonly string[],
): { data: SnapshotData; legacy: boolean } | undefined {
  const numbers = names
    .map((n) => numberIn(n, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX))
    .filter((g): g is number => g !== undefined)
    .sort((a, b) => b - a);
  for (const g of numbers) {
    const file = join(directory, snapshotName(g));
    try {
      return decodeSnapshot(file, readFileSync(file));
    } catch {
      // Damaged: an older one is used.
    }
  }
  return undefined;
}
