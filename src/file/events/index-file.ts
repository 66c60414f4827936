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
import { decodeLineAt } from "./format.js";

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
   * The segment's modification time (ms, decimal, with their fraction) when
   * the block was written: a segment as long as its index but with another
   * modification time was edited by hand, and is scanned again.
   */
  readonly mtime: string;
}

/** Encodes one block (with its length and checksum). */
export function encodeBlock(block: IndexBlock): Buffer {
  const n = block.lengths.length;
  const json = JSON.stringify({
    from: block.from,
    to: block.to,
    g: block.g,
    n,
    mtime: block.mtime,
    streams: block.streams,
  });
  // Padded with spaces so that the columns start 8-byte aligned (blocks follow the 8-byte magic, each a multiple of 8 long).
  const jsonBytes = Buffer.byteLength(json, "utf8");
  const header = Buffer.from(json + " ".repeat((((4 - jsonBytes) % 8) + 8) % 8), "utf8");
  const payloadLength = 4 + header.length + n * 24;
  const out = Buffer.alloc(8 + payloadLength);
  out.writeUInt32LE(payloadLength, 0);
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);
  const at = 12 + header.length;
  Buffer.from(block.lengths.buffer, block.lengths.byteOffset, n * 4).copy(out, at);
  Buffer.from(block.streamNo.buffer, block.streamNo.byteOffset, n * 4).copy(out, at + n * 4);
  Buffer.from(block.times.buffer, block.times.byteOffset, n * 8).copy(out, at + n * 8);
  Buffer.from(block.positions.buffer, block.positions.byteOffset, n * 8).copy(out, at + n * 16);
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
  // Views on the file's bytes where they are aligned (blocks this version wrote), copies otherwise.
  const column = <T extends Uint32Array | Float64Array>(
    type: new (b: ArrayBufferLike, o: number, l: number) => T,
    from: number,
    size: number,
  ): T => {
    const offset = at + from * n;
    if (offset % size === 0) return new type(payload.buffer, offset, n);
    const copy = new type(new ArrayBuffer(n * size), 0, n);
    new Uint8Array(copy.buffer).set(new Uint8Array(payload.buffer, offset, n * size));
    return copy;
  };
  const lengths = column(Uint32Array, 0, 4);
  const streamNo = column(Uint32Array, 4, 4);
  const times = column(Float64Array, 8, 8);
  const positions = column(Float64Array, 16, 8);
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

/** How far a segment's modification time may be from the one its index recorded (the rounding of a double). */
const MTIME_TOLERANCE_MS = 0.001;

/**
 * The blocks of an index file that agree with their segment: a chain from
 * byte 0 and from global position `firstG` (the first block's own when
 * undefined), within the segment's size, whose last indexed line is where
 * the index says and holds the position it says. A segment as long as its
 * index but modified after it (edited by hand) agrees with none.
 * `bytes`: the length of the index file's part that holds them.
 */
export function agreeingBlocks(
  decoded: { readonly blocks: readonly IndexBlock[]; readonly ends: readonly number[] },
  segment: { readonly size: number; readonly mtimeMs: number },
  readAt: (offset: number, bytes: number) => Buffer,
  firstG: number | undefined,
): { blocks: IndexBlock[]; bytes: number } {
  const good: IndexBlock[] = [];
  let from = 0;
  let g = firstG ?? decoded.blocks[0]?.g ?? 0;
  for (const b of decoded.blocks) {
    if (b.from !== from || b.g !== g || b.to > segment.size) break;
    good.push(b);
    from = b.to;
    g = b.g + b.lengths.length;
  }
  const last = good.at(-1);
  if (!last) return { blocks: [], bytes: 0 };
  // Same length but another modification time than when its index was written: edited by hand. (Blocks of
  // earlier versions kept whole milliseconds: their segment is scanned once, and indexed again.)
  if (last.to === segment.size && !(Math.abs(Number(last.mtime) - segment.mtimeMs) < MTIME_TOLERANCE_MS))
    return { blocks: [], bytes: 0 };
  // The last indexed line is where the index says (a segment cut shorter, or rewritten, is not).
  const length = last.lengths[last.lengths.length - 1] as number;
  let decodedLine: ReturnType<typeof decodeLineAt>;
  try {
    const buf = readAt(last.to - length, length);
    decodedLine = buf.length === length && buf[length - 1] === 10 ? decodeLineAt(buf, 0, length - 1) : undefined;
  } catch {
    decodedLine = undefined;
  }
  if (decodedLine?.record.globalPosition !== g - 1) return { blocks: [], bytes: 0 };
  return { blocks: good, bytes: decoded.ends[good.length - 1] as number };
}
