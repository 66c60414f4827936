/**
 * Writing the index side files (`./index-file.ts`): blocks built from the
 * in-memory index or from scanned lines, appended to the segment's
 * `index-*.idx`. An index file holds derived data only: a failed write is
 * not an append's failure; the segment's index stops growing, and the next
 * open scans what it misses.
 */
import { closeSync, fstatSync, openSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { DiskEventLog } from "./disk-log.js";
import { indexName } from "./format.js";
import { encodeBlock, INDEX_MAGIC, type IndexBlock } from "./index-file.js";
import type { ScannedLines, Segment } from "./segments.js";

/** The segment's modification time, as the blocks record it. */
export function mtimeOf(directory: string, segment: Segment): string {
  return mtimeText(statSync(join(directory, segment.name)).mtimeMs);
}

/**
 * A modification time as the blocks record it: milliseconds, decimal, with
 * their fraction (what `stat` gives, to a fraction of a microsecond), so
 * that a write to the segment a moment after the block is told apart.
 */
export function mtimeText(mtimeMs: number): string {
  return String(mtimeMs);
}

/** A block of the events `segment.indexedEnd … end - 1`, from the in-memory index. */
export function blockFromLog(log: DiskEventLog, segment: Segment, end: number, mtime: string): IndexBlock | undefined {
  const g = segment.indexedEnd;
  const n = end - g;
  if (n <= 0 || g < log.indexedFrom) return undefined;
  const lengths = new Uint32Array(n);
  const streamNo = new Uint32Array(n);
  const times = new Float64Array(n);
  const positions = new Float64Array(n);
  const streams: string[] = [];
  const numbers = new Map<string, number>();
  let to = segment.indexed;
  for (let i = 0; i < n; i++) {
    const place = log.place(g + i);
    if (!place) return undefined;
    const id = log.streamOf(g + i).id;
    let no = numbers.get(id);
    if (no === undefined) {
      no = streams.length;
      numbers.set(id, no);
      streams.push(id);
    }
    lengths[i] = place.length;
    streamNo[i] = no;
    times[i] = log.timeOf(g + i);
    positions[i] = log.positionOf(g + i);
    to += place.length;
  }
  return { from: segment.indexed, to, g, streams, lengths, streamNo, times, positions, mtime };
}

/** A block of scanned lines starting at byte `from` (undefined when there are none). */
export function blockFromScan(scan: ScannedLines, from: number, mtime: string): IndexBlock | undefined {
  const n = scan.lengths.length;
  if (n === 0) return undefined;
  const streams: string[] = [];
  const numbers = new Map<string, number>();
  const streamNo = new Uint32Array(n);
  let to = from;
  for (let i = 0; i < n; i++) {
    const id = scan.streams[i] as string;
    let no = numbers.get(id);
    if (no === undefined) {
      no = streams.length;
      numbers.set(id, no);
      streams.push(id);
    }
    streamNo[i] = no;
    to += scan.lengths[i] as number;
  }
  return {
    from,
    to,
    g: scan.g,
    streams,
    lengths: Uint32Array.from(scan.lengths),
    streamNo,
    times: Float64Array.from(scan.times),
    positions: Float64Array.from(scan.positions),
    mtime,
  };
}

/**
 * Appends `block` to the segment's index file (creating it with its magic),
 * and moves `segment.indexed`/`indexedEnd` past it. A failure stops this
 * segment's index (the next open scans the rest); it never throws.
 */
export function appendBlock(directory: string, segment: Segment, block: IndexBlock): void {
  if (!segment.indexWritable) return;
  const file = join(directory, indexName(segment.first));
  try {
    const fd = openSync(file, "a");
    try {
      const bytes = encodeBlock(block);
      const out = fstatSync(fd).size === 0 ? Buffer.concat([INDEX_MAGIC, bytes]) : bytes;
      for (let done = 0; done < out.length; ) done += writeSync(fd, out, done, out.length - done);
    } finally {
      closeSync(fd);
    }
    segment.indexed = block.to;
    segment.indexedEnd = block.g + block.lengths.length;
  } catch {
    // A half-written block fails its checksum at the next open, which cuts it off and scans from there.
    segment.indexWritable = false;
  }
}

/** Indexes the events of `segment` up to global position `end` (exclusive) that its index file does not hold yet. */
export function indexUpTo(directory: string, log: DiskEventLog, segment: Segment, end: number): void {
  if (!segment.indexWritable || end <= segment.indexedEnd) return;
  let mtime: string;
  try {
    mtime = mtimeOf(directory, segment);
  } catch {
    segment.indexWritable = false;
    return;
  }
  const block = blockFromLog(log, segment, end, mtime);
  if (block) appendBlock(directory, segment, block);
}
