/**
 * Index side files of the file event store: `index-<first global position,
 * 16 digits>.idx` next to the segment of the same number. They hold derived
 * data only (where each event's line starts, how long it is, its stream and
 * its timestamp), so that a reopen reads a few bytes per event instead of
 * parsing every line. Deleting one costs a scan of its segment at the next
 * open, never data.
 *
 * File: 8 bytes magic `SLEVIDX1`, then blocks, appended as the segment
 * grows (each one covers the lines after the previous one's). A block:
 * 4 bytes payload length, 4 bytes CRC-32 of the payload (both little
 * endian), then the payload: 4 bytes length of a JSON header
 * `{"from":<byte>,"to":<byte>,"g":<global position of its first event>,"n":<events>,"mtime":"<ms>","streams":[stream ids]}`,
 * the header, then four columns of `n` values each (little endian): line
 * lengths in bytes (u32), the stream of each event as an index into
 * `streams` (u32), the timestamps in milliseconds (f64), the positions in
 * their streams (f64). A block a crash cut short, or whose
 * checksum fails, ends the file's valid part: the store scans the segment
 * from there and writes the blocks again.
 */
import { crc32 } from "node:zlib";

export const INDEX_MAGIC = Buffer.from("SLEVIDX1", "latin1");

/** One block of an index file: the events of the segment's bytes `[from, to)`. */
export interface IndexBlock {
  /** Byte offset in the segment of the first event's line. */
  readonly from: number;
  /** Byte offset just past the last event's line. */
  readonly to: number;
  /** Global position of the first event. */
  readonly g: number;
  /** Streams of the block's events. */
  readonly streams: readonly string[];
  /** Per event: length of its line in bytes, with the newline. */
  readonly lengths: Uint32Array;
  /** Per event: index into `streams`. */
  readonly streamNo: Uint32Array;
  /** Per event: timestamp, ms since the epoch. */
  readonly times: Float64Array;
  /** Per event: its position in its stream. */
  readonly positions: Float64Array;
  /**
   * The segment's modification time (whole ms, decimal) when the block was
   * written: a segment as long as its index but modified later was edited
   * by hand, and is scanned again.
   */
  readonly mtime: string;
}

/** Encodes one block (with its length and checksum). */
export function encodeBlock(block: IndexBlock): Buffer {
  const n = block.lengths.length;
  const header = Buffer.from(
    JSON.stringify({ from: block.from, to: block.to, g: block.g, n, mtime: block.mtime, streams: block.streams }),
    "utf8",
  );
  const payloadLength = 4 + header.length + n * 24;
  const out = Buffer.allocUnsafe(8 + payloadLength);
  out.writeUInt32LE(payloadLength, 0);
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);
  let at = 12 + header.length;
  for (let i = 0; i < n; i++, at += 4) out.writeUInt32LE(block.lengths[i] as number, at);
  for (let i = 0; i < n; i++, at += 4) out.writeUInt32LE(block.streamNo[i] as number, at);
  for (let i = 0; i < n; i++, at += 8) out.writeDoubleLE(block.times[i] as number, at);
  for (let i = 0; i < n; i++, at += 8) out.writeDoubleLE(block.positions[i] as number, at);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

/**
 * Decodes the blocks of an index file, up to the first one that is cut
 * short or damaged; `ends[i]` is the byte offset after block `i`, `valid`
 * the byte length of the good part (0 when even the magic is wrong).
 */
export function decodeIndex(buf: Buffer): { blocks: IndexBlock[]; ends: number[]; valid: number } {
  const blocks: IndexBlock[] = [];
  const ends: number[] = [];
  if (buf.length < INDEX_MAGIC.length || !buf.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) {
    return { blocks, ends, valid: 0 };
  }
  let pos = INDEX_MAGIC.length;
  while (pos + 8 <= buf.length) {
    const length = buf.readUInt32LE(pos);
    const end = pos + 8 + length;
    if (length < 4 || end > buf.length) break;
    const payload = buf.subarray(pos + 8, end);
    if (crc32(payload) !== buf.readUInt32LE(pos + 4)) break;
    const block = decodePayload(payload);
    if (!block) break;
    blocks.push(block);
    ends.push(end);
    pos = end;
  }
  return { blocks, ends, valid: pos };
}

function decodePayload(payload: Buffer): IndexBlock | undefined {
  const headerLength = payload.readUInt32LE(0);
  if (4 + headerLength > payload.length) return undefined;
  let header: { from: number; to: number; g: number; n: number; mtime: string; streams: string[] };
  try {
    header = JSON.parse(payload.toString("utf8", 4, 4 + headerLength));
  } catch {
    return undefined;
  }
  const n = header.n;
  if (!Number.isSafeInteger(n) || n < 1 || 4 + headerLength + n * 24 !== payload.length) return undefined;
  const at = payload.byteOffset + 4 + headerLength;
  // Copies: the columns must be aligned, and must not keep the file's buffer alive.
  const lengths = new Uint32Array(n);
  const streamNo = new Uint32Array(n);
  const times = new Float64Array(n);
  const positions = new Float64Array(n);
  const bytes = new Uint8Array(payload.buffer);
  new Uint8Array(lengths.buffer).set(bytes.subarray(at, at + n * 4));
  new Uint8Array(streamNo.buffer).set(bytes.subarray(at + n * 4, at + n * 8));
  new Uint8Array(times.buffer).set(bytes.subarray(at + n * 8, at + n * 16));
  new Uint8Array(positions.buffer).set(bytes.subarray(at + n * 16, at + n * 24));
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += lengths[i] as number;
    if ((streamNo[i] as number) >= header.streams.length) return undefined;
  }
  if (!Array.isArray(header.streams) || header.to - header.from !== sum || typeof header.mtime !== "string") {
    return undefined;
  }
  return {
    from: header.from,
    to: header.to,
    g: header.g,
    streams: header.streams,
    lengths,
    streamNo,
    times,
    positions,
    mtime: header.mtime,
  };
}
