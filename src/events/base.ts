/**
 * `BaseEventStore`: the machinery every event store shares, public for
 * backend authors — option checks, validation, reads, time ranges, replay,
 * subscriptions, stats, metrics, retention and snapshot timers, close. A
 * backend supplies how a batch is stored (`store`) and how a snapshot is
 * taken (`takeSnapshot`); everything else works from the in-memory
 * {@link EventLog} the base keeps in `this.log`. See docs/backends.md.
 */
import {
  ClosedError,
  ConfigurationError,
  MAX_TIMER_MS,
  NotFoundError,
  OptionChecker,
  throwIfAborted,
  ValidationError,
} from "../index.js";
import { type AppendRequest, EventLog, type Limits, type PlannedAppend, type StreamState } from "./log.js";
import { Subscription, type SubscriptionSource } from "./subscription.js";
import {
  type AppendOptions,
  type AppendResult,
  Cursor,
  EVENT_STORE_DEFAULTS,
  EVENT_STORE_OPTION_NAMES,
  EVENT_STORE_RENAMED_OPTIONS,
  type EventCallOptions,
  type EventInput,
  type EventStore,
  type EventStoreCapabilities,
  type EventStoreMetrics,
  type EventStoreOptions,
  type EventStoreStats,
  type EventSubscription,
  type From,
  type ReadResult,
  type RecordedEvent,
  type SnapshotInfo,
  type StreamInfo,
  type SubscribeOptions,
} from "./types.js";
import {
  checkDate,
  checkLimit,
  globalPositionOf,
  prepareEvents,
  streamPositionOf,
  validateExpectedVersion,
  validateStreamId,
} from "./validate.js";

/**
 * The base of an event store, for backend authors (the memory, file and
 * NATS event stores extend it). It keeps committed events in an
 * {@link EventLog} (`this.log`) and serves every read, time range, replay
 * and subscription from it; it checks the options of
 * {@link EventStoreOptions}, validates appends ({@link prepareEvents}) and
 * keeps stats, metrics, timers and the closed state.
 *
 * A subclass implements:
 * - `capabilities`;
 * - `store(request)`: persist one validated {@link AppendRequest} and
 *   commit it to `this.log`, returning the {@link PlannedAppend}. A store
 *   without I/O returns `this.commitNow(request)`; a durable one plans
 *   with `this.log.plan([request], this.limits)`, writes the planned
 *   records, then `this.log.commit(records, sizes)`;
 * - `takeSnapshot()`: what a snapshot covers (and writes, when persistent);
 * - optionally `afterRetention(removed)` and `release()`.
 *
 * It calls `this.startTimers(persistentSnapshots)` once open.
 *
 * @example
 * class MyEventStore extends BaseEventStore {
 *   readonly capabilities = { durable: false, retention: true, applyRetention: true, limits: true, persistentSnapshots: false };
 *   constructor(options: EventStoreOptions = {}) {
 *     super(options, "my-event-store", "MyEventStore", []);
 *     this.startTimers(false);
 *   }
 *   protected async store(request: AppendRequest) { return this.commitNow(request); }
 *   protected async takeSnapshot() { return { globalPosition: this.log.lastGlobal, events: this.log.global.length, bytes: 0 }; }
 * }
 */
export abstract class BaseEventStore implements EventStore {
  abstract readonly capabilities: EventStoreCapabilities;
  readonly name: string;
  /** The index of committed events every read and subscription is served from. */
  protected readonly log = new EventLog();
  /** `maxEventsPerStream` and `maxStreams`, for `this.log.plan`. */
  protected readonly limits: Limits;
  /** Retention, in milliseconds (0 = keep forever). */
  protected readonly retentionDurationMs: number;
  /** Interval of automatic snapshots, in milliseconds (0 = only on demand). */
  protected readonly snapshotIntervalMs: number;
  /** Largest event payload, in UTF-8 bytes of JSON (see {@link lowerMaxValueBytes}). */
  protected maxValueBytes: number;
  /** The clock of retention. */
  protected readonly clock: () => Date;
  protected readonly metrics: EventStoreMetrics;
  /** True once `close()` started. */
  protected closed = false;
  #eventsAppended = 0;
  /** See {@link failed}. */
  #failure: Error | undefined;
  #eventsRead = 0;
  #eventsExpired = 0;
  /** Snapshots taken since the store was opened (for `stats()`). */
  protected snapshotsCreated = 0;
  readonly #subscriptions = new Set<Subscription>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #background = new Set<Promise<unknown>>();
  /** The class name, for `ConfigurationError` messages. */
  readonly #owner: string;
  /** The timed snapshot running, if any: a tick meanwhile takes none (see {@link startTimers}). */
  #timedSnapshot: Promise<unknown> | undefined;

  /**
   * Checks the options of {@link EventStoreOptions}.
   * @param options the store's options (a backend's options extend {@link EventStoreOptions})
   * @param defaultName the instance name when `options.name` is not given
   * @param owner the class name, for `ConfigurationError` messages: `"FileEventStore"`
   * @param ownOptionNames the backend's own option names; when given, any
   *   other unknown option is refused (with a hint for old spellings such as
   *   `retentionDuration`)
   * @throws ConfigurationError naming the option, what it accepts and what it got
   */
  protected constructor(
    options: EventStoreOptions | undefined,
    defaultName: string,
    owner = "EventStore",
    ownOptionNames?: readonly string[],
  ) {
    this.#owner = owner;
    const check = new OptionChecker<EventStoreOptions>(owner, options, EVENT_STORE_DEFAULTS);
    if (ownOptionNames) check.known([...EVENT_STORE_OPTION_NAMES, ...ownOptionNames], EVENT_STORE_RENAMED_OPTIONS);
    const count = { min: 0 };
    this.limits = {
      maxEventsPerStream: check.integer("maxEventsPerStream", count),
      maxStreams: check.integer("maxStreams", count),
    };
    this.retentionDurationMs = check.number("retentionDurationMs", { min: 0 });
    // setInterval takes at most 2^31 - 1 ms (about 24.8 days); a longer delay would fire at once.
    this.snapshotIntervalMs = check.number("snapshotIntervalMs", { min: 0, max: MAX_TIMER_MS });
    this.maxValueBytes = check.integer("maxValueBytes", { min: 1 });
    this.clock = check.optionalFunction("clock") ?? (() => new Date());
    const metrics = check.custom<"metrics", EventStoreMetrics | undefined>("metrics", (v) =>
      v === undefined || (typeof v === "object" && v !== null) ? undefined : "an object of optional hooks",
    );
    this.metrics = metrics ?? {};
    this.name = options?.name === undefined ? defaultName : check.string("name");
  }
  /**
   * Lowers `maxValueBytes` to `limit` (a larger `limit` changes nothing):
   * for a backend that learns a smaller limit of its own while it opens,
   * before any write (a NATS stream's largest message, `max_msg_size`).
   */
  protected lowerMaxValueBytes(limit: number): void {
    if (limit < this.maxValueBytes) this.maxValueBytes = limit;
  }

  /**
   * Starts the retention timer, and the snapshot timer when `snapshots`
   * (a store with persistent snapshots). Call it once the store is open.
   * A snapshot tick while the previous timed snapshot still runs takes
   * none: snapshots slower than `snapshotIntervalMs` do not pile up.
   */
  protected startTimers(snapshots: boolean): void {
    if (this.retentionDurationMs > 0) {
      // Ten times per retention period (at least every second, at most every minute).
      const every = Math.min(60_000, Math.max(1_000, this.retentionDurationMs / 10));
      this.#timers.push(
        setInterval(() => this.runInBackground("retention", () => this.applyRetention()), every).unref(),
      );
    }
    if (snapshots && this.snapshotIntervalMs > 0) {
      this.#timers.push(
        setInterval(() => {
          if (this.#timedSnapshot !== undefined) return;
          this.runInBackground("snapshot", () => {
            const run = this.snapshot().finally(() => {
              this.#timedSnapshot = undefined;
            });
            this.#timedSnapshot = run;
            return run;
          });
        }, this.snapshotIntervalMs).unref(),
      );
    }
  }

  /** Runs background work that `close()` waits for; its errors go to `metrics.onBackgroundError`. */
  protected runInBackground(task: "retention" | "snapshot", work: () => Promise<unknown>): void {
    if (this.closed) return;
    const p = work().catch((error: unknown) => {
      if (!this.closed) this.notify("onBackgroundError", { store: this.name, task, error });
    });
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  /**
   * @throws ClosedError once the store is closed, or the error it {@link failed} with (call it first in a
   *   backend's own public methods)
   */
  protected check(): void {
    if (this.closed) throw new ClosedError(`event store ${JSON.stringify(this.name)}`);
    if (this.#failure) throw this.#failure;
  }

  /**
   * Marks the store failed for good: its backend can no longer keep the
   * index current (say, the reader of a shared log stopped on a message it
   * cannot read). Every later call rejects with `error`, and every
   * subscription ends with it at its next read, instead of serving an
   * index that silently stopped growing. The store is to be reopened.
   */
  protected failed(error: Error): void {
    if (this.#failure !== undefined || this.closed) return;
    this.#failure = error;
    this.log.wakeAll();
    // Timed retention and snapshots would fail the same way at every tick: stopped (close() still works).
    for (const t of this.#timers) clearInterval(t);
  }

  /** Calls a metrics hook; a hook that throws is ignored. */
  protected notify<K extends keyof EventStoreMetrics>(
    hook: K,
    info: Parameters<NonNullable<EventStoreMetrics[K]>>[0],
  ): void {
    const fn = this.metrics[hook] as ((i: typeof info) => void) | undefined;
    if (!fn) return;
    try {
      fn.call(this.metrics, info);
    } catch {
      // A metrics collector must not break the store.
    }
  }

  /** Stores validated requests (durably for a durable store) and commits them to the index. */
  protected abstract store(request: AppendRequest): Promise<PlannedAppend>;
  /** Writes a snapshot; returns what it covered. */
  protected abstract takeSnapshot(): Promise<SnapshotInfo>;
  /**
   * Removes expired data from durable storage after the index dropped it;
   * called after every retention run, `removed` being what this run
   * dropped (0 too: an earlier run's or the open's may still be there).
   */
  protected async afterRetention(_removed: number): Promise<void> {}
  /** Releases backend resources after pending work finished. */
  protected async release(): Promise<void> {}

  async append(streamId: string, events: readonly EventInput[], options?: AppendOptions): Promise<AppendResult> {
    this.check();
    throwIfAborted(options?.signal);
    validateStreamId(streamId);
    const ev = options?.expectedVersion;
    validateExpectedVersion(ev);
    const prepared = prepareEvents(events, this.maxValueBytes);
    const started = this.metrics.onAppend ? performance.now() : 0;
    const planned = await this.store({ streamId, events: prepared, expectedVersion: ev, signal: options?.signal });
    if (!planned.ok) throw planned.error;
    const { records } = planned;
    this.#eventsAppended += records.length;
    if (records.length > 0) {
      if (this.metrics.onAppend)
        this.notify("onAppend", {
          store: this.name,
          streamId,
          count: records.length,
          durationMs: performance.now() - started,
        });
      const last = records[records.length - 1] as RecordedEvent;
      return {
        streamId,
        firstPosition: (records[0] as RecordedEvent).position,
        lastPosition: last.position,
        globalPosition: last.globalPosition,
      };
    }
    const last = this.log.streams.get(streamId)?.last ?? 0;
    return { streamId, firstPosition: last + 1, lastPosition: last, globalPosition: this.log.lastGlobal };
  }

  /** Plans and commits one request synchronously: the whole `store` of a backend without I/O. */
  protected commitNow(request: AppendRequest): PlannedAppend {
    const planned = this.log.plan([request], this.limits)[0] as PlannedAppend;
    if (planned.ok) this.log.commit(planned.records, planned.sizes);
    return planned;
  }

  #counted<T extends readonly RecordedEvent[]>(events: T): T {
    if (events.length > 0) {
      this.#eventsRead += events.length;
      this.notify("onRead", { store: this.name, count: events.length });
    }
    return events;
  }

  #streamOrThrow(streamId: string): StreamState {
    validateStreamId(streamId);
    const s = this.log.streams.get(streamId);
    if (!s) throw new NotFoundError("stream", streamId);
    return s;
  }

  async read(streamId: string, cursor: From, limit: number, options?: EventCallOptions): Promise<ReadResult> {
    this.check();
    throwIfAborted(options?.signal);
    const after = streamPositionOf(cursor, streamId);
    checkLimit(limit);
    const s = this.#streamOrThrow(streamId);
    const events = this.#counted(this.log.streamAfter(s, after, limit));
    const last = events[events.length - 1];
    const next = last
      ? new Cursor(streamId, last.position, last.timestamp)
      : new Cursor(
          streamId,
          after,
          typeof cursor === "object" && cursor instanceof Cursor ? cursor.timestamp : undefined,
        );
    return { events, cursor: next };
  }

  async readStream(streamId: string, fromPosition = 0, options?: EventCallOptions): Promise<RecordedEvent[]> {
    this.check();
    throwIfAborted(options?.signal);
    const after = streamPositionOf(fromPosition, streamId, "fromPosition");
    const s = this.#streamOrThrow(streamId);
    return this.#counted(this.log.streamAfter(s, after, Number.MAX_SAFE_INTEGER));
  }

  async readTimeRange(from: Date, to: Date, options?: EventCallOptions): Promise<RecordedEvent[]> {
    this.check();
    throwIfAborted(options?.signal);
    checkDate(from, "from");
    checkDate(to, "to");
    if (to.getTime() < from.getTime()) throw new ValidationError("to", "must not be before from");
    return this.#counted(this.log.timeRange(from.getTime(), to.getTime()));
  }

  replay(from: Date, to: Date, options?: EventCallOptions): AsyncIterable<RecordedEvent> {
    this.check();
    checkDate(from, "from");
    checkDate(to, "to");
    if (to.getTime() < from.getTime()) throw new ValidationError("to", "must not be before from");
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        const events = self.log.timeRange(from.getTime(), to.getTime());
        for (const e of events) {
          if (self.closed || options?.signal?.aborted) return;
          self.#counted([e]);
          yield e;
        }
      },
    };
  }

  subscribe(streamId: string, cursor: From = 0, options?: SubscribeOptions): EventSubscription {
    this.check();
    validateStreamId(streamId);
    const from = streamPositionOf(cursor, streamId);
    const log = this.log;
    return this.#subscribe(
      {
        streamId,
        fetch: (after, limit) => {
          if (this.#failure) throw this.#failure;
          const s = log.streams.get(streamId);
          return s ? log.streamAfter(s, after, limit) : [];
        },
        positionOf: (e) => e.position,
      },
      from,
      options,
    );
  }

  subscribeAll(from: From = 0, options?: SubscribeOptions): EventSubscription {
    this.check();
    const position = globalPositionOf(from);
    const log = this.log;
    return this.#subscribe(
      {
        streamId: undefined,
        fetch: (after, limit) => {
          if (this.#failure) throw this.#failure;
          return log.globalAfter(after, limit);
        },
        positionOf: (e) => e.globalPosition,
      },
      position,
      options,
    );
  }

  #subscribe(
    part: Pick<SubscriptionSource, "streamId" | "fetch" | "positionOf">,
    from: number,
    options: SubscribeOptions | undefined,
  ): Subscription {
    const source: SubscriptionSource = {
      ...part,
      log: this.log,
      isClosed: () => this.closed,
      onEnd: (s) => this.#subscriptions.delete(s),
      onDelivered: (n) => {
        this.#eventsRead += n;
        if (this.metrics.onRead) this.notify("onRead", { store: this.name, count: n });
      },
      onDropped: (position, firstAvailable) =>
        this.notify("onDropped", { store: this.name, streamId: part.streamId, position, firstAvailable }),
    };
    const sub = new Subscription(source, from, options);
    if (!options?.signal?.aborted) this.#subscriptions.add(sub);
    return sub;
  }

  #info(s: StreamState): StreamInfo {
    return {
      streamId: s.id,
      eventCount: s.events.length,
      firstPosition: s.first,
      lastPosition: s.last,
      firstEvent: s.events.at(0)?.timestamp,
      lastEvent: s.events.at(s.events.length - 1)?.timestamp,
    };
  }

  async getStreamInfo(streamId: string): Promise<StreamInfo> {
    this.check();
    return this.#info(this.#streamOrThrow(streamId));
  }

  async getStreams(): Promise<StreamInfo[]> {
    this.check();
    return [...this.log.streams.values()].map((s) => this.#info(s));
  }

  stats(): EventStoreStats {
    return {
      totalEvents: this.log.global.length,
      totalStreams: this.log.streams.size,
      eventsAppended: this.#eventsAppended,
      eventsRead: this.#eventsRead,
      subscriptionsActive: this.#subscriptions.size,
      snapshotsCreated: this.snapshotsCreated,
      eventsExpired: this.#eventsExpired,
      memoryUsageBytes: this.log.bytes,
      globalPosition: this.log.lastGlobal,
    };
  }

  async snapshot(options?: EventCallOptions): Promise<SnapshotInfo> {
    this.check();
    throwIfAborted(options?.signal);
    const started = performance.now();
    const info = await this.takeSnapshot();
    this.snapshotsCreated++;
    this.notify("onSnapshot", {
      store: this.name,
      globalPosition: info.globalPosition,
      bytes: info.bytes,
      durationMs: performance.now() - started,
    });
    return info;
  }

  /**
   * The time of the `clock` option, in ms.
   * @throws ConfigurationError naming the option when the clock returns anything but a valid Date
   */
  protected now(): number {
    const value: unknown = this.clock();
    const ms = value instanceof Date ? value.getTime() : Number.NaN;
    if (Number.isNaN(ms)) {
      const got =
        value instanceof Date ? "an invalid Date" : typeof value === "string" ? JSON.stringify(value) : String(value);
      throw new ConfigurationError(`${this.#owner} option clock must return a valid Date, got ${got}`);
    }
    return ms;
  }

  /** @throws ConfigurationError when the `clock` option returns anything but a valid Date */
  async applyRetention(): Promise<number> {
    this.check();
    if (this.retentionDurationMs <= 0) return 0;
    const removed = this.log.expire(this.now() - this.retentionDurationMs);
    if (removed > 0) {
      this.#eventsExpired += removed;
      this.notify("onRetention", { store: this.name, count: removed });
    }
    // Also when this run removed nothing: what the open or an earlier run dropped may still be in durable storage.
    await this.afterRetention(removed);
    return removed;
  }

  /**
   * For a backend whose storage removed the oldest events before the index
   * read what follows them (a server's own age limit seen late): removes
   * them from the index up to and including `globalPosition`, counted and
   * reported as retention, whatever the store's clock says.
   * @returns how many were removed
   */
  protected expireThrough(globalPosition: number): number {
    const removed = this.log.expireThrough(globalPosition);
    if (removed > 0) {
      this.#eventsExpired += removed;
      this.notify("onRetention", { store: this.name, count: removed });
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.#timers) clearInterval(t);
    for (const s of [...this.#subscriptions]) s.close();
    this.log.wakeAll();
    await Promise.all([...this.#background]);
    await this.release();
    this.log.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
