/**
 * Reading statelog's own lines (format.ts) from their bytes: a line's key
 * without decoding anything, and a winning line's change without
 * `JSON.parse` of anything but its entity. One {@link LineDecoder} per
 * read of a file: it holds what lines repeat (the entity type, the minute
 * of the timestamps) and the key it found last.
 */
import { type Change, ChangeType } from "../index.js";
import {
  bytesAt,
  CRC_FIELD,
  checkNames,
  ENTITY_FIELD,
  ID_FIELD,
  keyOf,
  LineError,
  parseLineObject,
  parseTimestamp,
  SET_TYPE,
  TS_FIELD,
  UNSET_TYPE,
} from "./format.js";

/** From a line's end back to `,"timestamp":"` in statelog's own lines (24-character timestamps). */
const TS_TAIL = 2 + 8 + CRC_FIELD.length + 1 + 24 + TS_FIELD.length;

/** Entity types a {@link LineDecoder} keeps the string of (lines of a few types mixed share them). */
const TYPES_KEPT = 16;

/**
 * Entities a {@link LineDecoder} with `batchEntities` parses with one
 * `JSON.parse` ({@link LineDecoder.flushEntities}): at most this many, and
 * about this many bytes of their text (a batch is due once it holds this
 * many; an entity of more than half of it is parsed alone, so that a
 * batch stays below 100 KB, see below). A
 * load of 100,000 entities of ~300 B took about 6% less time with batches
 * of this size than with a parse per line (noisy runs); batches of 100 KB
 * or more were slower (V8 allocates what `JSON.parse` builds from such a
 * text in the old generation at once).
 */
const BATCH_ENTITIES = 256;
const BATCH_BYTES = 64 * 1024;

/** What follows each entity text in a batch (see {@link LineDecoder.flushEntities}). */
const SEPARATOR = Buffer.from("\n,0,", "latin1");

/** Whether every odd index of `values` holds the number 0. */
function zerosAtOdd(values: readonly unknown[]): boolean {
  for (let i = 1; i < values.length; i += 2) if (values[i] !== 0) return false;
  return true;
}

/** A set change whose entity a batch fills in. */
type PendingChange = { -readonly [K in keyof Change]: Change[K] } & { entity?: unknown };

/**
 * A {@link LineError} of entities parsed in a batch: `lines` holds the
 * line numbers (as given to {@link LineDecoder.decode}, ascending) of
 * every entity of the batch that is not valid JSON on its own.
 */
export class EntityBatchError extends LineError {
  constructor(readonly lines: readonly number[]) {
    super("the entity is not valid JSON");
  }
}

/** What {@link LineDecoder.key} found. */
export const KeyShape = {
  /** Not statelog's own shape: parse the line with {@link parseLineObject}. */
  Other: 0,
  /** The key is the bytes `[keyStart, keyEnd)` of the line, as they are. */
  Raw: 1,
  /** The key has escapes: `escapedKey` holds it in {@link keyOf}'s form. */
  Escaped: 2,
} as const;
export type KeyShape = (typeof KeyShape)[keyof typeof KeyShape];

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

/** Reads the lines of one namespace's file; one instance per read (it caches what lines repeat). */
export class LineDecoder {
  /** Where the key found by the last {@link key} call that returned {@link KeyShape.Raw} starts, in its buffer. */
  keyStart = 0;
  /** Where that key ends (exclusive). */
  keyEnd = 0;
  /** The key found by the last {@link key} call that returned {@link KeyShape.Escaped}. */
  escapedKey = "";
  /** Whether the strings scanned by {@link #stringEnd} since it was reset hold a backslash. */
  #escaped = false;
  /**
   * The line the last {@link #prefix} call read in full (its buffer and
   * bounds), or `undefined`; and what it found: set or unset, where the
   * type starts (its quote) and ends (closing quote), where the id ends,
   * whether either holds escapes.
   */
  #line: Buffer | undefined;
  #start = 0;
  #end = 0;
  #isSet = false;
  #q = 0;
  #typeEnd = 0;
  #idEnd = 0;
  #keyEscaped = false;
  /** The entity types seen (up to {@link TYPES_KEPT}), as their bytes (latin1) and decoded. */
  #typeBytes: string[] = [];
  #types: string[] = [];
  /** Index in {@link #types} of the last type found. */
  #lastType = 0;
  /** The minute of the last timestamp (`YYYY-MM-DDTHH:MM:`, as bytes) and its time in ms. */
  #minute = "";
  #minuteMs = 0;
  /** Entity texts waiting for {@link flushEntities}, as `[e1\n,0,e2\n,0,…` (the `[` at 0), and their changes and lines. */
  #batch: Buffer | undefined;
  #batchUsed = 0;
  #batchStarts: number[] = [];
  #batchChanges: PendingChange[] = [];
  #batchLines: number[] = [];

  /**
   * @param namespace the namespace whose file is read
   * @param prefix its {@link linePrefix}
   * @param batchEntities parse the entities of checksummed lines in
   *   batches: {@link decode} returns such a change before its entity is
   *   parsed, and the caller must call {@link flushEntities} before it
   *   hands out what it decoded (whenever {@link entitiesDue}, and at the
   *   end)
   */
  constructor(
    readonly namespace: string,
    readonly prefix: Uint8Array,
    readonly batchEntities = false,
  ) {}

  /** Whether enough entities wait for {@link flushEntities} to make a batch. */
  entitiesDue(): boolean {
    return this.#batchChanges.length >= BATCH_ENTITIES || this.#batchUsed >= BATCH_BYTES;
  }

  /**
   * Parses the entities waiting since the last call and sets each one on
   * its change. The texts are joined into one JSON array, each followed by
   * a newline and a `0` (`[e1\n,0,e2\n,0]`), and parsed at once. The
   * result must hold a value and a `0` per text: a string left open by a
   * damaged text cannot run into the next one (no JSON string holds a
   * newline), and a text that makes no value or more than one of its own
   * (damaged brackets that complement another's, two values in one text)
   * moves the zeros. Otherwise each text is parsed alone. Only object
   * entities (`{…}`) of lines whose checksum held are batched, so what the
   * zeros cannot catch is damage made on purpose: texts that hold `0`s
   * where the batch puts them, under checksums recomputed by hand.
   * @throws EntityBatchError naming every line whose entity is not valid JSON
   */
  flushEntities(): void {
    const changes = this.#batchChanges;
    const n = changes.length;
    if (n === 0) return;
    const text = this.#batch as Buffer;
    const starts = this.#batchStarts;
    const lines = this.#batchLines;
    const used = this.#batchUsed;
    this.#batchChanges = [];
    this.#batchStarts = [];
    this.#batchLines = [];
    this.#batchUsed = 0;
    text[used - 1] = 93; // the last `,` becomes `]`
    let values: unknown[] | undefined;
    try {
      values = JSON.parse(text.toString("utf8", 0, used));
    } catch {
      values = undefined;
    }
    if (Array.isArray(values) && values.length === 2 * n && zerosAtOdd(values)) {
      for (let i = 0; i < n; i++) (changes[i] as PendingChange).entity = values[2 * i];
      return;
    }
    const bad: number[] = [];
    for (let i = 0; i < n; i++) {
      try {
        (changes[i] as PendingChange).entity = JSON.parse(
          text.toString("utf8", starts[i] as number, (i + 1 < n ? (starts[i + 1] as number) : used) - SEPARATOR.length),
        );
      } catch {
        bad.push(lines[i] as number);
      }
    }
    if (bad.length > 0) throw new EntityBatchError(bad);
  }

  /** Adds the entity text `buf[from, to)` of `change` (line `line`) to the batch. */
  #defer(buf: Buffer, from: number, to: number, change: PendingChange, line: number): void {
    const bytes = to - from;
    let text = this.#batch;
    const at = this.#batchChanges.length === 0 ? 1 : this.#batchUsed;
    const used = at + bytes + SEPARATOR.length;
    if (text === undefined || used > text.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * BATCH_BYTES, 2 * used));
      if (text !== undefined) text.copy(grown, 0, 0, at);
      text = grown;
      this.#batch = text;
    }
    text[0] = 91; // `[`
    buf.copy(text, at, from, to);
    SEPARATOR.copy(text, at + bytes);
    this.#batchUsed = used;
    this.#batchStarts.push(at);
    this.#batchChanges.push(change);
    this.#batchLines.push(line);
  }

  /** Index of the closing quote of the JSON string opening at `q`, or -1 before `end`; notes backslashes. */
  #stringEnd(buf: Buffer, q: number, end: number): number {
    for (let i = q + 1; i < end; i++) {
      const c = buf[i];
      if (c === 34) return i;
      if (c === 92) {
        this.#escaped = true;
        i++;
      }
    }
    return -1;
  }

  /**
   * Reads the prefix of the line `buf[start, end)` up to the end of its id
   * (see {@link key}); `false` when it is not statelog's own. What it found
   * is kept for {@link decodeScanned}.
   */
  #prefix(buf: Buffer, start: number, end: number): boolean {
    this.#line = undefined;
    if (!bytesAt(buf, start, this.prefix as Buffer)) return false;
    let q = start + this.prefix.length;
    let isSet: boolean;
    if (bytesAt(buf, q, SET_TYPE)) {
      q += SET_TYPE.length;
      isSet = true;
    } else if (bytesAt(buf, q, UNSET_TYPE)) {
      q += UNSET_TYPE.length;
      isSet = false;
    } else return false;
    if (buf[q] !== 34) return false;
    this.#escaped = false;
    const typeEnd = this.#stringEnd(buf, q, end);
    if (typeEnd < 0 || !bytesAt(buf, typeEnd + 1, ID_FIELD)) return false;
    const idStart = typeEnd + 1 + ID_FIELD.length;
    if (buf[idStart] !== 34) return false;
    const idEnd = this.#stringEnd(buf, idStart, end);
    if (idEnd < 0) return false;
    this.#line = buf;
    this.#start = start;
    this.#end = end;
    this.#isSet = isSet;
    this.#q = q;
    this.#typeEnd = typeEnd;
    this.#idEnd = idEnd;
    this.#keyEscaped = this.#escaped;
    return true;
  }

  /**
   * Finds the key of the line `buf[start, end)` from its prefix, without
   * decoding anything: the bytes `"<type>","entityID":"<id>"`, which for a
   * line without escapes are the key in {@link keyOf}'s form
   * ({@link keyStart}, {@link keyEnd}). Never parses the entity.
   */
  key(buf: Buffer, start: number, end: number): KeyShape {
    if (!this.#prefix(buf, start, end)) return KeyShape.Other;
    const q = this.#q;
    const typeEnd = this.#typeEnd;
    const idEnd = this.#idEnd;
    if (!this.#keyEscaped) {
      this.keyStart = q;
      this.keyEnd = idEnd + 1;
      return KeyShape.Raw;
    }
    try {
      this.escapedKey = keyOf(
        JSON.parse(buf.toString("utf8", q, typeEnd + 1)),
        JSON.parse(buf.toString("utf8", typeEnd + 1 + ID_FIELD.length, idEnd + 1)),
      );
      return KeyShape.Escaped;
    } catch {
      this.#line = undefined;
      return KeyShape.Other;
    }
  }

  /**
   * Decodes the line `buf[start, end)`. Its checksum is not checked here:
   * every line a read decodes was checked while the file was scanned
   * ({@link checkLineCrc} or {@link parseLineObject}).
   * @param parseEntity parse the entity JSON (else only check the line; a
   *   checksummed set line then has `entity: undefined`). With
   *   `batchEntities`, the entity of a checksummed line may be left for
   *   {@link flushEntities}, which names `line` if it is damaged.
   * @param line the line's number, for {@link EntityBatchError} (without
   *   it, the entity is parsed at once)
   * @throws LineError
   */
  decode(buf: Buffer, start: number, end: number, parseEntity: boolean, line = -1): Change {
    return (
      (this.#prefix(buf, start, end) ? this.#decodeRest(buf, end, parseEntity, line) : undefined) ??
      parseLineObject(buf.toString("utf8", start, end), this.namespace).change
    );
  }

  /**
   * {@link decode} of the line the last {@link key} call was given (and
   * found statelog's own shape in), without reading its prefix again:
   * the caller has not changed the bytes since.
   * @throws LineError
   */
  decodeScanned(buf: Buffer, start: number, end: number, parseEntity: boolean, line = -1): Change {
    if (this.#line !== buf || this.#start !== start || this.#end !== end)
      return this.decode(buf, start, end, parseEntity, line);
    return (
      this.#decodeRest(buf, end, parseEntity, line) ??
      parseLineObject(buf.toString("utf8", start, end), this.namespace).change
    );
  }

  /** {@link decode} of a line in statelog's own shape after {@link #prefix}; `undefined` for any other shape. */
  #decodeRest(buf: Buffer, end: number, parseEntity: boolean, line: number): Change | undefined {
    const start = this.#start;
    const isSet = this.#isSet;
    const q = this.#q;
    const typeEnd = this.#typeEnd;
    const idStart = typeEnd + 1 + ID_FIELD.length;
    const idEnd = this.#idEnd;
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
    let entityType: string;
    let entityId: string;
    if (this.#keyEscaped) {
      try {
        entityType = JSON.parse(buf.toString("utf8", q, typeEnd + 1));
        entityId = JSON.parse(buf.toString("utf8", idStart, idEnd + 1));
      } catch {
        throw new LineError("invalid entity type or id");
      }
    } else {
      entityType = this.#typeAt(buf, q + 1, typeEnd);
      entityId = buf.toString("utf8", idStart + 1, idEnd);
    }
    if (!hasCrc) checkNames(entityType, entityId);
    const timestamp = new Date(this.#timestampMs(buf, tsField + TS_FIELD.length, tsEnd));
    const namespace = this.namespace;
    if (!isSet) return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp };
    if (
      parseEntity &&
      hasCrc &&
      this.batchEntities &&
      line >= 0 &&
      tsField - entityStart <= BATCH_BYTES / 2 &&
      buf[entityStart] === 123 &&
      buf[tsField - 1] === 125
    ) {
      const change: PendingChange = {
        namespace,
        changeType: ChangeType.Set,
        entityType,
        entityId,
        entity: undefined,
        timestamp,
      };
      this.#defer(buf, entityStart, tsField, change, line);
      return change as Change;
    }
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

  /**
   * The entity type `buf[from, to)` (no escapes): one string per type for
   * the whole read, so that lines of a few types mixed make no string per
   * line and their changes share the type's string.
   */
  #typeAt(buf: Buffer, from: number, to: number): string {
    const known = this.#typeBytes;
    const last = this.#lastType;
    if (last < known.length && sameBytes(buf, from, to, known[last] as string)) return this.#types[last] as string;
    for (let i = 0; i < known.length; i++) {
      if (i !== last && sameBytes(buf, from, to, known[i] as string)) {
        this.#lastType = i;
        return this.#types[i] as string;
      }
    }
    const type = buf.toString("utf8", from, to);
    // A file of many types keeps the first few: the others are made per line, as they come.
    if (known.length < TYPES_KEPT) {
      known.push(buf.toString("latin1", from, to));
      this.#types.push(type);
      this.#lastType = known.length - 1;
    }
    return type;
  }

  /**
   * The time in ms of the timestamp `buf[from, to)`. statelog's own form
   * (`YYYY-MM-DDTHH:MM:SS.mmmZ`) within the minute of the previous one is
   * computed from its digits; anything else goes through {@link parseTimestamp}.
   * @throws LineError
   */
  #timestampMs(buf: Buffer, from: number, to: number): number {
    const own = to - from === 24 && buf[from + 19] === 46 && buf[from + 23] === 90 && buf[from + 16] === 58;
    const sec = own ? digits2(buf, from + 17) : -1;
    const ms3 = own ? digits2(buf, from + 20) : -1;
    const ms1 = own ? (buf[from + 22] as number) - 48 : -1;
    if (sec < 0 || sec > 59 || ms3 < 0 || ms1 < 0 || ms1 > 9) {
      return parseTimestamp(buf.toString("latin1", from, to)).getTime();
    }
    const within = sec * 1000 + ms3 * 10 + ms1;
    if (!sameBytes(buf, from, from + 17, this.#minute)) {
      const ms = parseTimestamp(buf.toString("latin1", from, to)).getTime();
      this.#minute = buf.toString("latin1", from, from + 17);
      this.#minuteMs = ms - within;
      return ms;
    }
    return this.#minuteMs + within;
  }
}
