/**
 * Opening the file event store's directory: the read-only scan
 * (`./scan.ts`) decides (the snapshot, what each index file and segment
 * holds, what is torn, what is left over); the open loads the events it
 * hands out into the index and applies its decisions as it goes: an index
 * file's part that does not agree is cut off, the last segment's torn tail
 * is cut off, the scanned lines' index blocks are written (so that the
 * next open reads them instead), empty segments it must not use and index
 * files without their segment are removed. A fault (damage) refuses the
 * store.
 */
import { readFileSync, truncateSync, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "../../index.js";
import { writeFailed } from "../errors.js";
import type { DiskEventLog } from "./disk-log.js";
import { indexName, segmentName } from "./format.js";
import { decodeIndex, type IndexBlock } from "./index-file.js";
import { appendBlock, mtimeOf } from "./index-writer.js";
import { type Fault, FaultKind, REBUILD_READ_BYTES, type SegmentScan, scanDirectory } from "./scan.js";
import type { Segment, Segments } from "./segments.js";
import type { SnapshotData } from "./snapshot.js";

export { REBUILD_READ_BYTES };

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
  let expiredBefore = 0;
  /** The index blocks of the lines the scan read in the segment it is in (no index covered them). */
  let scanned: IndexBlock[] = [];
  const scan = await scanDirectory(directory, names, {
    readBytes,
    sink: {
      begin: (start) => {
        expiredBefore = start.expiredBefore;
        // Room for the events the index files hold (24 bytes each): the columns grow once.
        log.reserve(Math.ceil(start.indexBytes / 24));
      },
      run: (name, block, fromLines) => {
        const table = block.streams.map((id) => log.stream(id));
        const { g, from, lengths, streamNo, positions, times } = block;
        const bad = log.loadRun(g, lengths, table, streamNo, positions, times, from, expiredBefore);
        if (bad >= 0) {
          // The scan checked the streams' positions already: the index and the scan disagree.
          const s = table[streamNo[bad] as number] as { id: string; last: number };
          throw new CorruptionError(
            join(directory, name),
            undefined,
            `stream ${JSON.stringify(s.id)} jumps from ${s.last} to ${positions[bad] as number}`,
          );
        }
        if (fromLines) scanned.push(block);
      },
      segment: async (decided) => {
        const blocks = scanned;
        scanned = [];
        await apply(directory, decided, blocks, segments);
      },
    },
  });
  const fault = scan.faults[0];
  if (fault) throw corruptionOf(fault);
  for (const n of scan.orphanIndexes) {
    try {
      // The index of a segment retention deleted (a crash between the two deletions): derived data of nothing.
      unlinkSync(join(directory, n));
    } catch {
      // Read-only storage: it is ignored.
    }
  }
  log.lastGlobal = scan.next - 1;
  log.globalFirst = log.indexedEnd > log.indexedFrom ? log.indexedFrom : log.lastGlobal + 1;
  for (const [id, s] of scan.streams) {
    // Streams whose events all expired with their segments: their positions go on from the snapshot's.
    if (!log.streams.has(id)) log.restoreStream(id, s.first, s.last);
  }
  const snapshot = scan.snapshot?.data;
  if (snapshot && snapshot.streams.length > 0) inCreationOrder(log, snapshot.streams);
  return { snapshot, legacySnapshot: scan.snapshot?.legacy ?? false };
}

/** The open's error for a fault of the scan. */
export function corruptionOf(fault: Fault): CorruptionError {
  const damaged = "damaged event line (checksum or JSON); restore from a backup or remove the line";
  switch (fault.kind) {
    case FaultKind.Damaged:
    case FaultKind.NotAnEvent:
      return new CorruptionError(fault.file, fault.line, damaged);
    case FaultKind.Position:
      return new CorruptionError(
        fault.file,
        fault.line,
        Number.isNaN(fault.expected)
          ? `global position ${fault.g} comes after ${fault.after}`
          : `global position ${fault.g}, expected ${fault.expected}`,
      );
    case FaultKind.NestedBatch:
      return new CorruptionError(
        fault.file,
        fault.line,
        `a batch of ${fault.length} events starts inside the batch of ${fault.outer.length} events of line ${fault.outer.line}`,
      );
    case FaultKind.StreamJump:
      return new CorruptionError(
        fault.file,
        undefined,
        `stream ${JSON.stringify(fault.stream)} jumps from ${fault.after} to ${fault.position}`,
      );
    case FaultKind.Misnamed:
      return new CorruptionError(fault.file, undefined, misnamedSegment(fault));
    case FaultKind.CutAppend: {
      const { batch, tornLine } = fault;
      if (tornLine !== undefined || batch === undefined) return new CorruptionError(fault.file, tornLine, damaged);
      return new CorruptionError(
        fault.file,
        batch.line,
        `the batch of ${batch.length} events of this line ends after ${batch.whole} lines`,
      );
    }
  }
}

/** What is wrong with a segment whose name disagrees with its first event, and how to repair it (the open's and verify's words). */
export function misnamedSegment(fault: Extract<Fault, { kind: typeof FaultKind.Misnamed }>): string {
  const right = segmentName(fault.g);
  const said = `its name says its first event is at global position ${fault.named}, it is at ${fault.g} (a segment is named after the global position of its first event: reads find events by these names)`;
  if (!fault.taken) return `${said}; rename the file to ${right}`;
  return `${said}; ${right} exists too, so one of them is probably a copy: each event must be in one segment only, so remove the copy, and restore from a backup any segment it was copied over`;
}

/**
 * Applies the scan's decisions for one segment: removes an empty one it
 * must not use, or adds it to `segments` after cutting off its index
 * file's part that does not agree and its torn tail, and writes the index
 * blocks of the lines no index covered (`scanned`).
 */
async function apply(directory: string, decided: SegmentScan, scanned: IndexBlock[], segments: Segments) {
  const { name, first } = decided;
  const file = join(directory, name);
  const indexFile = join(directory, indexName(first));
  if (decided.removed !== undefined) {
    for (const f of [file, indexFile]) {
      try {
        unlinkSync(f);
      } catch {
        // Read-only storage, or no index: the file is passed over all the same.
      }
    }
    return;
  }
  const segment: Segment = {
    name,
    first,
    size: decided.size,
    indexed: decided.indexed,
    indexedEnd: decided.indexedEnd,
    indexWritable: true,
  };
  segments.list.push(segment);
  const index = decided.index;
  if (index !== undefined && index.kept !== index.bytes) {
    // Cut what does not agree (the blocks after it are appended again below).
    try {
      if (index.kept === 0) unlinkSync(indexFile);
      else truncateSync(indexFile, index.kept);
    } catch {
      segment.indexWritable = false;
    }
  }
  if (decided.torn !== undefined) {
    // The append a crash interrupted: cut from the file, so that later appends follow a whole one. On read-only
    // storage it stays on disk: reads stop before it, and the first append (reopening the segment) cuts it off.
    segment.size = decided.good;
    const cut = await cutTorn(file, decided.good);
    if (cut && scanned.length === 0 && index !== undefined && index.blocks > 0 && decided.indexed === decided.good) {
      // The cut changed the segment's modification time, which its index's last block records (a segment as long
      // as its index with another time counts as edited by hand): that block is written again with it.
      restamp(directory, indexFile, segment, index.blocks);
    }
  }
  if (scanned.length === 0) return;
  let mtime: string;
  try {
    mtime = mtimeOf(directory, segment);
  } catch {
    return;
  }
  for (const block of scanned) appendBlock(directory, segment, { ...block, mtime });
}

/**
 * Cuts `file` to `size` bytes and fsyncs it: false on read-only storage
 * (`EROFS`, or no write permission), where it is left as it is.
 * @throws WriteFailedError
 */
async function cutTorn(file: string, size: number): Promise<boolean> {
  let operation: "open" | "truncate" | "fsync" = "open";
  try {
    const fh = await open(file, "r+");
    try {
      operation = "truncate";
      await fh.truncate(size);
      operation = "fsync";
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (operation === "open" && (code === "EROFS" || code === "EACCES")) return false;
    throw writeFailed(operation, file, error);
  }
  return true;
}

/** Writes the last of the `blocks` blocks of `segment`'s index again with the segment's time. */
function restamp(directory: string, indexFile: string, segment: Segment, blocks: number): void {
  if (!segment.indexWritable) return;
  let mtime: string;
  let last: IndexBlock;
  try {
    mtime = mtimeOf(directory, segment);
    const { blocks: kept, ends } = decodeIndex(readFileSync(indexFile));
    last = kept[blocks - 1] as IndexBlock;
    truncateSync(indexFile, blocks >= 2 ? (ends[blocks - 2] as number) : 0);
  } catch {
    segment.indexWritable = false;
    return;
  }
  appendBlock(directory, segment, { ...last, mtime });
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
