/**
 * The follower: a namespace's state kept current in repositories from the
 * store's change feed, so that the replicas of a service share one state
 * (docs/concepts.md, "Change feeds"). Start one with `manager.follow`.
 */
import { applyChanges, type EntityRepositoryRegistration } from "./apply.js";
import { type Change, changeKey } from "./change.js";
import { AbortError, ClosedError, throwIfAborted, UnsupportedError, ValidationError } from "./errors.js";
import { type ChangeFeed, type FeedCursor, feedBatchSize, type WatchOptions } from "./feed.js";
import type { Store } from "./store.js";

/** Options of `Manager.follow`. */
export interface FollowOptions extends WatchOptions {}

/** Options of {@link Follower.waitFor}. */
export interface WaitForOptions {
  /** Aborts the wait (an `AbortError`); the follower goes on. */
  signal?: AbortSignal | undefined;
}

interface Waiter {
  readonly target: { readonly position: number; readonly epoch: string | undefined };
  /** For a cursor of another numbering: the feed's read count at which a read that began after the call has ended. */
  readonly afterReads: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Keeps the repositories of a {@link Manager} current with one namespace:
 * the feed's initial part is applied first (`Manager.follow` resolves
 * then: the current state at once; following `from` a cursor, the changes
 * after it `batchSize` at a time), every later change as it arrives.
 * `position` is what has been applied, `lag` how far the store was ahead
 * at the last read, and `waitFor(position)` gives read-your-writes.
 */
export class Follower implements AsyncDisposable {
  /** Settles when the follower stops: resolves on `close()`, rejects with the error that stopped it (e.g. `FeedBehindError`, `ApplyError`). */
  readonly done: Promise<void>;
  readonly #feed: ChangeFeed;
  readonly #registry: ReadonlyMap<string, EntityRepositoryRegistration>;
  #applied: FeedCursor | undefined;
  readonly #pastEpochs = new Set<string>();
  #waiters: Waiter[] = [];
  #error: unknown;
  #stopped = false;
  #applyCount = 0;
  /** The signal `follow` was given (its abort ends the feed). */
  readonly #signal: AbortSignal | undefined;
  /** Changes of the initial part applied together, at most (all of a current state; `batchSize` after a cursor). */
  readonly #initialBatch: number;

  private constructor(
    readonly namespace: string,
    feed: ChangeFeed,
    registry: ReadonlyMap<string, EntityRepositoryRegistration>,
    ready: { resolve: () => void; reject: (e: unknown) => void },
    signal: AbortSignal | undefined,
    initialBatch: number,
  ) {
    this.#feed = feed;
    this.#signal = signal;
    this.#initialBatch = initialBatch;
    this.#registry = registry;
    feed.onRead((cursor) => this.#advance(cursor));
    this.done = this.#run(ready);
    this.done.catch(() => undefined);
  }

  /**
   * @internal use `Manager.follow`
   * @throws UnsupportedError when the store cannot watch
   */
  static async start(
    store: Store,
    registry: ReadonlyMap<string, EntityRepositoryRegistration>,
    namespace: string,
    options?: FollowOptions,
  ): Promise<Follower> {
    if (!store.capabilities.watch || !store.watch) {
      throw new UnsupportedError("this store cannot watch (capabilities.watch is false): nothing to follow");
    }
    throwIfAborted(options?.signal);
    const feed = store.watch(namespace, options);
    let ready!: { resolve: () => void; reject: (e: unknown) => void };
    const initial = new Promise<void>((resolve, reject) => {
      ready = { resolve, reject };
    });
    // After a cursor the initial part is a backlog of any length: applied as the feed reads it, it is never held
    // whole. A current state is applied at once (it is the state the repositories take).
    const initialBatch = options?.from === undefined ? Number.POSITIVE_INFINITY : feedBatchSize(options);
    const follower = new Follower(namespace, feed, registry, ready, options?.signal, initialBatch);
    await initial;
    return follower;
  }

  /** The cursor after the last change applied (`undefined` before any). */
  get position(): FeedCursor | undefined {
    return this.#applied;
  }

  /** Changes applied since the follower started (the initial state included). */
  get applied(): number {
    return this.#applyCount;
  }

  /** How far the store was ahead of what is applied, as of the feed's last read, in the backend's position units. */
  get lag(): number {
    const head = this.#feed.head;
    const at = this.#applied;
    if (head === undefined || at === undefined || at.epoch !== this.#feed.cursor?.epoch) return 0;
    return Math.max(0, head - at.position);
  }

  /** True until the follower stops (closed, or an error). */
  get running(): boolean {
    return !this.#stopped;
  }

  /**
   * Resolves once the changes up to `position` are applied: a number (of
   * the current numbering) or a cursor (of any numbering the follower
   * went through), e.g. the barrier of another process's feed after its save.
   * @throws the error that stopped the follower | ClosedError | AbortError
   */
  waitFor(
    position: number | { readonly position: number; readonly epoch?: string },
    options?: WaitForOptions,
  ): Promise<void> {
    const target =
      typeof position === "number"
        ? { position, epoch: undefined }
        : { position: position.position, epoch: position.epoch };
    if (!Number.isSafeInteger(target.position) || target.position < 0) {
      return Promise.reject(new ValidationError("position", `must be an integer >= 0, got ${String(target.position)}`));
    }
    const at = this.#applied;
    const foreign = target.epoch !== undefined && at !== undefined && target.epoch !== at.epoch;
    const afterReads = foreign ? this.#feed.refresh() : Number.POSITIVE_INFINITY;
    if (this.#reached(target, afterReads)) return Promise.resolve();
    if (this.#stopped) return Promise.reject(this.#error ?? new ClosedError("follower"));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new AbortError(signal?.reason));
      };
      const waiter: Waiter = {
        target,
        afterReads,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Stops following (the repositories keep what was applied). Idempotent. */
  async close(): Promise<void> {
    this.#feed.close();
    await this.done.catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Whether the changes up to `target` are applied. A cursor of another
   * numbering (a file replaced by compaction) is reached once the follower
   * went through it, or once a read that began after the wait started
   * ended on another numbering: the numbering read then was the current
   * one, so the target's came before it, and a new numbering holds all of
   * the one it replaced.
   */
  #reached(target: Waiter["target"], afterReads: number): boolean {
    const at = this.#applied;
    if (target.epoch !== undefined && this.#pastEpochs.has(target.epoch)) return true;
    if (!at) return false;
    if (target.epoch !== undefined && target.epoch !== at.epoch) {
      return this.#feed.reads >= afterReads && this.#feed.cursor?.epoch === at.epoch;
    }
    return at.position >= target.position;
  }

  #advance(cursor: FeedCursor): void {
    if (this.#applied && this.#applied.epoch !== cursor.epoch) this.#pastEpochs.add(this.#applied.epoch);
    this.#applied = { position: cursor.position, epoch: cursor.epoch };
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) {
      if (this.#reached(w.target, w.afterReads)) w.resolve();
      else this.#waiters.push(w);
    }
  }

  /**
   * Applies changes in feed order. Of several changes of one key (the
   * initial part of a feed started `from` a position holds every change
   * since), the last in the feed wins, as in `load`: the later save, never
   * the later timestamp.
   */
  async #apply(changes: Change[]): Promise<void> {
    if (changes.length === 0) return;
    let latest = changes;
    if (changes.length > 1) {
      const byKey = new Map<string, Change>();
      for (const change of changes) {
        const key = changeKey(change);
        byKey.delete(key); // re-inserted last: the map keeps feed order of each key's last change
        byKey.set(key, change);
      }
      if (byKey.size < changes.length) latest = [...byKey.values()];
    }
    await applyChanges(latest, this.#registry, { unique: true });
    this.#applyCount += latest.length;
  }

  async #run(ready: { resolve: () => void; reject: (e: unknown) => void }): Promise<void> {
    let initial: Change[] | undefined = [];
    try {
      for await (const event of this.#feed) {
        if (event.type === "caught-up") {
          if (initial) {
            await this.#apply(initial);
            initial = undefined;
            ready.resolve();
          }
          this.#advance(event);
          continue;
        }
        if (initial) {
          initial.push(event.change);
          if (initial.length >= this.#initialBatch) {
            await this.#apply(initial);
            initial = [];
            this.#advance(event);
          }
          continue;
        }
        await this.#apply([event.change]);
        this.#advance(event);
      }
      if (initial) {
        if (this.#signal?.aborted) throw new AbortError(this.#signal.reason);
        throw new ClosedError("follower (closed before its initial state was applied)");
      }
    } catch (error) {
      this.#error = error;
      ready.reject(error);
      throw error;
    } finally {
      this.#stopped = true;
      this.#feed.close();
      const error = this.#error ?? new ClosedError("follower");
      for (const w of this.#waiters.splice(0)) w.reject(error);
    }
  }
}
