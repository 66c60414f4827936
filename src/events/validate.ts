/**
 * Validation and copying of events before they are appended, public for
 * backend authors: `BaseEventStore.append` runs {@link prepareEvents}
 * before it calls the backend's `store`, and a backend that decodes stored
 * events uses {@link deepFreeze} and {@link EVENT_OVERHEAD_BYTES} to build
 * recorded events the way the base does.
 */
import { InvalidNameError, toJsonWithin, ValidationError, validateName } from "../index.js";
import { type EventInput, type EventMetadata, ExpectedVersion, type From } from "./types.js";

/**
 * An event checked and copied by {@link prepareEvents}: its own deep-frozen
 * data, and its JSON text. A backend writes `json` (and `metaJson`) as the
 * stored form of the payload, so it never serializes an event twice.
 */
export interface PreparedEvent {
  readonly id: string;
  readonly type: string;
  readonly data: unknown;
  readonly timestamp: Date;
  readonly metadata: EventMetadata | undefined;
  /** JSON of `data`. */
  readonly json: string;
  /** JSON of `metadata`, or undefined. */
  readonly metaJson: string | undefined;
  /** Estimated bytes held in memory by this event. */
  readonly size: number;
}

/**
 * Fixed per-event overhead of the index (object, position numbers, Date),
 * in bytes: an estimate. A backend that rebuilds events from storage counts
 * `EVENT_OVERHEAD_BYTES + 2 × (id + type + JSON lengths)` as each event's
 * size, as {@link prepareEvents} does, so `stats().memoryUsageBytes` agrees.
 */
export const EVENT_OVERHEAD_BYTES = 120;

/**
 * Deep-freezes JSON data in place and returns it. Recorded events are
 * shared between readers: a backend freezes the data (and metadata) it
 * decodes before it commits events to the log.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  } else {
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) deepFreeze((value as Record<string, unknown>)[keys[i] as string]);
  }
  return Object.freeze(value);
}

/**
 * Checks a stream id: a name of at most 255 UTF-8 bytes without control
 * characters (`/` allowed).
 * @throws InvalidNameError
 */
export function validateStreamId(streamId: unknown): asserts streamId is string {
  validateName("streamId", streamId, true);
}

function checkText(value: unknown, field: string): asserts value is string {
  try {
    validateName(field, value, true);
  } catch (error) {
    const reason = error instanceof InvalidNameError ? error.reason : String(error);
    throw new ValidationError(field, value === undefined ? "is required" : reason, { cause: error });
  }
}

/**
 * Validates every event and copies it, or throws on the first bad one (so
 * nothing of the batch is appended). `BaseEventStore.append` calls it; a
 * backend calls it itself only to size a batch before `open` finishes (as
 * the NATS store checks its envelope against the server's payload limit).
 * @param maxBytes the largest payload (and metadata), in UTF-8 bytes of JSON
 * @throws ValidationError | InvalidValueError | TooLargeError
 */
export function prepareEvents(events: readonly EventInput[], maxBytes: number): PreparedEvent[] {
  if (!Array.isArray(events)) throw new ValidationError("events", "must be an array of events");
  const out: PreparedEvent[] = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as EventInput | undefined;
    const at = `events[${i}]`;
    if (typeof e !== "object" || e === null) throw new ValidationError(at, "must be an event object");
    checkText(e.id, `${at}.id`);
    checkText(e.type, `${at}.type`);
    const ts = e.timestamp as unknown;
    if (ts === undefined || ts === null) throw new ValidationError(`${at}.timestamp`, "is required (a Date)");
    if (!(ts instanceof Date) || Number.isNaN(ts.getTime())) {
      throw new ValidationError(`${at}.timestamp`, "must be a valid Date");
    }
    const json = toJsonWithin(e.data, maxBytes, `event ${JSON.stringify(e.id)}`, `${at}.data`);
    let metadata: EventMetadata | undefined;
    let metaJson: string | undefined;
    if (e.metadata !== undefined) {
      if (typeof e.metadata !== "object" || e.metadata === null || Array.isArray(e.metadata)) {
        throw new ValidationError(`${at}.metadata`, "must be a plain object");
      }
      metaJson = toJsonWithin(e.metadata, maxBytes, `metadata of event ${JSON.stringify(e.id)}`, `${at}.metadata`);
      metadata = deepFreeze(JSON.parse(metaJson) as EventMetadata);
    }
    out[i] = {
      id: e.id,
      type: e.type,
      data: deepFreeze(JSON.parse(json)),
      timestamp: frozenTimestamp(ts.getTime()),
      metadata,
      json,
      metaJson,
      size: EVENT_OVERHEAD_BYTES + 2 * (e.id.length + e.type.length) + json.length * 2 + (metaJson?.length ?? 0) * 2,
    };
  }
  return out;
}

/** The position in a {@link From}, checked. @throws ValidationError */
export function positionOf(from: From | undefined, field = "cursor"): number {
  const p = from === undefined ? 0 : typeof from === "number" ? from : (from as { position?: unknown })?.position;
  if (typeof p !== "number" || !Number.isSafeInteger(p) || p < 0) {
    throw new ValidationError(field, `position must be an integer >= 0, got ${String(p)}`);
  }
  return p;
}

/**
 * The position in a {@link From} given for stream `streamId`, checked: a
 * cursor of another stream (an object whose `streamId` is another string,
 * as a {@link Cursor} of another stream) is refused, its position being
 * one of that stream.
 * @throws ValidationError
 */
export function streamPositionOf(from: From | undefined, streamId: string, field = "cursor"): number {
  const position = positionOf(from, field);
  const owner = typeof from === "object" && from !== null ? (from as { streamId?: unknown }).streamId : undefined;
  if (typeof owner === "string" && owner !== streamId) {
    throw new ValidationError(
      field,
      `is a cursor of stream ${JSON.stringify(owner)}, not of ${JSON.stringify(streamId)}: its position ${position} is one of that stream`,
    );
  }
  return position;
}

/**
 * The global position in a {@link From} given to `subscribeAll`, checked:
 * a stream's cursor (an object with a `streamId` string, as a
 * {@link Cursor}) is refused, its position being one of that stream.
 * @throws ValidationError
 */
export function globalPositionOf(from: From | undefined, field = "from"): number {
  const position = positionOf(from, field);
  const owner = typeof from === "object" && from !== null ? (from as { streamId?: unknown }).streamId : undefined;
  if (typeof owner === "string") {
    throw new ValidationError(
      field,
      `is a cursor of stream ${JSON.stringify(owner)}: its position ${position} is one of that stream, not a global position`,
    );
  }
  return position;
}

/**
 * Checks an append's `expectedVersion`: an integer >= 0, `"any"`,
 * `"no_stream"` or `"stream_exists"` (or undefined).
 * @throws ValidationError
 */
export function validateExpectedVersion(ev: unknown): asserts ev is ExpectedVersion | undefined {
  if (ev === undefined) return;
  if (typeof ev === "number" ? Number.isSafeInteger(ev) && ev >= 0 : EXPECTED_VERSION_WORDS.includes(ev as string)) {
    return;
  }
  throw new ValidationError(
    "expectedVersion",
    `must be an integer >= 0, "any", "no_stream" or "stream_exists", got ${typeof ev === "string" ? JSON.stringify(ev) : String(ev)}`,
  );
}

const EXPECTED_VERSION_WORDS: readonly unknown[] = Object.values(ExpectedVersion);

/** Checks a `limit` argument (an integer >= 1). @throws ValidationError */
export function checkLimit(limit: unknown): number {
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw new ValidationError("limit", `must be an integer >= 1, got ${String(limit)}`);
  }
  return limit;
}

/** Checks a Date argument. @throws ValidationError */
export function checkDate(value: unknown, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    throw new ValidationError(field, "must be a valid Date");
  return value;
}

/** The setters of `Date.prototype` (`setTime`, `setFullYear`, …): a frozen timestamp refuses each. */
const DATE_SETTERS = Object.getOwnPropertyNames(Date.prototype).filter((name) => name.startsWith("set"));

/**
 * A `Date` whose setters throw a `TypeError`: the timestamp of a recorded
 * event, which readers share (`Object.freeze` does not stop `setTime`).
 * `instanceof Date`, its getters and JSON are a `Date`'s; its prototype is
 * its own (a strict comparison of prototypes tells it from a plain `Date`;
 * `structuredClone` makes a plain one).
 */
class FrozenDate extends Date {}
for (const name of DATE_SETTERS) {
  Object.defineProperty(FrozenDate.prototype, name, {
    value(): never {
      throw new TypeError(`Cannot call ${name} on an event's timestamp: it is shared by every reader (copy it first)`);
    },
  });
}
Object.freeze(FrozenDate.prototype);

/**
 * The timestamp of a recorded event at `ms` since the epoch: a `Date`
 * whose setters throw, so that one reader cannot change what the others
 * read. For event-store backends building recorded events.
 */
export function frozenTimestamp(ms: number): Date {
  return new FrozenDate(ms);
}
