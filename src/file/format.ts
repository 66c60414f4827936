/**
 * The line format (docs/file-store.md, "Format"). One change per line, the
 * seed's fields in the seed's order, then an optional checksum:
 *
 * ```
 * {"namespace":"ws-1","changeType":"set","entityType":"system","entityID":"s1","entity":{…},"timestamp":"2025-10-25T12:00:00.000Z","crc":"1a2b3c4d"}
 * {"namespace":"ws-1","changeType":"unset","entityType":"system","entityID":"s0","timestamp":"2025-10-25T12:00:01.000Z","crc":"5e6f7a8b"}
 * ```
 *
 * `crc` is the CRC-32 (`zlib.crc32`) of the line's UTF-8 bytes before
 * `,"crc":`, as 8 lower-case hex digits. Because statelog writes the
 * fields in a fixed order, a reader finds a line's key (entity type and
 * id) from its prefix without `JSON.parse`; lines in any other shape (the
 * seed's plain format, Go's escapes, extra fields) are parsed in full.
 */
import { crc32 } from "node:zlib";
import { type Change, ChangeType } from "../core/change.js";
import { validateEntityId, validateEntityType } from "../core/validation.js";
import { lineCrc } from "./lines.js";

/** Why a line cannot be read (turned into a `CorruptionError` with file and line by the reader). */
export class LineError extends Error {}

/** The constant start of every fast-path line of `namespace`, up to the change type's value, as bytes. */
export function linePrefix(namespace: string): Buffer {
  return Buffer.from(`{"namespace":${JSON.stringify(namespace)},"changeType":"`, "utf8");
}

const bytes = (s: string): Buffer => Buffer.from(s, "latin1");
const SET_TYPE = bytes('set","entityType":');
const UNSET_TYPE = bytes('unset","entityType":');
const ID_FIELD_TEXT = ',"entityID":';
const ID_FIELD = bytes(ID_FIELD_TEXT);
const ENTITY_FIELD = bytes(',"entity":');
const TS_FIELD = bytes(',"timestamp":"');
const CRC_FIELD_TEXT = ',"crc":"';
const CRC_FIELD = bytes(CRC_FIELD_TEXT);
/** From a line's end back to `,"timestamp":"` in statelog's own lines (24-character timestamps). */
const TS_TAIL = 2 + 8 + CRC_FIELD.length + 1 + 24 + TS_FIELD.length;

/** Whether `buf` holds `pattern` at `at` (patterns hold no `\n`, so a match never crosses a line end). */
function bytesAt(buf: Buffer, at: number, pattern: Buffer): boolean {
  const n = pattern.length;
  if (at < 0 || at + n > buf.length) return false;
  for (let i = 0; i < n; i++) if (buf[at + i] !== pattern[i]) return false;
  return true;
}

/** Set by {@link stringEnd}: whether the string it scanned holds a backslash. */
let sawEscape = false;

/** Index of the closing quote of the JSON string opening at `q`, or -1 before `end`. */
function stringEnd(buf: Buffer, q: number, end: number): number {
  for (let i = q + 1; i < end; i++) {
    const c = buf[i];
    if (c === 34) return i;
    if (c === 92) {
      sawEscape = true;
      i++;
    }
  }
  return -1;
}

/**
 * The key of a change: `"<type>","entityID":"<id>"` (JSON strings as
 * `JSON.stringify` writes them), which is what statelog's own lines hold
 * (as UTF-8 bytes) between `"entityType":` and the id's closing quote.
 */
export function keyOf(entityType: string, entityId: string): string {
  return JSON.stringify(entityType) + ID_FIELD_TEXT + JSON.stringify(entityId);
}

/** What {@link lineKey} found. */
export const KeyShape = {
  /** Not statelog's own shape: parse the line with {@link parseLineObject}. */
  Other: 0,
  /** The key is the bytes `[keyRange[0], keyRange[1])` of the line, as they are. */
  Raw: 1,
  /** The key has escapes: `canonicalKey` holds its canonical form. */
  Escaped: 2,
} as const;
export type KeyShape = (typeof KeyShape)[keyof typeof KeyShape];

/** Set by {@link lineKey}: the byte range of a {@link KeyShape.Raw} key. */
export const keyRange = new Int32Array(2);
/** Set by {@link lineKey}: the key of a {@link KeyShape.Escaped} line, in {@link keyOf}'s form. */
export let canonicalKey = "";

/**
 * Finds the key of the line `buf[start, end)` from its prefix, without
 * decoding anything: the bytes `"<type>","entityID":"<id>"`, which for a
 * line without escapes are the key in {@link keyOf}'s form. Never parses
 * the entity.
 */
export function lineKey(buf: Buffer, start: number, end: number, prefix: Buffer): KeyShape {
  if (!bytesAt(buf, start, prefix)) return KeyShape.Other;
  let q = start + prefix.length;
  if (bytesAt(buf, q, SET_TYPE)) q += SET_TYPE.length;
  else if (bytesAt(buf, q, UNSET_TYPE)) q += UNSET_TYPE.length;
  else return KeyShape.Other;
  if (buf[q] !== 34) return KeyShape.Other;
  sawEscape = false;
  const typeEnd = stringEnd(buf, q, end);
  if (typeEnd < 0 || !bytesAt(buf, typeEnd + 1, ID_FIELD)) return KeyShape.Other;
  const idStart = typeEnd + 1 + ID_FIELD.length;
  if (buf[idStart] !== 34) return KeyShape.Other;
  const idEnd = stringEnd(buf, idStart, end);
  if (idEnd < 0) return KeyShape.Other;
  if (!sawEscape) {
    keyRange[0] = q;
    keyRange[1] = idEnd + 1;
    return KeyShape.Raw;
  }
  try {
    canonicalKey = keyOf(
      JSON.parse(buf.toString("utf8", q, typeEnd + 1)),
      JSON.parse(buf.toString("utf8", idStart, idEnd + 1)),
    );
    return KeyShape.Escaped;
  } catch {
    return KeyShape.Other;
  }
}

const TIMESTAMP = /^([+-]\d{6}|\d{4})-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 timestamp: statelog's `toISOString()` form, or Go's
 * (nanoseconds, offsets). Sub-millisecond digits are cut off.
 * @throws LineError
 */
export function parseTimestamp(s: string): Date {
  let ms: number;
  if (s.length === 24 && s.charCodeAt(23) === 90 && s.charCodeAt(10) === 84) {
    ms = Date.parse(s);
  } else if (TIMESTAMP.test(s)) {
    ms = Date.parse(s.replace(/^(.{10})[t ]/, "$1T").replace(/z$/, "Z"));
  } else {
    ms = Number.NaN;
  }
  if (Number.isNaN(ms)) throw new LineError(`invalid timestamp ${JSON.stringify(s.slice(0, 40))}`);
  return new Date(ms);
}

/** A decoded line with its key (in {@link lineKey}'s form). */
export interface KeyedChange {
  readonly change: Change;
  readonly key: string;
}

/** A chunk of a file: whole lines (it ends with `\n`), as bytes. */
export type Chunk = Buffer;

function hexValue(buf: Buffer, at: number): number {
  let v = 0;
  for (let k = at; k < at + 8; k++) {
    const c = buf[k] as number;
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

const CRC_MISMATCH = "checksum mismatch (the line was changed or damaged after it was written)";

function checkCrc(buf: Buffer, start: number, crcAt: number, hexAt: number): void {
  if (hexValue(buf, hexAt) !== crc32(new Uint8Array(buf.buffer, buf.byteOffset + start, crcAt - start))) {
    throw new LineError(CRC_MISMATCH);
  }
}

/** `"` `}`: the end of a checksummed line, after the 8 hex digits. */
const CRC_TAIL = 8 + 2;
const CRC_QUOTED = bytes('"crc"');

/**
 * Verifies the checksum of the line `buf[start, end)` if it carries one
 * (ends in `,"crc":"<8 hex>"}`), without allocating (a view of the line's
 * bytes goes to `zlib.crc32`). A line with a `"crc"` field near its end in
 * any other shape is parsed in full (which checks it). A line without
 * `crc` is not checked.
 * @throws LineError
 */
export function checkLineCrc(buf: Buffer, start: number, end: number, namespace: string): void {
  const crcAt = end - CRC_TAIL - CRC_FIELD.length;
  if (crcAt > start && buf[end - 1] === 125 && buf[end - 2] === 34 && bytesAt(buf, crcAt, CRC_FIELD)) {
    if (hexValue(buf, end - CRC_TAIL) !== crc32(buf.subarray(start, crcAt))) throw new LineError(CRC_MISMATCH);
    return;
  }
  const from = Math.max(start, end - 64);
  const at = buf.indexOf(CRC_QUOTED, from);
  if (at >= 0 && at < end) parseLineObject(buf.toString("utf8", start, end), namespace);
}

/** True when `buf[from, to)` holds a backslash (an escape in a JSON string). */
function hasEscape(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === 92) return true;
  return false;
}

/**
 * Decodes and checks the line `[start, end)` of a chunk of `namespace`'s file.
 * @param parseEntity parse the entity JSON (else only check the line; a
 *   checksummed set line then has `entity: undefined`)
 * @throws LineError
 */
export function decodeLine(
  chunk: Chunk,
  start: number,
  end: number,
  namespace: string,
  prefix: Buffer,
  parseEntity: boolean,
): Change {
  return (
    decodeFast(chunk, start, end, namespace, prefix, parseEntity) ??
    parseLineObject(chunk.toString("utf8", start, end), namespace).change
  );
}

/** Entity types repeat from line to line: the last one, as its bytes (latin1) and decoded. */
let lastTypeBytes = "";
let lastType = "";
/** The minute of the last timestamp (`YYYY-MM-DDTHH:MM:`, as bytes) and its time in ms. */
let lastMinute = "";
let lastMinuteMs = 0;

/** Whether `buf[from, to)` equals the bytes of `known` (one character per byte). */
function sameBytes(buf: Buffer, from: number, to: number, known: string): boolean {
  if (to - from !== known.length) return false;
  for (let i = 0; i < known.length; i++) if (buf[from + i] !== known.charCodeAt(i)) return false;
  return true;
}

/** The two decimal digits at `at`, or -1. */
function digits2(buf: Buffer, at: number): number {
  const a = (buf[at] as number) - 48;
  const b = (buf[at + 1] as number) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The time in ms of the timestamp `buf[from, to)`. statelog's own form
 * (`YYYY-MM-DDTHH:MM:SS.mmmZ`) within the minute of the previous one is
 * computed from its digits; anything else goes through {@link parseTimestamp}.
 * @throws LineError
 */
function timestampMs(buf: Buffer, from: number, to: number): number {
  const own = to - from === 24 && buf[from + 19] === 46 && buf[from + 23] === 90 && buf[from + 16] === 58;
  const sec = own ? digits2(buf, from + 17) : -1;
  const ms3 = own ? digits2(buf, from + 20) : -1;
  const ms1 = own ? (buf[from + 22] as number) - 48 : -1;
  if (sec < 0 || sec > 59 || ms3 < 0 || ms1 < 0 || ms1 > 9) {
    return parseTimestamp(buf.toString("latin1", from, to)).getTime();
  }
  const within = sec * 1000 + ms3 * 10 + ms1;
  if (!sameBytes(buf, from, from + 17, lastMinute)) {
    const ms = parseTimestamp(buf.toString("latin1", from, to)).getTime();
    lastMinute = buf.toString("latin1", from, from + 17);
    lastMinuteMs = ms - within;
    return ms;
  }
  return lastMinuteMs + within;
}

function decodeFast(
  buf: Buffer,
  start: number,
  end: number,
  namespace: string,
  prefix: Buffer,
  parseEntity: boolean,
): Change | undefined {
  if (!bytesAt(buf, start, prefix)) return undefined;
  let q = start + prefix.length;
  let isSet: boolean;
  if (bytesAt(buf, q, SET_TYPE)) {
    q += SET_TYPE.length;
    isSet = true;
  } else if (bytesAt(buf, q, UNSET_TYPE)) {
    q += UNSET_TYPE.length;
    isSet = false;
  } else return undefined;
  const typeEnd = buf[q] === 34 ? stringEnd(buf, q, end) : -1;
  if (typeEnd < 0 || !bytesAt(buf, typeEnd + 1, ID_FIELD)) return undefined;
  const idStart = typeEnd + 1 + ID_FIELD.length;
  const idEnd = buf[idStart] === 34 ? stringEnd(buf, idStart, end) : -1;
  if (idEnd < 0) return undefined;
  // Our own lines end in `,"timestamp":"<24 chars>","crc":"<8 hex>"}`: find the timestamp from the end.
  let tsField = end - TS_TAIL;
  let tsEnd = end - CRC_FIELD.length - 11;
  let hasCrc = true;
  if (
    !(
      buf[end - 1] === 125 &&
      buf[end - 2] === 34 &&
      bytesAt(buf, end - CRC_FIELD.length - 10, CRC_FIELD) &&
      buf[tsEnd] === 34 &&
      bytesAt(buf, tsField, TS_FIELD)
    )
  ) {
    tsField = end - TS_FIELD.length < start ? -1 : buf.lastIndexOf(TS_FIELD, end - TS_FIELD.length);
    tsEnd = tsField < 0 ? -1 : buf.indexOf(34, tsField + TS_FIELD.length);
    if (tsField <= idEnd || tsEnd < 0 || tsEnd >= end) return undefined;
    if (tsEnd + 2 === end && buf[tsEnd + 1] === 125) {
      hasCrc = false; // plain line: `…"timestamp":"…"}`
    } else if (
      !(
        end - tsEnd === 1 + CRC_FIELD.length + 8 + 2 &&
        bytesAt(buf, tsEnd + 1, CRC_FIELD) &&
        buf[end - 1] === 125 &&
        buf[end - 2] === 34
      )
    ) {
      return undefined;
    }
  }
  if (tsField <= idEnd) return undefined;
  let entityStart = -1;
  if (isSet) {
    if (!bytesAt(buf, idEnd + 1, ENTITY_FIELD)) return undefined;
    entityStart = idEnd + 1 + ENTITY_FIELD.length;
  } else if (tsField !== idEnd + 1) return undefined;
  const tsStart = tsField + TS_FIELD.length;
  if (hasCrc) checkCrc(buf, start, tsEnd + 1, end - 10);
  let entityType: string;
  let entityId: string;
  if (hasEscape(buf, q, idEnd)) {
    try {
      entityType = JSON.parse(buf.toString("utf8", q, typeEnd + 1));
      entityId = JSON.parse(buf.toString("utf8", idStart, idEnd + 1));
    } catch {
      throw new LineError("invalid entity type or id");
    }
  } else {
    if (!sameBytes(buf, q + 1, typeEnd, lastTypeBytes)) {
      lastTypeBytes = buf.toString("latin1", q + 1, typeEnd);
      lastType = buf.toString("utf8", q + 1, typeEnd);
    }
    entityType = lastType;
    entityId = buf.toString("utf8", idStart + 1, idEnd);
  }
  if (!hasCrc) checkNames(entityType, entityId);
  const timestamp = new Date(timestampMs(buf, tsStart, tsEnd));
  if (!isSet) return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp };
  let entity: unknown;
  if (parseEntity || !hasCrc) {
    try {
      entity = JSON.parse(buf.toString("utf8", entityStart, tsField));
    } catch {
      throw new LineError("the entity is not valid JSON");
    }
  }
  return { namespace, changeType: ChangeType.Set, entityType, entityId, entity, timestamp };
}

function checkNames(entityType: unknown, entityId: unknown): void {
  try {
    validateEntityType(entityType);
    validateEntityId(entityId);
  } catch (error) {
    throw new LineError((error as Error).message);
  }
}

/**
 * Parses a line in any JSON shape (the seed's plain format, other field
 * orders, Go's escapes). A `crc` field, if present, must be the last
 * field and match.
 * @throws LineError
 */
export function parseLineObject(line: string, namespace: string): KeyedChange {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line);
  } catch {
    throw new LineError("not a JSON line");
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new LineError("not a JSON object");
  if ("crc" in obj) {
    const at = line.lastIndexOf(CRC_FIELD_TEXT);
    if (at < 0 || typeof obj.crc !== "string" || obj.crc.length !== 8) throw new LineError("malformed crc field");
    const hex = line.slice(at + CRC_FIELD_TEXT.length, at + CRC_FIELD_TEXT.length + 8);
    if (hex !== lineCrc(line.slice(0, at))) {
      throw new LineError(CRC_MISMATCH);
    }
  }
  if (obj.namespace !== namespace) {
    throw new LineError(`belongs to namespace ${JSON.stringify(obj.namespace)}, not ${JSON.stringify(namespace)}`);
  }
  const { changeType, entityType, entityID: entityId, timestamp } = obj;
  checkNames(entityType, entityId);
  if (typeof timestamp !== "string") throw new LineError("missing timestamp");
  const ts = parseTimestamp(timestamp);
  const type = entityType as string;
  const id = entityId as string;
  const key = keyOf(type, id);
  if (changeType === ChangeType.Unset) {
    return { key, change: { namespace, changeType, entityType: type, entityId: id, timestamp: ts } };
  }
  if (changeType !== ChangeType.Set) throw new LineError(`unknown changeType ${JSON.stringify(changeType)}`);
  if (!("entity" in obj)) throw new LineError("a set line without an entity");
  return { key, change: { namespace, changeType, entityType: type, entityId: id, entity: obj.entity, timestamp: ts } };
}
