/**
 * The line format (docs/file-store.md, "Format"). One change per line, the
 * fields of the changelog format in its order, then an optional checksum:
 *
 * ```
 * {"namespace":"ws-1","changeType":"set","entityType":"system","entityID":"s1","entity":{…},"timestamp":"2025-10-25T12:00:00.000Z","crc":"1a2b3c4d"}
 * {"namespace":"ws-1","changeType":"unset","entityType":"system","entityID":"s0","timestamp":"2025-10-25T12:00:01.000Z","crc":"5e6f7a8b"}
 * ```
 *
 * `crc` is the CRC-32 (`zlib.crc32`) of the line's UTF-8 bytes before
 * `,"crc":`, as 8 lower-case hex digits. Because statelog writes the
 * fields in a fixed order, a reader finds a line's key (entity type and
 * id) from its prefix without `JSON.parse` (see decoder.ts); lines in any
 * other shape (the plain format without `crc`, Go's escapes, extra fields)
 * are parsed in full by {@link parseLineObject}.
 */
import { type Change, ChangeType, validateEntityId, validateEntityType } from "../index.js";
import { crc32Of, lineCrc } from "./lines.js";

/** Why a line cannot be read (turned into a `CorruptionError` with file and line by the reader). */
export class LineError extends Error {}

/** A chunk of a file: whole lines (it ends with `\n`), as bytes. */
export type Chunk = Buffer;

/** The constant start of every line of `namespace` that statelog writes, up to the change type's value, as bytes. */
export function linePrefix(namespace: string): Buffer {
  return Buffer.from(`{"namespace":${JSON.stringify(namespace)},"changeType":"`, "utf8");
}

const bytes = (s: string): Buffer => Buffer.from(s, "latin1");
export const SET_TYPE = bytes('set","entityType":');
export const UNSET_TYPE = bytes('unset","entityType":');
const ID_FIELD_TEXT = ',"entityID":';
export const ID_FIELD = bytes(ID_FIELD_TEXT);
export const ENTITY_FIELD = bytes(',"entity":');
export const TS_FIELD = bytes(',"timestamp":"');
const CRC_FIELD_TEXT = ',"crc":"';
export const CRC_FIELD = bytes(CRC_FIELD_TEXT);
/** `"` `}`: the end of a checksummed line, after the 8 hex digits. */
const CRC_TAIL = 8 + 2;
const CRC_QUOTED = bytes('"crc"');
const CRC_MISMATCH = "checksum mismatch (the line was changed or damaged after it was written)";

/** Whether `buf` holds `pattern` at `at` (patterns hold no `\n`, so a match never crosses a line end). */
export function bytesAt(buf: Buffer, at: number, pattern: Buffer): boolean {
  const n = pattern.length;
  if (at < 0 || at + n > buf.length) return false;
  for (let i = 0; i < n; i++) if (buf[at + i] !== pattern[i]) return false;
  return true;
}

/**
 * The key of a change: `"<type>","entityID":"<id>"` (JSON strings as
 * `JSON.stringify` writes them), which is what statelog's own lines hold
 * (as UTF-8 bytes) between `"entityType":` and the id's closing quote.
 */
export function keyOf(entityType: string, entityId: string): string {
  return JSON.stringify(entityType) + ID_FIELD_TEXT + JSON.stringify(entityId);
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

/**
 * Verifies the checksum of the line `buf[start, end)` if it carries one
 * (ends in `,"crc":"<8 hex>"}`), without allocating (`crc32Of` reads the
 * line's bytes where they are). A line with a `"crc"` field near its end in
 * any other shape is parsed in full (which checks it). A line without
 * `crc` is not checked.
 * @throws LineError
 */
export function checkLineCrc(buf: Buffer, start: number, end: number, namespace: string): void {
  const crcAt = end - CRC_TAIL - CRC_FIELD.length;
  if (crcAt > start && buf[end - 1] === 125 && buf[end - 2] === 34 && bytesAt(buf, crcAt, CRC_FIELD)) {
    if (hexValue(buf, end - CRC_TAIL) !== crc32Of(buf, start, crcAt)) throw new LineError(CRC_MISMATCH);
    return;
  }
  const from = Math.max(start, end - 64);
  const at = buf.indexOf(CRC_QUOTED, from);
  if (at >= 0 && at < end) parseLineObject(buf.toString("utf8", start, end), namespace);
}

/** @throws LineError when the entity type or id is not valid */
export function checkNames(entityType: unknown, entityId: unknown): void {
  try {
    validateEntityType(entityType);
    validateEntityId(entityId);
  } catch (error) {
    throw new LineError((error as Error).message);
  }
}

/** A decoded line with its key (in {@link keyOf}'s form). */
export interface KeyedChange {
  readonly change: Change;
  readonly key: string;
}

/**
 * Parses a line in any JSON shape (the plain format without `crc`, other
 * field orders, Go's escapes). A `crc` field, if present, must be the last
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
