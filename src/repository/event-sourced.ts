/**
 * `EventSourcedRepository<State, Event>`: aggregates folded from their
 * events, over any `EventStore` of the package (docs/aggregates.md).
 *
 * - `load` = the newest usable snapshot + the events after it, folded with
 *   `evolve` (after `upcast`); a stream without events is not found.
 * - `save` appends atomically with an expected version; a snapshot, when
 *   due, is written after the append, in the background.
 * - `handle` loads, decides, appends at the loaded version and retries
 *   after a conflict.
 */
import { BehindRetentionError, type EventInput, type RecordedEvent, validateExpectedVersion } from "../events/index.js";
import {
  backoffDelayMs,
  checkRetryPolicy,
  isAbortError,
  isNotFoundError,
  LimitExceededError,
  NotFoundError,
  OpenState,
  sleep,
  throwIfAborted,
  ValidationError,
  VersionConflictError,
  validateName,
} from "../index.js";
import {
  type AggregateEvent,
  type AggregateLoadOptions,
  type AggregateSaveOptions,
  type AggregateSaveResult,
  checkEventSourcedOptions,
  type DecideContext,
  type Decision,
  type EventSourcedRepositoryOptions,
  type HandleOptions,
  type HandleResult,
  type LoadedAggregate,
  type RepositorySettings,
  type SnapshotErrorInfo,
} from "./event-sourced-options.js";
import type { AggregateSnapshot } from "./snapshots.js";

/** What a snapshot at `version` of a stream that does not reach it is reported as. */
function snapshotAhead(version: number, streamId: string): NotFoundError {
  return new NotFoundError(`version ${version} (the snapshot's) of stream`, streamId);
}

interface FoldOptions extends AggregateLoadOptions {
  /** A missing stream is the initial state at version 0 instead of a `NotFoundError`. */
  allowMissing?: boolean;
  /** The event store's reads were brought up to date (`catchUp`) after a snapshot looked ahead of its stream. */
  synced?: boolean;
}

/** Aggregates of one type, stored as the events of one stream each. Open with {@link EventSourcedRepository.open}. */
export class EventSourcedRepository<S, E extends AggregateEvent = AggregateEvent> implements AsyncDisposable {
  readonly #settings: RepositorySettings<S, E>;
  readonly #open = new OpenState("event-sourced repository");
  readonly #pending = new Set<Promise<void>>();
  /** Streams whose snapshot a load is replacing (a write in flight). */
  readonly #replacing = new Set<string>();
  /** The last id and stream id found valid by {@link streamIdOf}. */
  #validId: string | undefined;
  #validStreamId: string | undefined;

  private constructor(settings: RepositorySettings<S, E>) {
    this.#settings = settings;
  }

  /**
   * A repository over `options.eventStore` (nothing is read or written yet).
   * @throws ConfigurationError for an invalid, missing or unknown option
   */
  static async open<S, E extends AggregateEvent>(
    options: EventSourcedRepositoryOptions<S, E>,
  ): Promise<EventSourcedRepository<S, E>> {
    return new EventSourcedRepository(checkEventSourcedOptions(options));
  }

  /** The aggregate type. */
  get aggregateType(): string {
    return this.#settings.aggregateType;
  }

  /** The `snapshotVersion` this repository writes and accepts. */
  get snapshotVersion(): number {
    return this.#settings.snapshotVersion;
  }

  /**
   * The stream of aggregate `id`.
   * @throws InvalidNameError when it is not a valid stream id
   */
  streamIdOf(id: string): string {
    // The last names found valid are not checked again (a load of the same aggregate, over and over, is common).
    if (id !== this.#validId) {
      validateName("id", id, true);
      this.#validId = id;
    }
    const streamId = this.#settings.streamIdOf(id);
    if (streamId !== this.#validStreamId) {
      validateName("streamId", streamId, true);
      this.#validStreamId = streamId;
    }
    return streamId;
  }

  /**
   * The aggregate's state: the newest usable snapshot (at or below
   * `version`) plus the events after it, folded (up to exactly `version`).
   * @throws NotFoundError when the aggregate has no event (or no such version)
   * @throws LimitExceededError (`limit: "maxEvents"`) when the load would fold more than `maxEvents` events; nothing is returned
   * @throws BehindRetentionError when retention removed events the fold needs
   * @throws whatever `evolve` or `upcast` throws; ClosedError | AbortError
   */
  load(id: string, options: AggregateLoadOptions = {}): Promise<LoadedAggregate<S>> {
    // Not `async`: the fold's promise is returned as is (one promise less per load); errors still reject.
    try {
      this.#open.check();
      return this.#fold(id, this.streamIdOf(id), options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The stored events of aggregate `id` after `fromVersion` (as stored, with their metadata; no upcast). `[]` when none. */
  async readEvents(id: string, options: { fromVersion?: number; signal?: AbortSignal } = {}): Promise<RecordedEvent[]> {
    this.#open.check();
    const streamId = this.streamIdOf(id);
    try {
      return await this.#settings.eventStore.readStream(streamId, options.fromVersion ?? 0, options);
    } catch (error) {
      if (isNotFoundError(error)) return [];
      throw error;
    }
  }

  /**
   * Appends `events` to the aggregate's stream atomically (all or none)
   * and returns its new version. A snapshot, when due, is written after
   * the append, in the background: its failure goes to `onSnapshotError`,
   * never to the save.
   * @throws VersionConflictError { expected, actual } when `expectedVersion` does not match (nothing appended)
   * @throws TooLargeError | InvalidValueError | ValidationError for bad events (nothing appended); ClosedError | AbortError
   */
  async save(id: string, events: readonly E[], options: AggregateSaveOptions = {}): Promise<AggregateSaveResult> {
    this.#open.check();
    throwIfAborted(options.signal);
    const streamId = this.streamIdOf(id);
    if (!Array.isArray(events)) throw new ValidationError("events", "must be an array of events");
    // Checked here as the event store checks them: a save without events never reaches it.
    validateExpectedVersion(options.expectedVersion);
    checkMetadataOption(options.metadata);
    if (events.length === 0) return this.#saveNothing(id, streamId, options);
    return this.#append(id, streamId, events, options, undefined);
  }

  /**
   * Runs a command: loads the aggregate (a new one is `initialState()` at
   * version 0), calls `decide(state)` for zero or more events, folds them,
   * and appends them at the loaded version. After a conflict (another
   * writer was first) it reloads and decides again, under the retry policy.
   * A `decide` or `evolve` that throws appends nothing and its error is
   * thrown; an abort appends nothing that was not appended already.
   * @throws the last error when attempts run out, or an error the policy does not retry
   */
  async handle(
    id: string,
    decide: (state: S, context: DecideContext) => Decision<E> | Promise<Decision<E>>,
    options: HandleOptions = {},
  ): Promise<HandleResult<S, E>> {
    this.#open.check();
    checkMetadataOption(options.metadata);
    const policy =
      options.retry === undefined
        ? this.#settings.retry
        : checkRetryPolicy(options.retry, this.#settings.retry, "EventSourcedRepository.handle retry");
    const streamId = this.streamIdOf(id);
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(options.signal);
      const loaded = await this.#fold(id, streamId, {
        allowMissing: true,
        signal: options.signal,
        maxEvents: options.maxEvents,
      });
      const decision = await decide(loaded.state, { id, version: loaded.version, attempt });
      const events: readonly E[] =
        decision === undefined || decision === null ? [] : Array.isArray(decision) ? decision : [decision as E];
      if (events.length === 0) {
        return { id, streamId, state: loaded.state, version: loaded.version, events: [], attempts: attempt };
      }
      let state = loaded.state;
      for (const e of events) state = this.#settings.evolve(state, e);
      throwIfAborted(options.signal);
      try {
        const saved = await this.#append(
          id,
          streamId,
          events,
          {
            expectedVersion: loaded.version,
            createSnapshot: options.createSnapshot,
            metadata: options.metadata,
            signal: options.signal,
          },
          // Not `state`: a snapshot is folded from the events as stored (their ids, timestamps, merged metadata,
          // upcast), as a load folds them, so that it never changes what a load returns.
          undefined,
        );
        return { id, streamId, state, version: saved.version, events, attempts: attempt };
      } catch (error) {
        if (attempt >= policy.maxAttempts || isAbortError(error) || !policy.retryOn(error)) throw error;
        await sleep(backoffDelayMs(policy, attempt), options.signal);
      }
    }
  }

  /** Resolves once every snapshot write started so far has finished (succeeded or reported). */
  async flushSnapshots(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Waits for pending snapshot writes; later calls fail with a `ClosedError`. Never closes the stores it was given. Idempotent. */
  async close(): Promise<void> {
    if (!this.#open.close()) return;
    await this.flushSnapshots();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #saveNothing(id: string, streamId: string, options: AggregateSaveOptions): Promise<AggregateSaveResult> {
    let version = 0;
    let exists = true;
    try {
      version = (await this.#settings.eventStore.getStreamInfo(streamId)).lastPosition;
    } catch (error) {
      if (!isNotFoundError(error)) throw error;
      exists = false;
    }
    const ev = options.expectedVersion ?? "any";
    const ok = ev === "any" || (ev === "no_stream" ? !exists : ev === "stream_exists" ? exists : ev === version);
    if (!ok) {
      throw new VersionConflictError(ev, exists ? version : "no_stream", `stream ${JSON.stringify(streamId)} version`);
    }
    return { id, streamId, version, appended: 0 };
  }

  async #append(
    id: string,
    streamId: string,
    events: readonly E[],
    options: AggregateSaveOptions,
    state: S | undefined,
  ): Promise<AggregateSaveResult> {
    const now = new Date();
    const inputs: EventInput[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as E;
      if (typeof e !== "object" || e === null) throw new ValidationError(`events[${i}]`, "must be an event object");
      const metadata =
        options.metadata === undefined
          ? e.metadata
          : e.metadata === undefined
            ? options.metadata
            : { ...options.metadata, ...e.metadata };
      const eventId = e.id ?? crypto.randomUUID();
      const timestamp = e.timestamp ?? now;
      inputs[i] =
        metadata === undefined
          ? { id: eventId, type: e.type, data: e.data, timestamp }
          : { id: eventId, type: e.type, data: e.data, timestamp, metadata };
    }
    const result = await this.#settings.eventStore.append(streamId, inputs, {
      expectedVersion: options.expectedVersion,
      signal: options.signal,
    });
    const version = result.lastPosition;
    this.#snapshotIfDue(id, streamId, version - inputs.length, version, options.createSnapshot, state);
    return { id, streamId, version, appended: inputs.length };
  }

  #snapshotIfDue(
    id: string,
    streamId: string,
    before: number,
    after: number,
    createSnapshot: boolean | undefined,
    state: S | undefined,
  ): void {
    const { snapshots, snapshotEvery } = this.#settings;
    if (snapshots === undefined || createSnapshot === false || after === 0) return;
    const due =
      createSnapshot === true ||
      (snapshotEvery > 0 && Math.floor(after / snapshotEvery) > Math.floor(before / snapshotEvery));
    if (!due) return;
    this.#writeSnapshot(id, streamId, after, state);
  }

  /**
   * Writes a snapshot of `streamId` at `version` in the background; `state` is folded when not given.
   * Returns the background task (settled when the write finished or was reported), or undefined when none started.
   */
  #writeSnapshot(id: string, streamId: string, version: number, state: S | undefined): Promise<void> | undefined {
    const { snapshots, snapshotVersion } = this.#settings;
    // A save whose append finished after close() began writes no snapshot: its owner may have closed the store.
    if (snapshots === undefined || this.#open.closed) return undefined;
    let copy: S | undefined;
    try {
      copy = state === undefined ? undefined : structuredClone(state);
    } catch (error) {
      this.#report("save", streamId, version, error);
      return undefined;
    }
    const task = (async () => {
      const snapshotState =
        copy ?? (await this.#fold(id, streamId, { version, maxEvents: Number.POSITIVE_INFINITY })).state;
      const snapshot: AggregateSnapshot = {
        streamId,
        version,
        snapshotVersion,
        state: snapshotState,
        createdAt: new Date(),
      };
      await snapshots.save(snapshot);
    })().catch((error: unknown) => this.#report("save", streamId, version, error));
    this.#pending.add(task);
    void task.finally(() => this.#pending.delete(task));
    return task;
  }

  /**
   * A snapshot at `from` found ahead of its stream: reported, and the
   * stream's snapshots deleted in the background (they describe events the
   * stream no longer has; a stream that grows back past `from` with other
   * events must not use them). A failed delete is reported.
   */
  #snapshotAhead(streamId: string, target: number | undefined, from: number): void {
    this.#report("load", streamId, target, snapshotAhead(from, streamId));
    const { snapshots } = this.#settings;
    if (snapshots === undefined || this.#open.closed) return;
    const task = snapshots.delete(streamId).then(
      () => undefined,
      (error: unknown) => this.#report("delete", streamId, from, error),
    );
    this.#pending.add(task);
    void task.finally(() => this.#pending.delete(task));
  }

  #report(
    operation: SnapshotErrorInfo["operation"],
    streamId: string,
    version: number | undefined,
    error: unknown,
  ): void {
    try {
      this.#settings.onSnapshotError({
        operation,
        aggregateType: this.#settings.aggregateType,
        streamId,
        version,
        error,
      });
    } catch {
      // An observer that throws must not break a save or a load.
    }
  }

  /** Folds aggregate `id` (of stream `streamId`, already checked). */
  async #fold(id: string, streamId: string, options: FoldOptions): Promise<LoadedAggregate<S>> {
    this.#open.check();
    throwIfAborted(options.signal);
    const settings = this.#settings;
    const { eventStore, evolve, upcast } = settings;
    const target = options.version;
    if (target !== undefined && (!Number.isSafeInteger(target) || target < 1)) {
      throw new ValidationError("version", `must be an integer >= 1, got ${String(target)}`);
    }
    const maxEvents = options.maxEvents ?? settings.maxEvents;
    if (maxEvents !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(maxEvents) || maxEvents < 1)) {
      throw new ValidationError("maxEvents", `must be an integer >= 1 (or Infinity), got ${String(maxEvents)}`);
    }
    const consulted = settings.snapshots !== undefined && options.useSnapshot !== false;
    let snapshot: AggregateSnapshot | undefined;
    if (consulted) {
      try {
        snapshot = await settings.snapshots?.load(streamId, {
          maxVersion: target,
          snapshotVersion: settings.snapshotVersion,
          signal: options.signal,
        });
      } catch (error) {
        if (isAbortError(error)) throw error;
        this.#report("load", streamId, target, error);
      }
    }
    const from = snapshot?.version ?? 0;
    if (target !== undefined && target - from > maxEvents) {
      // Past the limit: unless the version does not exist (a NotFoundError, as without the limit).
      const info = await eventStore.getStreamInfo(streamId).catch((error: unknown) => {
        if (isNotFoundError(error)) return undefined;
        throw error;
      });
      if (info === undefined) {
        if (options.allowMissing) return this.#initial(id, streamId);
        throw new NotFoundError(`${settings.aggregateType} aggregate`, id);
      }
      if (info.lastPosition < target) {
        throw new NotFoundError(`version ${target} of ${settings.aggregateType} aggregate`, id);
      }
      throw this.#tooMany(id, from, maxEvents, target - from);
    }
    let events: readonly RecordedEvent[];
    try {
      if (target !== undefined) {
        events = target === from ? [] : (await eventStore.read(streamId, from, target - from, options)).events;
      } else if (maxEvents !== Number.POSITIVE_INFINITY) {
        events = (await eventStore.read(streamId, from, maxEvents + 1, options)).events;
      } else {
        events = await eventStore.readStream(streamId, from, options);
      }
    } catch (error) {
      if (!isNotFoundError(error)) throw error;
      if (from > 0) {
        // Perhaps only not seen yet: another process created the stream and wrote the snapshot.
        if (await this.#caughtUp(options)) return this.#fold(id, streamId, { ...options, synced: true });
        // A snapshot of a stream that does not exist (an event store made anew): not used, reported, removed.
        this.#snapshotAhead(streamId, target, from);
      }
      if (options.allowMissing) return this.#initial(id, streamId);
      throw new NotFoundError(`${settings.aggregateType} aggregate`, id);
    }
    const count = events.length;
    if (target === undefined && count > maxEvents) throw this.#tooMany(id, from, maxEvents, undefined);
    const first = events[0];
    if (first !== undefined && first.position !== from + 1) {
      throw new BehindRetentionError(streamId, from, first.position);
    }
    if (first === undefined && from > 0) {
      // Nothing after the snapshot: the stream must reach it. A snapshot ahead of its stream (an event store that
      // lost its last events, or was made anew, next to a durable snapshot store) is not used: reported and
      // removed, and the load replays the stream from its start.
      const info = await eventStore.getStreamInfo(streamId).catch((error: unknown) => {
        if (isNotFoundError(error)) return undefined;
        throw error;
      });
      if (info === undefined || info.lastPosition < from) {
        // Perhaps only not seen yet: another process appended the events and wrote the snapshot.
        if (await this.#caughtUp(options)) return this.#fold(id, streamId, { ...options, synced: true });
        this.#snapshotAhead(streamId, target, from);
        return this.#fold(id, streamId, { ...options, useSnapshot: false });
      }
    }
    if (first === undefined && from === 0) {
      const info = await eventStore.getStreamInfo(streamId).catch(() => undefined);
      if (info !== undefined && info.lastPosition > 0) throw new BehindRetentionError(streamId, 0, info.firstPosition);
      if (options.allowMissing) return this.#initial(id, streamId);
      throw new NotFoundError(`${settings.aggregateType} aggregate`, id);
    }
    if (target !== undefined && from + count < target) {
      throw new NotFoundError(`version ${target} of ${settings.aggregateType} aggregate`, id);
    }
    let state = snapshot === undefined ? settings.initialState() : (snapshot.state as S);
    if (upcast === undefined) {
      for (let i = 0; i < count; i++) state = evolve(state, events[i] as unknown as E);
    } else {
      for (let i = 0; i < count; i++) state = evolve(state, upcast(events[i] as RecordedEvent));
    }
    const version = from + count;
    const { snapshotEvery } = settings;
    if (consulted && target === undefined && snapshotEvery > 0 && count >= snapshotEvery && !this.#open.closed) {
      // Many events past the newest usable snapshot (none written, a stale one, a failed write): replace it,
      // once (loads while that write is in flight do not start another one).
      if (!this.#replacing.has(streamId)) {
        this.#replacing.add(streamId);
        const task = this.#writeSnapshot(id, streamId, version, state);
        if (task === undefined) this.#replacing.delete(streamId);
        else void task.finally(() => this.#replacing.delete(streamId));
      }
    }
    return { id, streamId, state, version, snapshotVersionAt: from, eventsFolded: count };
  }

  /**
   * Before a snapshot is taken for ahead of its stream: brings the event
   * store's reads up to every append stored so far, once per load, when its
   * reads may lag other processes' appends (`catchUp`). True when it did (the
   * load then starts again).
   */
  async #caughtUp(options: FoldOptions): Promise<boolean> {
    const { eventStore } = this.#settings;
    if (options.synced || eventStore.catchUp === undefined) return false;
    await eventStore.catchUp({ signal: options.signal });
    return true;
  }

  #initial(id: string, streamId: string): LoadedAggregate<S> {
    return { id, streamId, state: this.#settings.initialState(), version: 0, snapshotVersionAt: 0, eventsFolded: 0 };
  }

  #tooMany(id: string, from: number, maxEvents: number, count: number | undefined): LimitExceededError {
    return new LimitExceededError(
      "maxEvents",
      maxEvents,
      `loading ${this.#settings.aggregateType} ${JSON.stringify(id)} would fold ${count === undefined ? `more than ${maxEvents}` : count} events after ${from === 0 ? "the start" : `the snapshot at version ${from}`}, more than maxEvents = ${maxEvents}: nothing was returned (take snapshots, or raise maxEvents)`,
    );
  }
}

/**
 * Checks the `metadata` option of a save or a command: a plain object (it
 * is merged into each event's metadata), or undefined.
 * @throws ValidationError
 */
function checkMetadataOption(metadata: unknown): void {
  if (metadata === undefined) return;
  const proto = typeof metadata === "object" && metadata !== null ? Object.getPrototypeOf(metadata) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    const got = Array.isArray(metadata) ? "an array" : proto === undefined ? typeof metadata : "an object of a class";
    throw new ValidationError("metadata", `must be a plain object, got ${got}`);
  }
}
