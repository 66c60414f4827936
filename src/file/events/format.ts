/**
 * On-disk formats of the file event store.
 *
 * Segments `segment-<first global position, 16 digits>.log` hold one JSON
 * line per event, in global order, greppable and `jq`-able:
 * `{"g":7,"s":"orders","p":3,"id":"e7","type":"order.paid","ts":"2024-…Z","data":{…},"meta":{…},"crc":"1a2b3c4d"}`.
 * `crc` is the CRC-32 of the line up to (excluding) `,"crc"`, so a torn or
 * damaged line is recognised: the checksummed lines of the FileStore
 * (`../lines.ts`).
 *
 * Batches: an append is all of its events or none. The first line of an
 * append of n > 1 events carries the batch length, `"n":n`, right after
 * `g`: `{"g":7,"n":3,"s":"orders",…}`; the n − 1 lines after it belong to
 * that append. A line without `n` is a batch of one event (so every line
 * that earlier versions wrote reads as before). A crash can only interrupt
 * the log's last batch (appends are written in order, each group in one
 * segment); a reopen drops a last batch with fewer lines than announced.
 */

import { deepFreeze, EVENT_OVERHEAD_BYTES, frozenTimestamp, type RecordedEvent } from "../../events/index.js";
import { appendLineCrc, crc32Of } from "../lines.js";

export const SEGMENT_PREFIX = "segment-";
export const SEGMENT_SUFFIX = ".log";
export const SNAPSHOT_PREFIX = "snapshot-";
export const SNAPSHOT_SUFFIX = ".bin";
export const INDEX_PREFIX = "index-";
export const INDEX_SUFFIX = ".idx";

const pad = (n: number) => String(n).padStart(16, "0");
export const segmentName = (first: number) => `${SEGMENT_PREFIX}${pad(first)}${SEGMENT_SUFFIX}`;
export const snapshotName = (global: number) => `${SNAPSHOT_PREFIX}${pad(global)}${SNAPSHOT_SUFFIX}`;
/** The index side file of the segment whose first global position is `first` (`./index-file.ts`). */
export const indexName = (first: number) => `${INDEX_PREFIX}${pad(first)}${INDEX_SUFFIX}`;

/** The number in a segment, index or snapshot file name, or undefined when the name is not one. */
export function numberIn(name: string, prefix: string, suffix: string): number | undefined {
  if (!name.startsWith(prefix) || !name.endsWith(suffix)) return undefined;
  const digits = name.slice(prefix.length, name.length - suffix.length);
  return /^\d{16}$/.test(digits) ? Number(digits) : undefined;
}

/**
 * One event as its line (with the trailing newline). `json`/`metaJson` are
 * the JSON texts of data and metadata; `batch`, on the first event of an
 * append of more than one event, is the number of events of that append.
 */
export function encodeLine(
  r: RecordedEvent,
  json: string,
  metaJson: string | undefined,
  batch?: number | undefined,
): string {
  const body =
    `{"g":${r.globalPosition},${batch !== undefined && batch > 1 ? `"n":${batch},` : ""}"s":${JSON.stringify(r.streamId)},"p":${r.position},"id":${JSON.stringify(r.id)},` +
    `"type":${JSON.stringify(r.type)},"ts":"${r.timestamp.toISOString()}","data":${json}` +
    (metaJson === undefined ? "" : `,"meta":${metaJson}`);
  return `${appendLineCrc(body)}\n`;
}

/** One decoded line: the event, its estimated size, and the length of the batch it starts (1: a batch of its own). */
export interface DecodedLine {
  readonly record: RecordedEvent;
  readonly size: number;
  readonly batch: number;
}

/** What ends every line before its newline: `,"crc":"` + 8 hex digits + `"}`. */
const CRC_TAIL_BYTES = 18;
const CRC_FIELD_BYTES = Buffer.from(',"crc":"', "latin1");

/**
 * Whether the line in `buf[start, end)` (without newline) ends in its
 * checksum field and the checksum matches (the checksum of `../lines.ts`,
 * computed on the bytes: no string is built).
 */
export function lineCrcMatches(buf: Buffer, start: number, end: number): boolean {
  const at = end - CRC_TAIL_BYTES;
  if (at < start || buf[end - 1] !== 0x7d || buf[end - 2] !== 0x22) return false;
  for (let i = 0; i < CRC_FIELD_BYTES.length; i++) if (buf[at + i] !== CRC_FIELD_BYTES[i]) return false;
  let value = 0;
  for (let i = at + CRC_FIELD_BYTES.length, stop = i + 8; i < stop; i++) {
    const c = buf[i] as number;
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return false;
    value = value * 16 + digit;
  }
  return crc32Of(buf, start, at) === value;
}

/** Parses and checks the line in `buf[start, end)` (without newline); undefined when it is damaged. */
export function decodeLineAt(buf: Buffer, start: number, end: number): DecodedLine | undefined {
  return lineCrcMatches(buf, start, end) ? parseCheckedLine(buf.toString("utf8", start, end)) : undefined;
}

/** The fields of an event line, as JSON.parse returns them. */
interface LineObject {
  g: number;
  n?: number;
  s: string;
  p: number;
  id: string;
  type: string;
  ts: string;
  data: unknown;
  meta?: unknown;
}

/** Parses a line whose checksum was checked; undefined when it is not an event line. */
function parseCheckedLine(line: string): DecodedLine | undefined {
  let o: LineObject;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  const record = toRecord(o);
  return record === undefined ? undefined : { record, size: EVENT_OVERHEAD_BYTES + line.length * 2, batch: o.n ?? 1 };
}

/**
 * The frozen event of a parsed line; undefined when it is not an event
 * line. `kept`: whether the event is read to be kept (a read of a stream,
 * whose events the cache keeps) or to pass (a read in global order, whose
 * events die young); see {@link passingRecord}.
 */
function toRecord(o: LineObject, kept = true): RecordedEvent | undefined {
  if (typeof o !== "object" || o === null) return undefined;
  if (o.n !== undefined && !(Number.isSafeInteger(o.n) && o.n > 1)) return undefined;
  const timestamp = frozenTimestamp(timeOf(o.ts));
  return Object.freeze(kept ? keptRecord(o, timestamp) : passingRecord(o, timestamp));
}

/** The event of a parsed line, for reads that keep their events (see {@link passingRecord}). */
function keptRecord(o: LineObject, timestamp: Date): RecordedEvent {
  return o.meta === undefined
    ? { id: o.id, type: o.type, data: deepFreeze(o.data), timestamp, streamId: o.s, position: o.p, globalPosition: o.g }
    : {
        id: o.id,
        type: o.type,
        data: deepFreeze(o.data),
        timestamp,
        metadata: deepFreeze(o.meta as RecordedEvent["metadata"]),
        streamId: o.s,
        position: o.p,
        globalPosition: o.g,
      };
}

/**
 * {@link keptRecord}'s copy for reads in global order (`subscribeAll`,
 * `readAll`). Two copies, because V8 decides per object literal (its
 * "allocation site") whether the objects it makes are allocated in the old
 * generation of the heap: once a read of a stream has kept thousands of
 * events alive (the cache), a single literal would have every later event
 * allocated old, and a catch-up in global order, whose events die young,
 * would fill the old generation with garbage pointing to young objects
 * (each collection then copies their data): about twice the CPU time of
 * the same catch-up on a fresh process, measured.
 */
function passingRecord(o: LineObject, timestamp: Date): RecordedEvent {
  return o.meta === undefined
    ? { id: o.id, type: o.type, data: deepFreeze(o.data), timestamp, streamId: o.s, position: o.p, globalPosition: o.g }
    : {
        id: o.id,
        type: o.type,
        data: deepFreeze(o.data),
        timestamp,
        metadata: deepFreeze(o.meta as RecordedEvent["metadata"]),
        streamId: o.s,
        position: o.p,
        globalPosition: o.g,
      };
}

/** The last timestamp text {@link timeOf} read, and its time: the events of one append share their timestamp. */
let lastTs = "";
let lastTime = Number.NaN;

/** {@link isoTime}, remembering the last text read (consecutive lines mostly carry the same one). */
function timeOf(ts: string): number {
  if (ts === lastTs) return lastTime;
  const time = isoTime(ts);
  if (typeof ts === "string") {
    lastTs = ts;
    lastTime = time;
  }
  return time;
}

/**
 * The time (ms) of a timestamp as `toISOString` writes it
 * (`YYYY-MM-DDTHH:MM:SS.sssZ`, years 100 to 9999), read digit by digit;
 * any other text goes through `Date.parse`.
 */
export function isoTime(ts: string): number {
  if (typeof ts !== "string") return new Date(ts).getTime();
  if (
    ts.length !== 24 ||
    ts.charCodeAt(4) !== 0x2d ||
    ts.charCodeAt(7) !== 0x2d ||
    ts.charCodeAt(10) !== 0x54 ||
    ts.charCodeAt(13) !== 0x3a ||
    ts.charCodeAt(16) !== 0x3a ||
    ts.charCodeAt(19) !== 0x2e ||
    ts.charCodeAt(23) !== 0x5a
  ) {
    return Date.parse(ts);
  }
  const year = digitsAt(ts, 0, 4);
  const month = digitsAt(ts, 5, 2);
  const day = digitsAt(ts, 8, 2);
  const hour = digitsAt(ts, 11, 2);
  const minute = digitsAt(ts, 14, 2);
  const second = digitsAt(ts, 17, 2);
  const ms = digitsAt(ts, 20, 3);
  // Date.UTC maps years 0-99 to 1900-1999 and rolls over out-of-range fields: those go through Date.parse.
  if (
    year < 100 ||
    hour < 0 ||
    minute < 0 ||
    second < 0 ||
    ms < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysIn(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return Date.parse(ts);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

/** The number written by `n` decimal digits of `text` from `from` on; -1 when one is not a digit. */
function digitsAt(text: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days in `month` (1-12) of `year`. */
function daysIn(year: number, month: number): number {
  if (month !== 2) return MONTH_DAYS[month - 1] as number;
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
}

/** What {@link decodeLinesAt} found: the events, or the first line it could not decode. */
export type DecodedRun =
  | {
      readonly records: RecordedEvent[];
      readonly bad?: undefined;
      /** Byte offset in the buffer just past the last line's newline. */
      readonly end: number;
    }
  | {
      readonly records?: undefined;
      /** Index (from 0) of the first line that is damaged or missing. */
      readonly bad: number;
      /** Byte offset of that line in the buffer. */
      readonly at: number;
    };

/** Largest buffer {@link joinBuffer} keeps between calls. */
const JOIN_KEPT_BYTES = 4 << 20;
let joinScratch = Buffer.alloc(0);

/**
 * A buffer of at least `bytes` for {@link decodeLinesAt} to join lines in,
 * reused from call to call up to {@link JOIN_KEPT_BYTES} (a fresh one per
 * run costs a new mapping of memory for runs past a hundred kilobytes);
 * the text decoded from it is a copy.
 */
function joinBuffer(bytes: number): Buffer {
  if (bytes <= joinScratch.length) return joinScratch;
  if (bytes > JOIN_KEPT_BYTES) return Buffer.allocUnsafe(bytes);
  joinScratch = Buffer.allocUnsafe(Math.max(bytes, 64 * 1024));
  return joinScratch;
}

/**
 * Decodes the `count` consecutive lines of `buf` from byte `start`, each
 * checksum checked: one `JSON.parse` of all of them as one JSON array (in
 * a copy, the newlines turned into commas and the checksum fields into
 * spaces), cheaper than one parse per line;
 * when that fails, line by line, to find the line at fault. `kept`: whether
 * the events are read to be kept, or read in global order to pass
 * (`toRecord`).
 */
export function decodeLinesAt(buf: Buffer, start: number, count: number, kept = true): DecodedRun {
  const ends = new Array<number>(count);
  let pos = start;
  for (let i = 0; i < count; i++) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0 || !lineCrcMatches(buf, pos, nl)) return { bad: i, at: pos };
    ends[i] = nl;
    pos = nl + 1;
  }
  const records = new Array<RecordedEvent>(count);
  if (count === 0) return { records, end: pos };
  const joined = joinBuffer(pos - start + 1);
  joined[0] = 0x5b; // [
  buf.copy(joined, 1, start, pos);
  for (let i = 0; i < count; i++) {
    // The checksum field (checked above) becomes spaces: JSON.parse skips them, no string or property is made for it.
    const end = (ends[i] as number) - start + 1;
    for (let k = end - CRC_TAIL_BYTES; k < end - 1; k++) joined[k] = 0x20;
    joined[end] = i < count - 1 ? 0x2c : 0x5d; // , or ]
  }
  let objects: LineObject[] | undefined;
  try {
    objects = JSON.parse(joined.toString("utf8", 0, pos - start + 1));
  } catch {
    objects = undefined;
  }
  if (objects !== undefined && objects.length === count) {
    let i = 0;
    for (; i < count; i++) {
      const record = toRecord(objects[i] as LineObject, kept);
      if (record === undefined) break;
      records[i] = record;
    }
    if (i === count) return { records, end: pos };
  }
  // Some line is not an event line (its checksum matches): find it.
  pos = start;
  for (let i = 0; i < count; i++) {
    const end = ends[i] as number;
    const decoded = parseCheckedLine(buf.toString("utf8", pos, end));
    if (decoded === undefined) return { bad: i, at: pos };
    records[i] = decoded.record;
    pos = end + 1;
  }
  return { records, end: pos };
}
