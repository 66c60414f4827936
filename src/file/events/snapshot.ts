/**
 * Snapshots of the file event store: the streams' positions, in one file
 * written atomically (temp file, fsync, rename, fsync of the directory:
 * `writeFileAtomic` of `../fs.ts`). Events stay in the segments and the
 * index side files say where; what only a snapshot knows is the streams
 * whose events retention deleted with their segments (a stream's last
 * position survives its events: the next append to it goes on from there),
 * and where retention stopped.
 *
 * File: 8 bytes magic `SLEVSNP3`, 4 bytes CRC-32 of the payload (big
 * endian), then the payload: the JSON text of {@link SnapshotData}.
 * Earlier versions wrote `SLEVSNP2` files that also held every event; they
 * still load (their events are read from the segments, which hold them
 * too), and the store rewrites them as `SLEVSNP3` when it opens.
 */
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { CorruptionError } from "../../index.js";
import { writeFileAtomic } from "../fs.js";
import type { SyncPolicy } from "../options.js";
import type { DiskEventLog } from "./disk-log.js";
import { snapshotName } from "./format.js";

const MAGIC = Buffer.from("SLEVSNP3", "latin1");
/** The magic of the earlier version's snapshots, which held every event too. */
const MAGIC_V2 = Buffer.from("SLEVSNP2", "latin1");

/** What a snapshot holds. */
export interface SnapshotData {
  readonly version: 3;
  /** Last global position ever assigned. */
  readonly lastGlobal: number;
  /** Global position of the first stored event: the ones before it expired. */
  readonly globalFirst: number;
  /** Every stream: id, first stored position, last position. */
  readonly streams: [string, number, number][];
}

/** Captures the streams' positions synchronously (a consistent point). */
export function capture(log: DiskEventLog): SnapshotData {
  const streams: [string, number, number][] = [];
  for (const s of log.streams.values()) streams.push([s.id, s.first, s.last]);
  return { version: 3, lastGlobal: log.lastGlobal, globalFirst: log.globalFirst, streams };
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

/**
 * Reads and checks a snapshot, of this version or the earlier one (whose
 * events are left out: the segments hold them). `legacy` is true for the
 * earlier version. @throws CorruptionError
 */
export function decodeSnapshot(file: string, buffer: Buffer): { data: SnapshotData; legacy: boolean } {
  const magic = buffer.subarray(0, 8);
  const legacy = magic.equals(MAGIC_V2);
  if (buffer.length < 12 || !(legacy || magic.equals(MAGIC)))
    throw new CorruptionError(file, undefined, "not a statelog event snapshot");
  const payload = buffer.subarray(12);
  if (crc32(payload) !== buffer.readUInt32BE(8))
    throw new CorruptionError(file, undefined, "snapshot checksum mismatch");
  let data: { version?: number; lastGlobal: number; globalFirst: number; streams: [string, number, number][] };
  try {
    data = JSON.parse(payload.toString("utf8"));
  } catch (error) {
    throw new CorruptionError(file, undefined, "snapshot is not valid JSON", { cause: error });
  }
  if (data?.version !== (legacy ? 1 : 3)) throw new CorruptionError(file, undefined, "unknown snapshot version");
  return {
    data: { version: 3, lastGlobal: data.lastGlobal, globalFirst: data.globalFirst, streams: data.streams },
    legacy,
  };
}
