/**
 * `EventLog`: the in-memory index shared by every event store, public for
 * backend authors — streams, the global sequence, limits and expected
 * versions, retention and wake-ups of subscribers. It holds committed
 * events only: a durable backend plans a batch here
 * ({@link EventLog.plan}), persists the planned records, then commits them
 * ({@link EventLog.commit}); on open it rebuilds the index from storage
 * with `commit`, `restoreStream`, `globalFirst` and `lastGlobal`.
 */
import { LimitExceededError, VersionConflictError } from "../index.js";
import { BehindRetentionError } from "./errors.js";
import { ExpectedVersion, type RecordedEvent } from "./types.js";
import type { PreparedEvent } from "./validate.js";

/** An array with cheap removal at the front (the events of a {@link StreamState} and of the global sequence). */
export class Deque<T> {
  #items: T[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  at(i: number): T | undefined {
    return this.#items[this.#head + i];
  }
  push(item: T): void {
    this.#items.push(item);
  }
  slice(from: number, to: number): T[] {
    return this.#items.slice(this.#head + from, this.#head + to);
  }
  /** Removes the first `n` items (all of them when `n` is more). */
  dropFront(n: number): void {
    this.#head += Math.min(n, this.length);
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }
}

/** One stream of the index, as `log.streams.get(streamId)` returns it. */
export interface StreamState {
  readonly id: string;
  readonly events: Deque<RecordedEvent>;
  /** Position of the oldest stored event; `last + 1` when none is stored. */
  first: number;
  /** Position of the last event ever appended. */
  last: number;
}

/**
 * One append, validated by `BaseEventStore.append` and handed to the
 * backend's `store(request)`: the stream, the prepared events and the
 * expected version to check against the stored state.
 */
export interface AppendRequest {
  readonly streamId: string;
  readonly events: readonly PreparedEvent[];
  readonly expectedVersion: ExpectedVersion | undefined;
  /**
   * The append's `signal`: a backend may end with it what stores nothing
   * (a read before a write, a wait before a retry); a write it has sent
   * must still settle whatever the signal.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The outcome of planning one {@link AppendRequest}: the records to store
 * (with their positions and estimated sizes), or the error that refuses it
 * (a `VersionConflictError` or `LimitExceededError`). A backend's `store`
 * returns it after committing the records; `BaseEventStore.append` throws
 * `error` when `ok` is false.
 */
export type PlannedAppend =
  | { readonly ok: true; readonly records: RecordedEvent[]; readonly sizes: number[]; readonly request: AppendRequest }
  | { readonly ok: false; readonly error: Error; readonly request: AppendRequest };

/** Limits checked by {@link EventLog.plan} (`BaseEventStore.limits`; 0 = unlimited). */
export interface Limits {
  readonly maxEventsPerStream: number;
  readonly maxStreams: number;
}

/** The index of committed events (`BaseEventStore.log`). */
/** How many sizes `log` holds (see {@link sizesHeld}); set by {@link EventLog}'s static block. */
let countSizes: (log: EventLog) => number;

/**
 * How many sizes `log` holds for `sizeAt`: one per stored event committed
 * with sizes, none for a backend that keeps its own. Internal (not
 * exported by the package): for tests of backends.
 */
export function sizesHeld(log: EventLog): number {
  return countSizes(log);
}

export class EventLog {
  static {
    countSizes = (log) => log.#sizes.length;
  }
  readonly streams = new Map<string, StreamState>();
  readonly global = new Deque<RecordedEvent>();
  readonly #sizes = new Deque<number>();
  /** Global position of `global.at(0)`. */
  globalFirst = 1;
  /** Last global position ever assigned. */
  lastGlobal = 0;
  /** Estimated bytes of the stored events. */
  bytes = 0;
  /** True while every event's timestamp is >= the previous one's (time ranges need no sort). */
  monotonic = true;
  #maxTs = Number.NEGATIVE_INFINITY;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #allWaiters = new Set<() => void>();

  /**
   * Checks expected versions and limits for a group of requests, in order,
   * as if each earlier successful one was already stored, and assigns
   * positions. Changes nothing.
   */
  plan(requests: readonly AppendRequest[], limits: Limits): PlannedAppend[] {
    const overlay = new Map<string, { last: number; count: number; exists: boolean }>();
    let newStreams = 0;
    let nextGlobal = this.lastGlobal + 1;
    const out: PlannedAppend[] = [];
    for (const request of requests) {
      const { streamId, events } = request;
      let s = overlay.get(streamId);
      if (!s) {
        const st = this.streams.get(streamId);
        s = st ? { last: st.last, count: st.events.length, exists: true } : { last: 0, count: 0, exists: false };
      }
      const error = this.#check(s, request, limits, newStreams);
      if (error) {
        out.push({ ok: false, error, request });
        continue;
      }
      const records: RecordedEvent[] = new Array(events.length);
      const sizes: number[] = new Array(events.length);
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as PreparedEvent;
        const r: RecordedEvent =
          e.metadata === undefined
            ? {
                id: e.id,
                type: e.type,
                data: e.data,
                timestamp: e.timestamp,
                streamId,
                position: s.last + 1 + i,
                globalPosition: nextGlobal + i,
              }
            : {
                id: e.id,
                type: e.type,
                data: e.data,
                timestamp: e.timestamp,
                metadata: e.metadata,
                streamId,
                position: s.last + 1 + i,
                globalPosition: nextGlobal + i,
              };
        records[i] = Object.freeze(r);
        sizes[i] = e.size;
      }
      if (events.length > 0) {
        if (!s.exists) newStreams++;
        s = { last: s.last + events.length, count: s.count + events.length, exists: true };
        nextGlobal += events.length;
      }
      overlay.set(streamId, s);
      out.push({ ok: true, records, sizes, request });
    }
    return out;
  }

  #check(
    s: { last: number; count: number; exists: boolean },
    request: AppendRequest,
    limits: Limits,
    newStreams: number,
  ): Error | undefined {
    const { streamId, events, expectedVersion: ev } = request;
    if (ev !== undefined && ev !== ExpectedVersion.Any) {
      const actual = s.exists ? s.last : ExpectedVersion.NoStream;
      const ok =
        ev === ExpectedVersion.NoStream ? !s.exists : ev === ExpectedVersion.StreamExists ? s.exists : ev === s.last;
      if (!ok) return new VersionConflictError(ev, actual, `stream ${JSON.stringify(streamId)} version`);
    }
    if (events.length === 0) return undefined;
    const maxEvents = limits.maxEventsPerStream;
    if (maxEvents > 0 && s.count + events.length > maxEvents) {
      return new LimitExceededError(
        "maxEventsPerStream",
        maxEvents,
        `stream ${JSON.stringify(streamId)} holds ${s.count} events; appending ${events.length} would cross maxEventsPerStream = ${maxEvents} (nothing was appended; raise the limit or use retention)`,
      );
    }
    if (!s.exists && limits.maxStreams > 0 && this.streams.size + newStreams + 1 > limits.maxStreams) {
      return new LimitExceededError(
        "maxStreams",
        limits.maxStreams,
        `creating stream ${JSON.stringify(streamId)} would cross maxStreams = ${limits.maxStreams} (nothing was appended)`,
      );
    }
    return undefined;
  }

  /** Drops every event and stream (on close: the memory goes back to the process). */
  clear(): void {
    this.streams.clear();
    this.global.dropFront(this.global.length);
    this.#sizes.dropFront(this.#sizes.length);
    this.bytes = 0;
  }

  /** Estimated size of the `i`-th stored event (0 = oldest). */
  sizeAt(i: number): number {
    return this.#sizes.at(i) ?? 0;
  }

  /**
   * Stores planned records (in global order) and wakes subscribers.
   * `sizes` (a `PlannedAppend`'s) are what `bytes` and {@link sizeAt}
   * count; a backend that keeps the sizes of its events itself (it
   * overrides `sizeAt` and keeps `bytes`) passes none, and the index then
   * holds nothing per event for them.
   */
  commit(records: readonly RecordedEvent[], sizes?: readonly number[]): void {
    if (records.length === 0) return;
    const streamId = (records[0] as RecordedEvent).streamId;
    let stream = this.streams.get(streamId);
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as RecordedEvent;
      if (r.streamId !== (stream?.id ?? streamId) || !stream) stream = this.#stream(r.streamId);
      stream.events.push(r);
      stream.last = r.position;
      this.global.push(r);
      if (sizes !== undefined) {
        const size = sizes[i] ?? 0;
        this.#sizes.push(size);
        this.bytes += size;
      }
      const ts = r.timestamp.getTime();
      if (ts < this.#maxTs) this.monotonic = false;
      else this.#maxTs = ts;
    }
    this.lastGlobal = (records[records.length - 1] as RecordedEvent).globalPosition;
    this.#wake(records);
  }

  #stream(id: string): StreamState {
    let s = this.streams.get(id);
    if (!s) {
      s = { id, events: new Deque(), first: 1, last: 0 };
      this.streams.set(id, s);
    }
    return s;
  }

  /** Registers a stream known from a snapshot whose events may all be gone. */
  restoreStream(id: string, first: number, last: number): void {
    const s = this.#stream(id);
    s.first = first;
    s.last = last;
  }

  #wake(records: readonly RecordedEvent[]): void {
    if (this.#allWaiters.size > 0) {
      const all = [...this.#allWaiters];
      this.#allWaiters.clear();
      for (const w of all) w();
    }
    if (this.#waiters.size === 0) return;
    let prev: string | undefined;
    for (const r of records) {
      if (r.streamId === prev) continue;
      prev = r.streamId;
      const set = this.#waiters.get(r.streamId);
      if (!set) continue;
      this.#waiters.delete(r.streamId);
      for (const w of set) w();
    }
  }

  /** Calls `wake` once on the next commit to `streamId` (or to any stream when undefined). Returns a canceller. */
  onNext(streamId: string | undefined, wake: () => void): () => void {
    if (streamId === undefined) {
      this.#allWaiters.add(wake);
      return () => this.#allWaiters.delete(wake);
    }
    let set = this.#waiters.get(streamId);
    if (!set) {
      set = new Set();
      this.#waiters.set(streamId, set);
    }
    set.add(wake);
    return () => {
      set.delete(wake);
      // A stream nobody waits for any more leaves no entry (subscriptions to quiet streams would add up).
      if (set.size === 0 && this.#waiters.get(streamId) === set) this.#waiters.delete(streamId);
    };
  }

  /** Wakes every waiter (on close). */
  wakeAll(): void {
    const all = [...this.#allWaiters, ...[...this.#waiters.values()].flatMap((s) => [...s])];
    this.#allWaiters.clear();
    this.#waiters.clear();
    for (const w of all) w();
  }

  /**
   * Up to `limit` events of `stream` after position `after`. `after = 0`
   * starts at the oldest stored event; a later position whose successors
   * were removed by retention throws.
   * @throws BehindRetentionError
   */
  streamAfter(stream: StreamState, after: number, limit: number): RecordedEvent[] {
    let start = after;
    if (start < stream.first - 1) {
      if (start !== 0) throw new BehindRetentionError(stream.id, after, stream.first);
      start = stream.first - 1;
    }
    const idx = start + 1 - stream.first;
    if (idx >= stream.events.length) return [];
    return stream.events.slice(idx, Math.min(stream.events.length, idx + limit));
  }

  /**
   * Where a reader from position 0 of `streamId` (of the global sequence
   * when undefined) starts: the position just before the oldest stored
   * event, the last position ever assigned when retention removed them all.
   */
  startOf(streamId: string | undefined): number {
    if (streamId === undefined) return this.globalFirst - 1;
    const s = this.streams.get(streamId);
    return s === undefined ? 0 : s.first - 1;
  }

  /** Like {@link streamAfter} for the global sequence. @throws BehindRetentionError */
  globalAfter(after: number, limit: number): RecordedEvent[] {
    let start = after;
    if (start < this.globalFirst - 1) {
      if (start !== 0) throw new BehindRetentionError(undefined, after, this.globalFirst);
      start = this.globalFirst - 1;
    }
    const idx = start + 1 - this.globalFirst;
    if (idx >= this.global.length) return [];
    return this.global.slice(idx, Math.min(this.global.length, idx + limit));
  }

  /** Events with `from <= timestamp <= to` (ms), by timestamp then global position. */
  timeRange(from: number, to: number): RecordedEvent[] {
    const out: RecordedEvent[] = [];
    for (const r of this.global) {
      const t = r.timestamp.getTime();
      if (t >= from && t <= to) out.push(r);
      else if (this.monotonic && t > to) break;
    }
    // Array.prototype.sort is stable: equal timestamps keep global order.
    if (!this.monotonic) out.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
    return out;
  }

  /**
   * Removes the oldest events, in global order, while their timestamp is
   * before `cutoff` (ms). Stops at the first newer event, so what stays is
   * always a suffix of every stream and of the global sequence.
   * @returns how many were removed
   */
  expire(cutoff: number): number {
    return this.#expireWhile((r) => r.timestamp.getTime() < cutoff);
  }

  /**
   * Removes the oldest events, in global order, up to and including global
   * position `through`, as retention does: for a store whose storage
   * removed them already, whatever their timestamps say.
   * @returns how many were removed
   */
  expireThrough(through: number): number {
    return this.#expireWhile((r) => r.globalPosition <= through);
  }

  #expireWhile(old: (r: RecordedEvent) => boolean): number {
    let n = 0;
    while (this.global.length > n) {
      const r = this.global.at(n) as RecordedEvent;
      if (!old(r)) break;
      const s = this.streams.get(r.streamId) as StreamState;
      s.events.dropFront(1);
      s.first = r.position + 1;
      this.bytes -= this.#sizes.at(n) ?? 0;
      n++;
    }
    if (n === 0) return 0;
    this.global.dropFront(n);
    this.#sizes.dropFront(n);
    this.globalFirst += n;
    return n;
  }
}
