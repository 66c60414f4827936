/**
 * Snapshots of the file event store: the whole index (streams with their
 * positions, every stored event) in one file written atomically (temp file,
 * fsync, rename, fsync of the directory: `writeFileAtomic` of `../fs.ts`).
 * A reopen loads the newest valid snapshot and reads only the log written
 * after it.
 *
 * File: 8 bytes magic `SLEVSNP2`, 4 bytes CRC-32 of the payload (big
 * endian), then the payload: the JSON text of {@link SnapshotData} (one
 * `JSON.parse` of the whole file is faster than parsing and checking a
 * million log lines, and faster than `v8.deserialize` of as many objects).
 */
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { deepFreeze, type EventLog, type RecordedEvent } from "../../events/index.js";
import { CorruptionError } from "../../index.js";
import { writeFileAtomic } from "../fs.js";
import type { SyncPolicy } from "../options.js";
import { snapshotName } from "./format.js";

const MAGIC = Buffer.from("SLEVSNP2", "latin1");

/** What a snapshot holds, column by column (compact and fast to serialize). */
export interface SnapshotData {
  readonly version: 1;
  /** Last global position ever assigned. */
  readonly lastGlobal: number;
  /** Global position of the first stored event. */
  readonly globalFirst: number;
  /** Every stream: id, first stored position, last position. */
  readonly streams: [string, number, number][];
  /** Per stored event, in global order: index into `streams`. */
  readonly streamIndex: number[];
  readonly ids: string[];
  readonly types: string[];
  /** Milliseconds since the epoch. */
  readonly timestamps: number[];
  readonly data: unknown[];
  /** `null` where an event has no metadata. */
  readonly metadata: unknown[];
  readonly sizes: number[];
}

/** Captures the index synchronously (a consistent point). */
export function capture(log: EventLog): SnapshotData {
  const streams: [string, number, number][] = [];
  const index = new Map<string, number>();
  for (const s of log.streams.values()) {
    index.set(s.id, streams.length);
    streams.push([s.id, s.first, s.last]);
  }
  const n = log.global.length;
  const streamIndex: number[] = new Array(n);
  const ids: string[] = new Array(n);
  const types: string[] = new Array(n);
  const timestamps: number[] = new Array(n);
  const data: unknown[] = new Array(n);
  const metadata: unknown[] = new Array(n);
  const sizes: number[] = new Array(n);
  let i = 0;
  for (const r of log.global) {
    streamIndex[i] = index.get(r.streamId) as number;
    ids[i] = r.id;
    types[i] = r.type;
    timestamps[i] = r.timestamp.getTime();
    data[i] = r.data;
    metadata[i] = r.metadata ?? null;
    sizes[i] = log.sizeAt(i);
    i++;
  }
  return {
    version: 1,
    lastGlobal: log.lastGlobal,
    globalFirst: log.globalFirst,
    streams,
    streamIndex,
    ids,
    types,
    timestamps,
    data,
    metadata,
    sizes,
  };
}

/** Writes `data` atomically into `directory`; returns the file name and its size. */
export async function writeSnapshot(
  directory: string,
  data: SnapshotData,
  sync: SyncPolicy,
): Promise<{ name: string; bytes: number }> {
  const payload = Buffer.from(JSON.stringify(data), "utf8");
  const header = Buffer.alloc(12);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(crc32(payload), 8);
  const name = snapshotName(data.lastGlobal);
  const bytes = await writeFileAtomic(join(directory, name), [header, payload], sync);
  return { name, bytes };
}

/** Reads and checks a snapshot. @throws CorruptionError */
export function decodeSnapshot(file: string, buffer: Buffer): SnapshotData {
  if (buffer.length < 12 || !buffer.subarray(0, 8).equals(MAGIC))
    throw new CorruptionError(file, undefined, "not a statelog event snapshot");
  const payload = buffer.subarray(12);
  if (crc32(payload) !== buffer.readUInt32BE(8))
    throw new CorruptionError(file, undefined, "snapshot checksum mismatch");
  let data: SnapshotData;
  try {
    data = JSON.parse(payload.toString("utf8")) as SnapshotData;
  } catch (error) {
    throw new CorruptionError(file, undefined, "snapshot is not valid JSON", { cause: error });
  }
  if (data?.version !== 1) throw new CorruptionError(file, undefined, "unknown snapshot version");
  return data;
}

/** The records of a snapshot, in global order, with their sizes in the index. */
export function* snapshotRecords(data: SnapshotData): Generator<{ record: RecordedEvent; size: number }> {
  const next = data.streams.map(([, first]) => first);
  for (let i = 0; i < data.ids.length; i++) {
    const si = data.streamIndex[i] as number;
    const [streamId] = data.streams[si] as [string, number, number];
    const position = next[si] as number;
    next[si] = position + 1;
    const meta = data.metadata[i] ?? undefined;
    const record: RecordedEvent = Object.freeze({
      id: data.ids[i] as string,
      type: data.types[i] as string,
      data: deepFreeze(data.data[i]),
      timestamp: new Date(data.timestamps[i] as number),
      ...(meta === undefined ? {} : { metadata: deepFreeze(meta as RecordedEvent["metadata"]) }),
      streamId,
      position,
      globalPosition: data.globalFirst + i,
    });
    yield { record, size: data.sizes[i] as number };
  }
}
