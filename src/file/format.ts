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

/** Why a line cannot be read (turned into a `CorruptionError` with file and line by the reader). */
export class LineError extends Error {}

/** The constant start of every fast-path line of `namespace`, up to the change type's value. */
export function linePrefix(namespace: string): string {
  return `{"namespace":${JSON.stringify(namespace)},"changeType":"`;
}

const SET_TYPE = 'set","entityType":';
const UNSET_TYPE = 'unset","entityType":';
const ID_FIELD = ',"entityID":';
const ENTITY_FIELD = ',"entity":';
const TS_FIELD = ',"timestamp":"';
const CRC_FIELD = ',"crc":"';
/** From a line's end back to `,"timestamp":"` in statelog's own lines (24-character timestamps). */
const TS_TAIL = 2 + 8 + CRC_FIELD.length + 1 + 24 + TS_FIELD.length;

/** Index of the closing quote of the JSON string opening at `q`, or -1 before `end`. */
function stringEnd(text: string, q: number, end: number): number {
  let i = q + 1;
  for (;;) {
    const j = text.indexOf('"', i);
    if (j < 0 || j >= end) return -1;
    let k = j - 1;
    while (text.charCodeAt(k) === 92) k--;
    if (((j - 1 - k) & 1) === 0) return j;
    i = j + 1;
  }
}

/** Canonical key text from the raw JSON strings of type and id. */
function canonicalKey(typeRaw: string, idRaw: string): string {
  return JSON.stringify(JSON.parse(typeRaw)) + ID_FIELD + JSON.stringify(JSON.parse(idRaw));
}

/** The key of a parsed change, in the form {@link lineKey} returns. */
export function keyOf(entityType: string, entityId: string): string {
  return JSON.stringify(entityType) + ID_FIELD + JSON.stringify(entityId);
}

/**
 * The key of the line `text[start, end)` read from its prefix, or
 * `undefined` when the line is not in statelog's own shape (then parse it
 * with {@link parseLineObject}). Never parses the entity.
 */
export function lineKey(text: string, start: number, end: number, prefix: string): string | undefined {
  if (!text.startsWith(prefix, start)) return undefined;
  let q = start + prefix.length;
  if (text.startsWith(SET_TYPE, q)) q += SET_TYPE.length;
  else if (text.startsWith(UNSET_TYPE, q)) q += UNSET_TYPE.length;
  else return undefined;
  if (text.charCodeAt(q) !== 34) return undefined;
  const typeEnd = stringEnd(text, q, end);
  if (typeEnd < 0 || !text.startsWith(ID_FIELD, typeEnd + 1)) return undefined;
  const idStart = typeEnd + 1 + ID_FIELD.length;
  if (text.charCodeAt(idStart) !== 34) return undefined;
  const idEnd = stringEnd(text, idStart, end);
  if (idEnd < 0) return undefined;
  const key = text.slice(q, idEnd + 1);
  if (!key.includes("\\")) return key;
  try {
    return canonicalKey(text.slice(q, typeEnd + 1), text.slice(idStart, idEnd + 1));
  } catch {
    return undefined;
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

/**
 * A chunk of a file: its text and, when the chunk is ASCII (so that
 * character offsets are byte offsets), its bytes, over which checksums
 * are computed without encoding the text again.
 */
export interface Chunk {
  readonly text: string;
  readonly bytes: Buffer | undefined;
}

function hexValue(text: string, at: number): number {
  let v = 0;
  for (let k = at; k < at + 8; k++) {
    const c = text.charCodeAt(k);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

function checkCrc(chunk: Chunk, start: number, crcAt: number, hexAt: number): void {
  const expected = hexValue(chunk.text, hexAt);
  const { bytes } = chunk;
  const actual = bytes
    ? crc32(new Uint8Array(bytes.buffer, bytes.byteOffset + start, crcAt - start))
    : crc32(chunk.text.slice(start, crcAt));
  if (expected !== actual) {
    throw new LineError("checksum mismatch (the line was changed or damaged after it was written)");
  }
}

/** True when `text[from, to)` holds a backslash (an escape in a JSON string). */
function hasEscape(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === 92) return true;
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
  prefix: string,
  parseEntity: boolean,
): Change {
  return (
    decodeFast(chunk, start, end, namespace, prefix, parseEntity) ??
    parseLineObject(chunk.text.slice(start, end), namespace).change
  );
}

let lastType = "";
let lastTs = "";
let lastTsMs = 0;

/**
 * A copy of `slice` that does not point into the chunk it was cut from. V8
 * makes substrings that reference their parent: a returned entity id made
 * by `slice` would keep the whole file's text alive for as long as the
 * caller keeps the id. Concatenating and slicing again flattens the
 * string into a new one of its own size.
 */
function ownString(slice: string): string {
  return (" " + slice).slice(1);
}

function decodeFast(
  chunk: Chunk,
  start: number,
  end: number,
  namespace: string,
  prefix: string,
  parseEntity: boolean,
): Change | undefined {
  const { text } = chunk;
  if (!text.startsWith(prefix, start)) return undefined;
  let q = start + prefix.length;
  let isSet: boolean;
  if (text.startsWith(SET_TYPE, q)) {
    q += SET_TYPE.length;
    isSet = true;
  } else if (text.startsWith(UNSET_TYPE, q)) {
    q += UNSET_TYPE.length;
    isSet = false;
  } else return undefined;
  const typeEnd = text.charCodeAt(q) === 34 ? stringEnd(text, q, end) : -1;
  if (typeEnd < 0 || !text.startsWith(ID_FIELD, typeEnd + 1)) return undefined;
  const idStart = typeEnd + 1 + ID_FIELD.length;
  const idEnd = text.charCodeAt(idStart) === 34 ? stringEnd(text, idStart, end) : -1;
  if (idEnd < 0) return undefined;
  // Our own lines end in `,"timestamp":"<24 chars>","crc":"<8 hex>"}`: find the timestamp from the end.
  let tsField = end - TS_TAIL;
  let tsEnd = end - CRC_FIELD.length - 11;
  let hasCrc = true;
  if (
    !(
      text.charCodeAt(end - 1) === 125 &&
      text.charCodeAt(end - 2) === 34 &&
      text.startsWith(CRC_FIELD, end - CRC_FIELD.length - 10) &&
      text.charCodeAt(tsEnd) === 34 &&
      text.startsWith(TS_FIELD, tsField)
    )
  ) {
    tsField = text.lastIndexOf(TS_FIELD, end);
    tsEnd = tsField < 0 ? -1 : text.indexOf('"', tsField + TS_FIELD.length);
    if (tsField <= idEnd || tsEnd < 0 || tsEnd >= end) return undefined;
    if (tsEnd + 2 === end && text.charCodeAt(tsEnd + 1) === 125) {
      hasCrc = false; // plain line: `…"timestamp":"…"}`
    } else if (
      !(
        end - tsEnd === 1 + CRC_FIELD.length + 8 + 2 &&
        text.startsWith(CRC_FIELD, tsEnd + 1) &&
        text.charCodeAt(end - 1) === 125 &&
        text.charCodeAt(end - 2) === 34
      )
    ) {
      return undefined;
    }
  }
  if (tsField <= idEnd) return undefined;
  let entityStart = -1;
  if (isSet) {
    if (!text.startsWith(ENTITY_FIELD, idEnd + 1)) return undefined;
    entityStart = idEnd + 1 + ENTITY_FIELD.length;
  } else if (tsField !== idEnd + 1) return undefined;
  const tsStart = tsField + TS_FIELD.length;
  if (hasCrc) checkCrc(chunk, start, tsEnd + 1, end - 10);
  let entityType: string;
  let entityId: string;
  if (hasEscape(text, q, idEnd)) {
    try {
      entityType = JSON.parse(text.slice(q, typeEnd + 1));
      entityId = JSON.parse(text.slice(idStart, idEnd + 1));
    } catch {
      throw new LineError("invalid entity type or id");
    }
  } else {
    // Entity types repeat: reuse the last one's string instead of copying a new one.
    if (typeEnd - q - 1 !== lastType.length || !text.startsWith(lastType, q + 1)) {
      lastType = ownString(text.slice(q + 1, typeEnd));
    }
    entityType = lastType;
    entityId = ownString(text.slice(idStart + 1, idEnd));
  }
  if (!hasCrc) checkNames(entityType, entityId);
  // The lines of one save share a timestamp: parse it once.
  if (tsEnd - tsStart !== lastTs.length || !text.startsWith(lastTs, tsStart)) {
    lastTs = ownString(text.slice(tsStart, tsEnd));
    lastTsMs = parseTimestamp(lastTs).getTime();
  }
  const timestamp = new Date(lastTsMs);
  if (!isSet) return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp };
  let entity: unknown;
  if (parseEntity || !hasCrc) {
    try {
      entity = JSON.parse(text.slice(entityStart, tsField));
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
    const at = line.lastIndexOf(CRC_FIELD);
    if (at < 0 || typeof obj.crc !== "string" || obj.crc.length !== 8) throw new LineError("malformed crc field");
    checkCrc({ text: line, bytes: undefined }, 0, at, at + CRC_FIELD.length);
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
