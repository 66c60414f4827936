/**
 * Opening the file event store's directory: the newest valid snapshot
 * (streams whose events retention deleted), then each segment's index side
 * file, checked against its segment, and a scan of whatever no index covers
 * (a deleted or damaged index, the tail of the last segment after a crash).
 * The last segment's torn tail is cut off; the scanned lines' index blocks
 * are written, so that the next open reads them instead.
 */
import { closeSync, openSync, readFileSync, statSync, truncateSync, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { StreamState } from "../../events/index.js";
import { CorruptionError } from "../../index.js";
import { readUpTo } from "../fs.js";
import type { DiskEventLog } from "./disk-log.js";
import {
  INDEX_PREFIX,
  INDEX_SUFFIX,
  indexName,
  numberIn,
  SEGMENT_PREFIX,
  SEGMENT_SUFFIX,
  SNAPSHOT_PREFIX,
  SNAPSHOT_SUFFIX,
  snapshotName,
} from "./format.js";
import { agreeingBlocks, decodeIndex, type IndexBlock } from "./index-file.js";
import { appendBlock, blockFromScan, mtimeOf } from "./index-writer.js";
import { type Segment, type Segments, scanLines } from "./segments.js";
import { decodeSnapshot, type SnapshotData } from "./snapshot.js";

/** Bytes of a segment that no index covers read at once (see `Loader.#scanRest`). */
export const REBUILD_READ_BYTES = 1024 * 1024;

/** What the open found besides the index. */
export interface Loaded {
  /** The snapshot it used, if any. */
  readonly snapshot: SnapshotData | undefined;
  /** True when that snapshot is of the earlier version (to rewrite). */
  readonly legacySnapshot: boolean;
}

/** Reads `directory` (whose file names are `names`) into `log` and `segments`. @throws CorruptionError */
export async function loadDirectory(
  directory: string,
  names: readonly string[],
  log: DiskEventLog,
  segments: Segments,
  readBytes = REBUILD_READ_BYTES,
): Promise<Loaded> {
  let snapshot: SnapshotData | undefined;
  let legacySnapshot = false;
  const snapshots = names
    .map((n) => numberIn(n, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX))
    .filter((g): g is number => g !== undefined)
    .sort((a, b) => b - a);
  for (const g of snapshots) {
    const file = join(directory, snapshotName(g));
    try {
      ({ data: snapshot, legacy: legacySnapshot } = decodeSnapshot(file, readFileSync(file)));
      break;
    } catch {
      // A damaged snapshot is skipped: an older one, or the segments, have the data.
    }
  }
  const indexes = new Set(names.filter((n) => numberIn(n, INDEX_PREFIX, INDEX_SUFFIX) !== undefined));
  const segs = names
    .map((n) => ({ name: n, first: numberIn(n, SEGMENT_PREFIX, SEGMENT_SUFFIX) }))
    .filter((s): s is { name: string; first: number } => s.first !== undefined)
    .sort((a, b) => a.first - b.first);
  const firsts = new Set(segs.map((s) => s.first));
  for (const n of indexes) {
    if (firsts.has(numberIn(n, INDEX_PREFIX, INDEX_SUFFIX) as number)) continue;
    // The index of a segment retention deleted (a crash between the two deletions): derived data of nothing.
    indexes.delete(n);
    try {
      unlinkSync(join(directory, n));
    } catch {
      // Read-only storage: it is ignored.
    }
  }
  // Room for the events the index files hold (24 bytes each): the columns grow once.
  let indexBytes = 0;
  for (const n of indexes) indexBytes += statSync(join(directory, n)).size;
  log.reserve(Math.ceil(indexBytes / 24));
  const loader = new Loader(directory, log, snapshot?.globalFirst ?? 0, readBytes);
  // The last segment that holds bytes may end in a torn batch (an OS crash with sync "none" after a roll tears
  // the segment the log rolled away from): only empty segments, passed over or removed below, follow it.
  let lastWithData = segs.length - 1;
  while (lastWithData > 0 && statSync(join(directory, (segs[lastWithData] as { name: string }).name)).size === 0) {
    lastWithData--;
  }
  for (let i = 0; i < segs.length; i++) {
    const { name, first } = segs[i] as { name: string; first: number };
    if (strayEmpty(directory, name, first, loader.next, i === segs.length - 1)) continue;
    const segment: Segment = { name, first, size: 0, indexed: 0, indexedEnd: first, indexWritable: true };
    segments.list.push(segment);
    await loader.segment(segment, segments, indexes.has(indexName(first)), i >= lastWithData);
  }
  const lastSegment = segments.list.at(-1);
  // The next append follows the last event on disk: the index has no room for a gap. Only without one (retention
  // deleted them all) do the snapshot and the last segment's name say where the positions stopped. A snapshot
  // past the events is what an OS crash with sync "none" leaves (it lost the appends after them).
  log.lastGlobal = Number.isNaN(loader.next)
    ? Math.max(snapshot?.lastGlobal ?? 0, lastSegment ? lastSegment.first - 1 : 0)
    : loader.next - 1;
  log.globalFirst = log.indexedEnd > log.indexedFrom ? log.indexedFrom : log.lastGlobal + 1;
  for (const [id, first, last] of snapshot?.streams ?? []) {
    // Streams whose events all expired with their segments: their positions go on from the snapshot's.
    if (!log.streams.has(id)) log.restoreStream(id, first, last);
  }
  if (snapshot && snapshot.streams.length > 0) inCreationOrder(log, snapshot.streams);
  return { snapshot, legacySnapshot };
}

/**
 * Puts the streams back in the order they were created (what `getStreams`
 * lists): those of the snapshot in its order (it captured them so), then
 * the others, made after it, in the order the segments showed them. A
 * stream whose segments retention deleted was restored last, not where it
 * was created.
 */
function inCreationOrder(log: DiskEventLog, captured: readonly (readonly [string, number, number])[]): void {
  const found = new Map(log.streams);
  log.streams.clear();
  for (const [id] of captured) {
    const stream = found.get(id);
    if (stream !== undefined) log.streams.set(id, stream);
  }
  for (const [id, stream] of found) if (!log.streams.has(id)) log.streams.set(id, stream);
}

/**
 * Whether the segment `name` is an empty file that must not be used (and
 * removes it, with its index, when it can): one before the last, or a
 * last one not named by the next position. A roll whose new segment could
 * neither be made durable nor removed leaves one named inside the segment
 * before it, while the appends go on there: its name would claim events
 * that segment holds. A roll that worked, then an OS crash with sync
 * "none" that lost the last appends to the segment before it, leaves one
 * named past the next position: appends to it would follow a gap the
 * segments before it fail to load across. It holds no data.
 */
function strayEmpty(directory: string, name: string, first: number, next: number, isLast: boolean): boolean {
  if (isLast && (Number.isNaN(next) || first === next)) return false;
  const file = join(directory, name);
  if (statSync(file).size !== 0) return false;
  for (const f of [file, join(directory, indexName(first))]) {
    try {
      unlinkSync(f);
    } catch {
      // Read-only storage, or no index: the file is passed over all the same.
    }
  }
  return true;
}

class Loader {
  /** Global position the next event must have (NaN before the first one). */
  next = Number.NaN;
  #file = "";

  constructor(
    readonly directory: string,
    readonly log: DiskEventLog,
    /** Events before this global position expired (retention, as the snapshot recorded it). */
    readonly expiredBefore: number,
    /** Bytes of a segment that no index covers read at once. */
    readonly readBytes: number,
  ) {}

  /** Adds a run of events to the index (see `DiskEventLog.loadRun`). @throws CorruptionError when a stream's positions jump */
  #add(
    g: number,
    from: number,
    lengths: Uint32Array,
    table: readonly StreamState[],
    streamNo: Uint32Array,
    positions: Float64Array,
    times: Float64Array,
  ): void {
    const bad = this.log.loadRun(g, lengths, table, streamNo, positions, times, from, this.expiredBefore);
    if (bad >= 0) {
      const s = table[streamNo[bad] as number] as StreamState;
      throw new CorruptionError(
        this.#file,
        undefined,
        `stream ${JSON.stringify(s.id)} jumps from ${s.last} to ${positions[bad] as number}`,
      );
    }
    if (lengths.length > 0) this.next = g + lengths.length;
  }

  async segment(segment: Segment, segments: Segments, hasIndex: boolean, isLast: boolean): Promise<void> {
    const file = join(this.directory, segment.name);
    this.#file = file;
    const indexFile = join(this.directory, indexName(segment.first));
    const st = statSync(file);
    segment.size = st.size;
    let blocks: IndexBlock[] = [];
    /** Where in the index file the block before the last agreeing one ends. */
    let beforeLast = 0;
    if (hasIndex) {
      const buf = readFileSync(indexFile);
      const decoded = decodeIndex(buf);
      const valid = agreeingBlocks(
        decoded,
        { size: segment.size, mtimeMs: st.mtimeMs },
        (offset, bytes) => segments.readAt(segment, offset, bytes),
        Number.isNaN(this.next) ? undefined : this.next,
      );
      blocks = valid.blocks;
      beforeLast = blocks.length >= 2 ? (decoded.ends[blocks.length - 2] as number) : 0;
      if (valid.bytes !== buf.length) {
        // Cut what does not agree (the blocks after it are appended again below).
        try {
          if (valid.bytes === 0) unlinkSync(indexFile);
          else truncateSync(indexFile, valid.bytes);
        } catch {
          segment.indexWritable = false;
        }
      }
    }
    for (const b of blocks) {
      const table = b.streams.map((id) => this.log.stream(id));
      this.#add(b.g, b.from, b.lengths, table, b.streamNo, b.positions, b.times);
      segment.indexed = b.to;
      segment.indexedEnd = b.g + b.lengths.length;
    }
    if (segment.indexed >= segment.size) return;
    const { good, blocks: scanned } = this.#scanRest(file, segment, isLast);
    if (good < segment.size) {
      // The batch a crash interrupted: cut from the file, so that later appends follow a whole batch.
      const fh = await open(file, "r+");
      try {
        await fh.truncate(good);
        await fh.sync();
      } finally {
        await fh.close();
      }
      segment.size = good;
      const last = blocks.at(-1);
      if (scanned.length === 0 && last !== undefined && last.to === good) {
        // The cut changed the segment's modification time, which its index's last block records (a segment as
        // long as its index with another time counts as edited by hand): that block is written again with it.
        this.#restamp(indexFile, segment, last, beforeLast);
      }
    }
    if (scanned.length === 0) return;
    let mtime: string;
    try {
      mtime = mtimeOf(this.directory, segment);
    } catch {
      return;
    }
    for (const block of scanned) appendBlock(this.directory, segment, { ...block, mtime });
  }

  /** Writes the last block of `segment`'s index again (the index file cut back to `from`) with the segment's time. */
  #restamp(indexFile: string, segment: Segment, last: IndexBlock, from: number): void {
    if (!segment.indexWritable) return;
    let mtime: string;
    try {
      mtime = mtimeOf(this.directory, segment);
      truncateSync(indexFile, from);
    } catch {
      segment.indexWritable = false;
      return;
    }
    appendBlock(this.directory, segment, { ...last, mtime });
  }

  /**
   * Scans the part of `segment` no index covers, `readBytes` at a time
   * into one reused buffer (a new buffer per segment would cost a page
   * fault per 4 KiB), and adds its events to the index; each read's lines
   * become an index block, returned for the caller to append to the index
   * file. A read ends at its last whole batch: the lines after it are read
   * again with the next one (a read that holds no whole batch grows).
   * `good`: the offset just past the last whole batch. @throws CorruptionError
   */
  #scanRest(file: string, segment: Segment, isLast: boolean): { good: number; blocks: IndexBlock[] } {
    const blocks: IndexBlock[] = [];
    let from = segment.indexed;
    let buf = Buffer.allocUnsafe(Math.min(this.readBytes, segment.size - from));
    const fd = openSync(file, "r");
    try {
      for (;;) {
        const bytes = Math.min(buf.length, segment.size - from);
        const got = readUpTo(fd, buf, bytes, from);
        // The segment's end: its own rule (a torn last batch is dropped from the last segment only).
        // Before it, a read that cuts a batch (or a line) leaves it for the next read, as a torn tail.
        const end = got < bytes || from + got >= segment.size;
        const at = from;
        const scan = scanLines(
          file,
          buf.subarray(0, got),
          at,
          () => countLines(file, at),
          this.next,
          end ? isLast : true,
        );
        const block = blockFromScan(scan, at, "");
        if (block) {
          const table = block.streams.map((id) => this.log.stream(id));
          this.#add(block.g, at, block.lengths, table, block.streamNo, block.positions, block.times);
          blocks.push(block);
        }
        if (end) return { good: scan.good, blocks };
        if (scan.good === at) buf = Buffer.allocUnsafe(buf.length * 2);
        from = scan.good;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** `bytes` bytes at `offset` of `file`. */
function readRange(file: string, offset: number, bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  const fd = openSync(file, "r");
  try {
    return buf.subarray(0, readUpTo(fd, buf, bytes, offset));
  } finally {
    closeSync(fd);
  }
}

/** The lines in the first `bytes` bytes of `file` (for error messages). */
function countLines(file: string, bytes: number): number {
  if (bytes === 0) return 0;
  const buf = readRange(file, 0, bytes);
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
