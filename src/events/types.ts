/**
 * The event-store contract (docs/events.md): events in streams with
 * 1-based positions per stream and one global sequence, cursors, replay,
 * live subscriptions, retention and snapshots. Every event store (memory,
 * file, NATS, and yours) keeps it, and `describeEventStoreContract` in
 * `statelog/testing` checks it.
 */
import type { JsonValue } from "../index.js";

/** Metadata of an event: JSON data with string keys. */
export type EventMetadata = { readonly [key: string]: JsonValue };

/** An event as the caller appends it. */
export interface EventInput<D = unknown> {
  /** Identifier chosen by the caller (non-empty, at most 255 UTF-8 bytes, no control characters). */
  readonly id: string;
  /** Event type, e.g. `"user.created"` (same rules as `id`). */
  readonly type: string;
  /** The payload: JSON data that round-trips, at most `maxValueBytes` as JSON. */
  readonly data: D;
  /** When the event happened. Required; {@link createEvent} fills in the current time. */
  readonly timestamp: Date;
  /** Optional JSON metadata (correlation ids, user…). */
  readonly metadata?: EventMetadata | undefined;
}

/**
 * An event as the store returns it: the input plus where it was stored.
 * Recorded events are deep-frozen and shared between readers: treat them
 * as immutable (a mutation throws in strict mode).
 */
export interface RecordedEvent<D = unknown> {
  readonly id: string;
  readonly type: string;
  readonly data: D;
  readonly timestamp: Date;
  readonly metadata?: EventMetadata | undefined;
  /** The stream this event belongs to. */
  readonly streamId: string;
  /** 1-based position in its stream; never reused, even after retention. */
  readonly position: number;
  /** 1-based position in the store's global sequence (all streams). */
  readonly globalPosition: number;
}

/** Options of {@link createEvent}. */
export interface CreateEventOptions {
  /** Identifier. @default a random UUID */
  id?: string;
  /** When the event happened. @default now */
  timestamp?: Date;
  /** Metadata to attach. @default none */
  metadata?: EventMetadata;
}

/** Creates an event: type and data, with an id (a random UUID) and timestamp (now) filled in unless given. */
export function createEvent<D>(type: string, data: D, options: CreateEventOptions = {}): EventInput<D> {
  return {
    id: options.id ?? crypto.randomUUID(),
    type,
    data,
    timestamp: options.timestamp ?? new Date(),
    ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
  };
}

/** Special expected versions of {@link EventStore.append}. A number means "the stream's last position is exactly this" (0: no event was ever appended). */
export const ExpectedVersion = {
  /** No check. */
  Any: "any",
  /** The stream must not exist yet. */
  NoStream: "no_stream",
  /** The stream must exist (at least one event was appended to it, even if retention removed it since). */
  StreamExists: "stream_exists",
} as const;
export type ExpectedVersion = (typeof ExpectedVersion)[keyof typeof ExpectedVersion] | number;

/** A position in one stream: `position` is the last event read (0 = before the first). */
export class Cursor {
  constructor(
    /** The stream. */
    readonly streamId: string,
    /** Position of the last event read; the next read starts after it. 0 = from the start. */
    readonly position = 0,
    /** Timestamp of the event at `position`. @default the Unix epoch */
    readonly timestamp: Date = new Date(0),
  ) {}

  /** `stream:user-stream pos:0 time:2024-01-01T00:00:00Z` (RFC 3339, UTC, whole seconds). */
  toString(): string {
    const t = Number.isNaN(this.timestamp.getTime())
      ? "invalid"
      : this.timestamp.toISOString().replace(/\.\d{3}Z$/, "Z");
    return `stream:${this.streamId} pos:${this.position} time:${t}`;
  }
}

/** Where to start reading: a cursor, an object with a position, or the position itself (exclusive). */
export type From = number | { readonly position: number };

/** Options of calls that can be cancelled. */
export interface EventCallOptions {
  /** Aborts the call. An append that was already written stays written. */
  signal?: AbortSignal | undefined;
}

/** Options of {@link EventStore.append}. */
export interface AppendOptions extends EventCallOptions {
  /** Optimistic concurrency check. @default "any" */
  expectedVersion?: ExpectedVersion | undefined;
}

/** What {@link EventStore.append} stored. */
export interface AppendResult {
  readonly streamId: string;
  /** Position of the first appended event (the stream's last position + 1 for an empty batch). */
  readonly firstPosition: number;
  /** The stream's last position after the append: the next expected version. */
  readonly lastPosition: number;
  /** Global position of the last appended event (the store's last global position for an empty batch). */
  readonly globalPosition: number;
}

/** Result of {@link EventStore.read}. */
export interface ReadResult {
  readonly events: readonly RecordedEvent[];
  /** Where the next read continues: after the last event returned (unchanged when none). */
  readonly cursor: Cursor;
}

/** Options of subscriptions. */
export interface SubscribeOptions extends EventCallOptions {
  /**
   * Most events a subscriber holds in its buffer, copied from the store in
   * one go. A slow subscriber never makes the store buffer more: it reads
   * on from the store where it left off. @default 256
   */
  bufferSize?: number | undefined;
  /** Only events of these types are delivered (others are skipped, the position still advances). @default every type */
  types?: readonly string[] | undefined;
  /** Only events of streams whose id starts with this are delivered (others are skipped, the position still advances). @default every stream */
  streamPrefix?: string | undefined;
  /**
   * Called with the subscription's position when no delivered event
   * carries it, just before the subscription waits for new events: when it
   * moved past events the filter (`types`, `streamPrefix`) left out, or,
   * from 0, to the head of a store whose every event retention removed.
   * The position to resume from, for a checkpoint that advances even when
   * no event is delivered. Must not throw (errors are ignored). @default none
   */
  onCheckpoint?: ((position: number) => void) | undefined;
}

/**
 * A live subscription: history from the cursor, then live events, with no
 * gap, no duplicate and strictly increasing positions. Ends (without an
 * error) on `break`, `close()`, its AbortSignal or the store's `close()`;
 * throws `BehindRetentionError` if events it still had to deliver were
 * removed by retention.
 */
export interface EventSubscription extends AsyncIterable<RecordedEvent>, AsyncDisposable {
  /** Resolves `true` once the subscriber has received every event that existed and waits for new ones; `false` if it ended first. */
  readonly caughtUp: Promise<boolean>;
  /** True while the subscriber has delivered everything stored and waits for more. */
  readonly isLive: boolean;
  /**
   * Position (stream position, or global position for `subscribeAll`) of
   * the last event delivered or left out by the filter: where to resume.
   */
  readonly position: number;
  /** Ends the subscription; a pending `next()` resolves as done. */
  close(): void;
  /**
   * Optional: the next events in one call instead of one `await` per event
   * (every event fetched and not yet delivered, at least one, waiting when
   * there is none; `[]` once the subscription ended), with the iterator's
   * guarantees. A subscription is read either with `for await` or with
   * `nextBatch()`. Every subscription of `BaseEventStore` has it; consumers
   * fall back to `for await` when it is missing.
   */
  nextBatch?(): Promise<readonly RecordedEvent[]>;
}

/** Information about one stream. */
export interface StreamInfo {
  readonly streamId: string;
  /** Events currently stored (after retention). */
  readonly eventCount: number;
  /** Position of the oldest stored event (lastPosition + 1 when retention removed them all). */
  readonly firstPosition: number;
  /** Position of the last event ever appended. */
  readonly lastPosition: number;
  /** Timestamp of the oldest stored event, if any. */
  readonly firstEvent: Date | undefined;
  /** Timestamp of the newest stored event, if any. */
  readonly lastEvent: Date | undefined;
}

/** Counters of a store. */
export interface EventStoreStats {
  /** Events stored now (after retention). */
  readonly totalEvents: number;
  /** Streams known (a stream stays known after retention emptied it: its positions never restart). */
  readonly totalStreams: number;
  /** Events appended since the store was opened. */
  readonly eventsAppended: number;
  /** Events returned by reads, replays and subscriptions since the store was opened. */
  readonly eventsRead: number;
  /** Subscriptions currently open. */
  readonly subscriptionsActive: number;
  /** Snapshots taken since the store was opened. */
  readonly snapshotsCreated: number;
  /** Events removed by retention since the store was opened. */
  readonly eventsExpired: number;
  /** Estimated memory held by the stored events, from their sizes (ids, types, JSON payload). */
  readonly memoryUsageBytes: number;
  /** The last global position ever assigned. */
  readonly globalPosition: number;
}

/** What a snapshot covered. */
export interface SnapshotInfo {
  /** Global position the snapshot includes (everything up to it). */
  readonly globalPosition: number;
  /** Events stored in the snapshot. */
  readonly events: number;
  /** Size on disk, in bytes (0 for a store without disk). */
  readonly bytes: number;
}

/**
 * Observer of a store's activity. Every
 * method is optional; the default does nothing. Must not throw (errors are
 * ignored).
 */
export interface EventStoreMetrics {
  /** After an append was stored. `durationMs` includes the fsync of a durable store. */
  onAppend?(info: { store: string; streamId: string; count: number; durationMs: number }): void;
  /** After a read, a replay step or a subscription delivery returned `count` events. */
  onRead?(info: { store: string; count: number }): void;
  /**
   * When a subscriber is ended because events it still had to deliver were
   * removed by retention. Never called for slow subscribers: they are not
   * skipped, they read on from the store.
   */
  onDropped?(info: { store: string; streamId: string | undefined; position: number; firstAvailable: number }): void;
  /** After retention removed `count` events. */
  onRetention?(info: { store: string; count: number }): void;
  /** After a snapshot was taken. */
  onSnapshot?(info: { store: string; globalPosition: number; bytes: number; durationMs: number }): void;
  /**
   * When background work (timed retention or snapshots) failed. The store
   * keeps running and tries again at the next tick; report or alert here.
   */
  onBackgroundError?(info: { store: string; task: "retention" | "snapshot"; error: unknown }): void;
}

/** What an event store can do beyond the basics; the conformance suite skips visibly what is missing. */
export interface EventStoreCapabilities {
  /** An acknowledged append survives a restart of the process. */
  readonly durable: boolean;
  /** Events older than `retentionDurationMs` are removed. */
  readonly retention: boolean;
  /** `applyRetention()` runs retention on demand (with the store's clock). */
  readonly applyRetention: boolean;
  /** `maxEventsPerStream` and `maxStreams` are enforced. */
  readonly limits: boolean;
  /** `snapshot()` writes the state somewhere a reopen reads it from. */
  readonly persistentSnapshots: boolean;
}

/**
 * Options every event store accepts (a backend's options extend these).
 * {@link BaseEventStore} checks them: an invalid value is a
 * `ConfigurationError` naming the store, the option and what it accepts.
 */
export interface EventStoreOptions {
  /**
   * Most events a stream may hold; an append that would cross it fails
   * with a `LimitExceededError` and appends nothing. 0 = unlimited.
   * @default 100000
   */
  maxEventsPerStream?: number;
  /**
   * Most streams the store may hold; an append creating one more fails
   * with a `LimitExceededError`. 0 = unlimited.
   * @default 10000
   */
  maxStreams?: number;
  /**
   * Events older than this (by their timestamp), in milliseconds, are
   * removed in the background and by `applyRetention()`. 0 = keep forever.
   * @default 0
   */
  retentionDurationMs?: number;
  /**
   * Interval between automatic snapshots, in milliseconds (for a store
   * whose snapshots are persistent), at most 2147483647 (about 24.8 days).
   * 0 = only on demand.
   * @default 3600000 (1 hour)
   */
  snapshotIntervalMs?: number;
  /** Observer of appends, reads, retention and snapshots. @default no-op */
  metrics?: EventStoreMetrics;
  /** Instance name, passed to the metrics. @default chosen by the backend, e.g. "memory-store" */
  name?: string;
  /** Largest event payload (and metadata), in UTF-8 bytes of JSON. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
  /** The clock of retention. @default () => new Date() */
  clock?: () => Date;
}

/** Defaults of {@link EventStoreOptions}. */
export const EVENT_STORE_DEFAULTS = {
  /** @default 100000 */
  maxEventsPerStream: 100_000,
  /** @default 10000 */
  maxStreams: 10_000,
  /** @default 0 (keep forever) */
  retentionDurationMs: 0,
  /** @default 3600000 (1 hour) */
  snapshotIntervalMs: 60 * 60 * 1000,
  /** @default 1048576 (1 MiB) */
  maxValueBytes: 1024 * 1024,
} as const;

/**
 * The option names of {@link EventStoreOptions}: a backend adds its own to
 * them for `OptionChecker.known` (which {@link BaseEventStore} runs when the
 * backend passes its own option names).
 */
export const EVENT_STORE_OPTION_NAMES: readonly string[] = [
  "maxEventsPerStream",
  "maxStreams",
  "retentionDurationMs",
  "snapshotIntervalMs",
  "metrics",
  "name",
  "maxValueBytes",
  "clock",
];

/** Old spellings of event-store options and their names now, for `OptionChecker.known`'s hints. */
export const EVENT_STORE_RENAMED_OPTIONS: Readonly<Record<string, string>> = {
  retentionDuration: "retentionDurationMs",
  snapshotInterval: "snapshotIntervalMs",
  maxEventBytes: "maxValueBytes",
};

/** The event-store contract. */
export interface EventStore extends AsyncDisposable {
  readonly capabilities: EventStoreCapabilities;
  /** The configured instance name. */
  readonly name: string;
  /**
   * Appends `events` to `streamId` atomically: all of them or none. Validates
   * every event first; checks `expectedVersion` and the limits against the
   * state at the moment the batch is stored.
   * @throws ValidationError | InvalidNameError | InvalidValueError | TooLargeError | VersionConflictError | LimitExceededError | ClosedError
   */
  append(streamId: string, events: readonly EventInput[], options?: AppendOptions): Promise<AppendResult>;
  /** Up to `limit` events after the cursor's position. @throws NotFoundError when the stream does not exist */
  read(streamId: string, cursor: From, limit: number, options?: EventCallOptions): Promise<ReadResult>;
  /** Every event after `fromPosition` (0 = all): `readStream(s, 2)` returns positions 3, 4, …. @throws NotFoundError */
  readStream(streamId: string, fromPosition?: number, options?: EventCallOptions): Promise<RecordedEvent[]>;
  /** Events of all streams with `from <= timestamp <= to`, by timestamp, equal timestamps by global position. */
  readTimeRange(from: Date, to: Date, options?: EventCallOptions): Promise<RecordedEvent[]>;
  /** Like {@link readTimeRange}, as an AsyncIterable that ends on `break`, abort or `close()`. */
  replay(from: Date, to: Date, options?: EventCallOptions): AsyncIterable<RecordedEvent>;
  /** History of one stream after the cursor, then live events. The stream need not exist yet. */
  subscribe(streamId: string, cursor?: From, options?: SubscribeOptions): EventSubscription;
  /** History of all streams after a global position, then live events: what a projection needs. */
  subscribeAll(from?: From, options?: SubscribeOptions): EventSubscription;
  /** @throws NotFoundError */
  getStreamInfo(streamId: string): Promise<StreamInfo>;
  /** Every known stream, in creation order. */
  getStreams(): Promise<StreamInfo[]>;
  stats(): EventStoreStats;
  /** Takes a snapshot now (a durable store writes it to disk atomically). */
  snapshot(options?: EventCallOptions): Promise<SnapshotInfo>;
  /** Removes events older than `retentionDurationMs` now (also runs in the background); returns how many. */
  applyRetention?(): Promise<number>;
  /**
   * Waits until this store's reads see every append stored so far, other
   * processes' too (its `signal` ends the wait with an `AbortError`).
   * Present on backends whose reads may lag appends made elsewhere (NATS);
   * without it, reads see every stored append at once.
   */
  catchUp?(options?: EventCallOptions): Promise<void>;
  /** Ends subscriptions, waits for background work and pending writes; later calls fail with a `ClosedError`. Idempotent. */
  close(): Promise<void>;
}
