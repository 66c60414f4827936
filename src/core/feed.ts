/**
 * Change feeds: `store.watch(namespace)` delivers the current state of a
 * namespace, then a caught-up barrier, then every later change, each with
 * its position (docs/concepts.md, "Change feeds"). {@link ChangeFeed} is
 * the one implementation of the iteration; a backend supplies a
 * {@link FeedSource} (read after a cursor, wait for more) and gets the
 * same guarantees as every built-in store.
 */
import type { Change } from "./change.js";
import { AbortError, checkSignal, ValidationError } from "./errors.js";
import { MAX_TIMER_MS } from "./retry.js";
import type { CallOptions } from "./store.js";

/** The kinds of {@link FeedEvent}. */
export const FeedEventType = {
  /** A change, with its position. */
  Change: "change",
  /** The barrier: everything the backend held when the feed started has been delivered. */
  CaughtUp: "caught-up",
} as const;
export type FeedEventType = (typeof FeedEventType)[keyof typeof FeedEventType];

/**
 * Where a feed stands in a namespace. `position` grows with every change
 * of the namespace on its backend (memory: a counter; file: the byte
 * offset just past the change's line; NATS KV: the stream sequence of the
 * namespace's last change delivered; Kafka: the offset just after the
 * change's record, the next one to read). `epoch` names the numbering the
 * position belongs to: it changes only when the backend renumbers (a file
 * compaction replaces the file; a NATS bucket re-created); `""` on
 * backends that never renumber.
 */
export interface FeedCursor {
  readonly position: number;
  readonly epoch: string;
}

/** A change delivered by a feed, with the cursor just after it. */
export interface FeedChange extends FeedCursor {
  readonly type: typeof FeedEventType.Change;
  readonly change: Change;
}

/** The caught-up barrier: delivered once, after the initial part, even for an empty namespace. */
export interface FeedCaughtUp extends FeedCursor {
  readonly type: typeof FeedEventType.CaughtUp;
}

/** What a feed delivers. */
export type FeedEvent = FeedChange | FeedCaughtUp;

/** Options of `Store.watch`. */
export interface WatchOptions extends CallOptions {
  /**
   * Continue after this position (a number, or a cursor such as the last
   * event delivered: its epoch is then checked) instead of starting with
   * the current state. The feed delivers, in position order, at least the
   * latest change of every key changed after it (a backend that keeps one
   * change per key leaves the superseded ones out), then the barrier.
   * @throws FeedBehindError (on iteration) when the backend no longer holds what follows it
   * @default the current state
   */
  from?: number | { readonly position: number; readonly epoch?: string | undefined } | undefined;
  /**
   * How often a backend without push notifications (the file store, for
   * saves of other processes) checks for changes, in milliseconds: from
   * 1 to 2147483647 (what a timer can wait).
   * @default 100
   */
  pollIntervalMs?: number | undefined;
  /**
   * The most changes one read of the backend takes, past the current
   * state: a feed resuming `from` a cursor, or following writers faster
   * than its consumer, reads on in pieces of this many, so it holds at
   * most this many changes read and not yet taken (the initial part of a
   * feed without `from`, the current state, is read whole, as `load` reads
   * it). Fewer, larger reads cost less per change.
   * @default 10000
   */
  batchSize?: number | undefined;
}

/** Defaults of {@link WatchOptions}. */
export const CHANGE_FEED_DEFAULTS = {
  /** @default 100 */
  pollIntervalMs: 100,
  /** @default 10000 */
  batchSize: 10_000,
} as const;

/** The cursor a feed continues after: the normalised `from`. */
export interface FeedStart {
  readonly position: number;
  /** `undefined` when `from` was a bare number (any epoch is accepted then). */
  readonly epoch: string | undefined;
}

/** One read of a {@link FeedSource}. */
export interface FeedBatch {
  /** The changes after the cursor, in position order. */
  readonly items: readonly FeedChange[];
  /** The cursor after them (where the next read starts). */
  readonly cursor: FeedCursor;
  /** The backend's latest position when it was read (for lag). @default cursor.position */
  readonly head?: number | undefined;
  /**
   * The read stopped short of what the backend holds (it took
   * `batchSize` changes): the feed reads on from `cursor` at once, and the
   * pieces count as one read (the initial part's barrier comes after the
   * last of them). @default false
   */
  readonly more?: boolean | undefined;
}

/** What a backend gives {@link ChangeFeed}. */
export interface FeedSource {
  /**
   * The changes after `cursor`, up to what the backend holds now (or the
   * first `batchSize` of them, with {@link FeedBatch.more}); with no
   * cursor, the current state (the latest change of every key, as `load`
   * returns it, tombstones included). A read and the next read must
   * together leave no change out and deliver none twice.
   * @throws FeedBehindError when the backend no longer holds what follows `cursor`
   */
  read(cursor: FeedStart | FeedCursor | undefined, signal: AbortSignal): Promise<FeedBatch>;
  /**
   * Resolves when there may be changes after `cursor` (a notification,
   * or a poll interval passed); also when `signal` aborts.
   */
  wait(cursor: FeedCursor, signal: AbortSignal): Promise<void>;
  /** Releases what the source holds (called once, when the feed ends). */
  close?(): void | Promise<void>;
}

/** Checks `options.from`. @throws ValidationError */
export function feedStart(options: WatchOptions | undefined): FeedStart | undefined {
  const from = options?.from;
  if (from === undefined) return undefined;
  const position = typeof from === "number" ? from : (from as { position?: unknown } | null)?.position;
  const epoch = typeof from === "number" ? undefined : (from as { epoch?: unknown }).epoch;
  if (typeof position !== "number" || !Number.isSafeInteger(position) || position < 0) {
    throw new ValidationError("from", `must be a position (an integer >= 0) or a cursor, got ${JSON.stringify(from)}`);
  }
  if (epoch !== undefined && typeof epoch !== "string") {
    throw new ValidationError("from.epoch", `must be a string, got ${typeof epoch}`);
  }
  return { position, epoch };
}

/** Checks `options.batchSize`. @throws ValidationError */
export function feedBatchSize(options: WatchOptions | undefined): number {
  const size = options?.batchSize ?? CHANGE_FEED_DEFAULTS.batchSize;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 1) {
    throw new ValidationError("batchSize", `must be an integer >= 1, got ${String(size)}`);
  }
  return size;
}

/** Checks `options.pollIntervalMs`. @throws ValidationError */
export function feedPollIntervalMs(options: WatchOptions | undefined): number {
  const ms = options?.pollIntervalMs ?? CHANGE_FEED_DEFAULTS.pollIntervalMs;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 1 || ms > MAX_TIMER_MS) {
    throw new ValidationError(
      "pollIntervalMs",
      `must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${String(ms)}`,
    );
  }
  return ms;
}

/**
 * A live feed of one namespace: iterate it (once) for {@link FeedEvent}s.
 * It ends (the iteration finishes) when `close()` is called, the
 * `signal` aborts or the store closes; it throws `FeedBehindError` when
 * the backend no longer holds what follows its position.
 */
export class ChangeFeed implements AsyncIterable<FeedEvent>, AsyncDisposable {
  /** Resolves with the barrier's cursor once the initial part is delivered; `undefined` if the feed ended first. */
  readonly caughtUp: Promise<FeedCursor | undefined>;
  #resolveCaughtUp!: (cursor: FeedCursor | undefined) => void;
  readonly #controller = new AbortController();
  readonly #source: FeedSource;
  readonly #start: FeedStart | undefined;
  readonly #isClosed: () => boolean;
  readonly #onEnd: ((feed: ChangeFeed) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.close();
  #cursor: FeedCursor | undefined;
  #head: number | undefined;
  #iterating = false;
  #ended = false;
  #reads = 0;
  #reading = false;
  #refreshRequested = false;
  #interruptWait: (() => void) | undefined;
  /** Settles once the source released what it holds (after {@link close}). */
  #released: Promise<void> = Promise.resolve();
  readonly #readListeners = new Set<(cursor: FeedCursor, reads: number) => void>();

  /**
   * @param namespace the namespace watched
   * @param source the backend's reads and waits
   * @param options `from` and `signal` of the `watch` call (checked by {@link feedStart})
   * @param hooks `isClosed`: the store is closed (the feed ends); `onEnd`: told when the feed ends
   */
  constructor(
    readonly namespace: string,
    source: FeedSource,
    options: WatchOptions | undefined,
    hooks: { isClosed?: () => boolean; onEnd?: (feed: ChangeFeed) => void } = {},
  ) {
    checkSignal(options?.signal);
    this.#source = source;
    this.#start = feedStart(options);
    this.#isClosed = hooks.isClosed ?? (() => false);
    this.#onEnd = hooks.onEnd;
    this.#signal = options?.signal;
    this.caughtUp = new Promise((resolve) => {
      this.#resolveCaughtUp = resolve;
    });
    if (this.#signal?.aborted) this.close();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The cursor just after the last event delivered (`undefined` before the first). */
  get cursor(): FeedCursor | undefined {
    return this.#cursor;
  }

  /** The backend's latest position as of the feed's last read (`undefined` before it). */
  get head(): number | undefined {
    return this.#head;
  }

  /** Reads completed and delivered in full (the initial part is the first). */
  get reads(): number {
    return this.#reads;
  }

  /**
   * Makes the feed read again now instead of waiting for a change, and
   * returns the read count at which a read that began after this call has
   * been delivered (see {@link reads}).
   */
  refresh(): number {
    const target = this.#reads + (this.#reading ? 2 : 1);
    this.#refreshRequested = true;
    this.#interruptWait?.();
    return target;
  }

  /**
   * Calls `listener` each time the events of a read have all been taken
   * by the consumer (the feed then stands at the read's end cursor).
   * Returns the function that removes it.
   */
  onRead(listener: (cursor: FeedCursor, reads: number) => void): () => void {
    this.#readListeners.add(listener);
    return () => this.#readListeners.delete(listener);
  }

  /** True once the feed ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Ends the feed: a pending `next()` resolves as done. Idempotent. */
  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.abort(new AbortError("change feed closed"));
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#resolveCaughtUp(undefined);
    this.#released = Promise.resolve()
      .then(() => this.#source.close?.())
      .catch(() => undefined);
    this.#onEnd?.(this);
  }

  /** Ends the feed ({@link close}) and waits until its source released what it holds (a consumer, a descriptor). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#released;
  }

  [Symbol.asyncIterator](): AsyncIterator<FeedEvent> {
    if (this.#iterating) throw new ValidationError("change feed", "can be iterated only once");
    this.#iterating = true;
    const run = this.#run();
    return {
      next: () => run.next(),
      return: async () => {
        this.close();
        await run.return(undefined);
        return { done: true, value: undefined };
      },
    };
  }

  #stopped(): boolean {
    return this.#ended || this.#isClosed();
  }

  /** The source's wait, which {@link refresh} interrupts. */
  async #wait(cursor: FeedCursor, signal: AbortSignal): Promise<void> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#interruptWait = onAbort;
    try {
      await this.#source.wait(cursor, controller.signal);
    } finally {
      this.#interruptWait = undefined;
      signal.removeEventListener("abort", onAbort);
    }
  }

  async *#run(): AsyncGenerator<FeedEvent, void, undefined> {
    const signal = this.#controller.signal;
    let read: FeedStart | FeedCursor | undefined = this.#start;
    let first = true;
    /** The last read was a piece ({@link FeedBatch.more}): read on without waiting. */
    let more = false;
    try {
      for (;;) {
        if (this.#stopped()) return;
        if (!first && !more) {
          if (!this.#refreshRequested) await this.#wait(read as FeedCursor, signal);
          this.#refreshRequested = false;
          if (this.#stopped()) return;
        }
        this.#reading = true;
        let batch: FeedBatch;
        try {
          batch = await this.#source.read(read, signal);
        } catch (error) {
          if (this.#stopped()) return;
          throw error;
        }
        this.#head = batch.head ?? batch.cursor.position;
        for (const item of batch.items) {
          if (this.#stopped()) return;
          this.#cursor = { position: item.position, epoch: item.epoch };
          yield item;
        }
        this.#cursor = batch.cursor;
        read = batch.cursor;
        // A piece of a read: the rest follows at once, and the read counts once it is all delivered.
        more = batch.more === true;
        if (more) continue;
        if (first) {
          first = false;
          if (this.#stopped()) return;
          const barrier: FeedCaughtUp = { type: FeedEventType.CaughtUp, ...batch.cursor };
          this.#resolveCaughtUp(batch.cursor);
          yield barrier;
        }
        this.#reads++;
        this.#reading = false;
        for (const listener of this.#readListeners) listener(batch.cursor, this.#reads);
      }
    } finally {
      this.close();
    }
  }
}

/**
 * Wakes the feeds waiting on a namespace: a backend calls
 * {@link FeedNotifier.notify} after each save, and its {@link FeedSource.wait}
 * uses {@link FeedNotifier.wait} (with a poll interval for changes it is
 * not told about, such as another process's saves).
 */
export class FeedNotifier {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Wakes every feed waiting on `namespace`. */
  notify(namespace: string): void {
    const set = this.#waiting.get(namespace);
    if (!set) return;
    this.#waiting.delete(namespace);
    for (const wake of set) wake();
  }

  /** Resolves on the next `notify(namespace)`, after `timeoutMs` (if given), or when `signal` aborts. */
  wait(namespace: string, signal: AbortSignal, timeoutMs?: number): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let set = this.#waiting.get(namespace);
      if (!set) {
        set = new Set();
        this.#waiting.set(namespace, set);
      }
      const done = (): void => {
        set.delete(done);
        if (set.size === 0 && this.#waiting.get(namespace) === set) this.#waiting.delete(namespace);
        signal.removeEventListener("abort", done);
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      set.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
