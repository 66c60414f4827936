/**
 * The machinery every event store shares: validation, reads, time ranges,
 * replay, subscriptions, stats, metrics, retention and snapshot timers,
 * close. A backend supplies how a batch is stored (`store`) and how a
 * snapshot is taken (`takeSnapshot`).
 */
import { ClosedError, NotFoundError, throwIfAborted, ValidationError } from "../core/errors.js";
import { type AppendRequest, EventLog, type Limits, type PlannedAppend, type StreamState } from "./log.js";
import { Subscription, type SubscriptionSource } from "./subscription.js";
import {
  type AppendOptions,
  type AppendResult,
  Cursor,
  EVENT_STORE_DEFAULTS,
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
import { checkDate, checkLimit, positionOf, prepareEvents, validateStreamId } from "./validate.js";

function checkMs(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(field, `must be a number of milliseconds >= 0, got ${String(value)}`);
  }
  return value;
}

function checkCount(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(field, `must be an integer >= 0 (0 = unlimited), got ${String(value)}`);
  }
  return value;
}

/** Base class of the memory and file event stores. */
export abstract class BaseEventStore implements EventStore {
  abstract readonly capabilities: EventStoreCapabilities;
  readonly name: string;
  protected readonly log = new EventLog();
  protected readonly limits: Limits;
  protected readonly retentionDuration: number;
  protected readonly snapshotInterval: number;
  protected readonly maxValueBytes: number;
  protected readonly clock: () => Date;
  protected readonly metrics: EventStoreMetrics;
  protected closed = false;
  #eventsAppended = 0;
  #eventsRead = 0;
  #eventsExpired = 0;
  protected snapshotsCreated = 0;
  readonly #subscriptions = new Set<Subscription>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #background = new Set<Promise<unknown>>();

  constructor(config: EventStoreOptions, defaultName: string) {
    this.name = config.name ?? defaultName;
    this.limits = {
      maxEventsPerStream: checkCount(
        config.maxEventsPerStream ?? EVENT_STORE_DEFAULTS.maxEventsPerStream,
        "maxEventsPerStream",
      ),
      maxStreams: checkCount(config.maxStreams ?? EVENT_STORE_DEFAULTS.maxStreams, "maxStreams"),
    };
    this.retentionDuration = checkMs(
      config.retentionDurationMs ?? EVENT_STORE_DEFAULTS.retentionDurationMs,
      "retentionDurationMs",
    );
    this.snapshotInterval = checkMs(
      config.snapshotIntervalMs ?? EVENT_STORE_DEFAULTS.snapshotIntervalMs,
      "snapshotIntervalMs",
    );
    this.maxValueBytes = checkCount(config.maxValueBytes ?? EVENT_STORE_DEFAULTS.maxValueBytes, "maxValueBytes");
    this.clock = config.clock ?? (() => new Date());
    this.metrics = config.metrics ?? {};
  }

  /** Starts the retention and snapshot timers (called by subclasses once open). */
  protected startTimers(snapshots: boolean): void {
    if (this.retentionDuration > 0) {
      // The seed's cadence: ten times per retention period (at least every second, at most every minute).
      const every = Math.min(60_000, Math.max(1_000, this.retentionDuration / 10));
      this.#timers.push(
        setInterval(() => this.runInBackground("retention", () => this.applyRetention()), every).unref(),
      );
    }
    if (snapshots && this.snapshotInterval > 0) {
      this.#timers.push(
        setInterval(() => this.runInBackground("snapshot", () => this.snapshot()), this.snapshotInterval).unref(),
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

  protected check(): void {
    if (this.closed) throw new ClosedError(`event store ${JSON.stringify(this.name)}`);
  }

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
  /** Removes expired data from durable storage after the index dropped it. */
  protected async afterRetention(_removed: number): Promise<void> {}
  /** Releases backend resources after pending work finished. */
  protected async release(): Promise<void> {}

  async append(streamId: string, events: readonly EventInput[], options?: AppendOptions): Promise<AppendResult> {
    this.check();
    throwIfAborted(options?.signal);
    validateStreamId(streamId);
    const ev = options?.expectedVersion;
    if (ev !== undefined && typeof ev === "number" && (!Number.isSafeInteger(ev) || ev < 0)) {
      throw new ValidationError(
        "expectedVersion",
        `must be an integer >= 0, "any", "no_stream" or "stream_exists", got ${ev}`,
      );
    }
    if (ev !== undefined && typeof ev !== "number" && !["any", "no_stream", "stream_exists"].includes(ev)) {
      throw new ValidationError(
        "expectedVersion",
        `must be an integer >= 0, "any", "no_stream" or "stream_exists", got ${JSON.stringify(ev)}`,
      );
    }
    const prepared = prepareEvents(events, this.maxValueBytes);
    const started = this.metrics.onAppend ? performance.now() : 0;
    const planned = await this.store({ streamId, events: prepared, expectedVersion: ev });
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

  /** Plans and commits one request synchronously (no durable write). */
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
    const after = positionOf(cursor);
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
    const after = positionOf(fromPosition, "fromPosition");
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
    const from = positionOf(cursor);
    const log = this.log;
    return this.#subscribe(
      {
        streamId,
        fetch: (after, limit) => {
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
    const position = positionOf(from, "from");
    const log = this.log;
    return this.#subscribe(
      {
        streamId: undefined,
        fetch: (after, limit) => log.globalAfter(after, limit),
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
    const sub = new Subscription(source, from, options?.bufferSize, options?.signal);
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

  async applyRetention(): Promise<number> {
    this.check();
    if (this.retentionDuration <= 0) return 0;
    const removed = this.log.expire(this.clock().getTime() - this.retentionDuration);
    if (removed > 0) {
      this.#eventsExpired += removed;
      this.notify("onRetention", { store: this.name, count: removed });
      await this.afterRetention(removed);
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
