/**
 * `statelog/union`: several stores as one, for redundancy — save to every
 * store, load from all of them and merge per key.
 */
import {
  applyLoadOptions,
  BASE_STORE_OPTION_NAMES,
  BaseStore,
  type BaseStoreOptions,
  type CallOptions,
  type Change,
  type ChangeFeed,
  type ChangeInput,
  ClosedError,
  ConfigurationError,
  changeKey,
  type FeedBatch,
  type FeedChange,
  type FeedEvent,
  FeedEventType,
  type FeedSource,
  isStatelogError,
  type LoadOptions,
  messageOf,
  OptionChecker,
  PartialWriteError,
  type SaveOptions,
  STORE_DEFAULTS,
  StatelogError,
  type Store,
  type StoreCapabilities,
  throwIfAborted,
  toChange,
  UnsupportedError,
  type WatchOptions,
} from "../index.js";

/** How `load` treats a store that fails. */
export const ReadPolicy = {
  /** Any failed store fails the load. */
  All: "all",
  /** A failed store is skipped and reported through `onSkippedStore`; the load fails only if every store failed. */
  Any: "any",
} as const;
export type ReadPolicy = (typeof ReadPolicy)[keyof typeof ReadPolicy];

/** Options of {@link UnionStore}. */
export interface UnionStoreOptions extends BaseStoreOptions {
  /** The stores, in order: saves go to each in this order; on a load tie the earlier store wins. At least one. */
  stores: readonly Store[];
  /** What a failed store does to a load; see {@link ReadPolicy}. @default "all" */
  readPolicy?: ReadPolicy;
  /** Called for each store skipped by a load under the `"any"` policy. @default none */
  onSkippedStore?: (report: { index: number; namespace: string; error: unknown }) => void;
}

/** Defaults of {@link UnionStoreOptions}. */
export const UNION_STORE_DEFAULTS = {
  /** @default "all" */
  readPolicy: ReadPolicy.All,
  /** Largest entity, checked once before any store is written. @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /** @default "accept" */
  unknownEntityTypes: STORE_DEFAULTS.unknownEntityTypes,
} as const;

/** Codes of the union's own errors. */
export const UnionErrorCode = {
  /** A union load failed: a store failed under `readPolicy: "all"`, or every store failed under `"any"`. */
  LoadFailed: "STATELOG_UNION_LOAD_FAILED",
} as const;
export type UnionErrorCode = (typeof UnionErrorCode)[keyof typeof UnionErrorCode];

/** A union load failed: `failures` says which stores failed and why (the first one is the `cause`). */
export class UnionLoadError extends StatelogError {
  constructor(
    readonly namespace: string,
    readonly failures: readonly { index: number; error: unknown }[],
  ) {
    super(
      UnionErrorCode.LoadFailed,
      `union load of ${JSON.stringify(namespace)}: ${failures.map((f) => `store #${f.index}: ${messageOf(f.error)}`).join("; ")}`,
      { cause: failures[0]?.error },
    );
    this.name = "UnionLoadError";
  }
}

/** True for a {@link UnionLoadError} (by its code, so it works across copies of the package). */
export const isUnionLoadError = (e: unknown): e is UnionLoadError => isStatelogError(e, UnionErrorCode.LoadFailed);

const isStore = (s: unknown): boolean =>
  typeof s === "object" &&
  s !== null &&
  typeof (s as Store).save === "function" &&
  typeof (s as Store).load === "function" &&
  typeof (s as Store).close === "function";

/**
 * Writes to every store in order; loads from all of them and merges per
 * key: the later timestamp wins, on a tie the earlier store in the list.
 */
export class UnionStore extends BaseStore {
  readonly capabilities: StoreCapabilities;
  readonly #stores: readonly Store[];
  readonly #readPolicy: ReadPolicy;
  readonly #onSkippedStore: UnionStoreOptions["onSkippedStore"];

  /**
   * A union of `options.stores` (the same as {@link UnionStore.open}). It
   * owns its stores: `close()` closes them.
   * @throws ConfigurationError for an invalid or unknown option
   */
  constructor(options: UnionStoreOptions) {
    if (Array.isArray(options)) {
      throw new ConfigurationError("UnionStore takes one options object: new UnionStore({ stores: [a, b] })");
    }
    super("union store", options, "UnionStore");
    const check = new OptionChecker<UnionStoreOptions>("UnionStore", options, UNION_STORE_DEFAULTS);
    check.known(["stores", "readPolicy", "onSkippedStore", ...BASE_STORE_OPTION_NAMES]);
    const stores = check.custom<"stores", readonly Store[]>("stores", (v) =>
      Array.isArray(v) && v.length > 0 && v.every(isStore)
        ? undefined
        : "a non-empty array of stores (at least one store)",
    );
    this.#readPolicy = check.oneOf("readPolicy", ReadPolicy);
    this.#onSkippedStore = check.optionalFunction("onSkippedStore");
    this.#stores = [...stores];
    this.capabilities = {
      compact: stores.some((s) => s.capabilities.compact),
      listNamespaces: stores.every((s) => s.capabilities.listNamespaces),
      durable: stores.some((s) => s.capabilities.durable),
      watch: stores[0]?.capabilities.watch === true && typeof stores[0].watch === "function",
    };
  }

  /** A union of `options.stores`; nothing to connect to (the stores are open already). */
  static async open(options: UnionStoreOptions): Promise<UnionStore> {
    return new UnionStore(options);
  }

  /** The stores, in order. */
  get stores(): readonly Store[] {
    return this.#stores;
  }

  /**
   * Validates the changes once (and stamps those without a timestamp with
   * one clock reading), then saves them to every store in order; every
   * store is attempted.
   * @throws PartialWriteError (`targets: "stores"`) naming the stores that took the changes and those that did not
   */
  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    const prepared = this.prepare(changes, options).map(toChange);
    if (prepared.length === 0) return;
    const saved: number[] = [];
    const failed: { index: number; error: unknown }[] = [];
    for (let i = 0; i < this.#stores.length; i++) {
      try {
        await (this.#stores[i] as Store).save(prepared, options);
        saved.push(i);
      } catch (error) {
        failed.push({ index: i, error });
      }
    }
    if (failed.length > 0) {
      // A union of one store: its error is the whole story.
      if (saved.length === 0 && failed.length === 1) throw failed[0]?.error;
      throw new PartialWriteError({ operation: "union save", targets: "stores", written: saved, failed });
    }
  }

  /**
   * Loads `namespace` from every store and merges per key: the later
   * timestamp wins; on a tie, the earlier store. Order: the first store's
   * write order, then keys only later stores hold, in theirs.
   * @throws UnionLoadError when stores failed (see {@link ReadPolicy})
   */
  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.checkOpen(namespace, options);
    const results = await Promise.allSettled(this.#stores.map((s) => s.load(namespace, { signal: options?.signal })));
    const failures: { index: number; error: unknown }[] = [];
    results.forEach((r, index) => {
      if (r.status === "rejected") failures.push({ index, error: r.reason });
    });
    if (failures.length > 0) {
      if (this.#readPolicy === ReadPolicy.All || failures.length === results.length) {
        throw new UnionLoadError(namespace, failures);
      }
      for (const f of failures) this.#onSkippedStore?.({ ...f, namespace });
    }
    const winners = new Map<string, Change>();
    for (const r of results) {
      if (r.status !== "fulfilled") continue;
      for (const change of r.value) {
        const key = changeKey(change);
        const prev = winners.get(key);
        if (!prev || change.timestamp.getTime() > prev.timestamp.getTime()) winners.set(key, change);
      }
    }
    return applyLoadOptions([...winners.values()], options).map((c) => this.loaded(c));
  }

  /**
   * The change feed of the first store (every save reaches it first), with
   * its positions (when `capabilities.watch`: the first store can watch).
   * Each change is checked as the union's loads check it (`entityTypes`,
   * `unknownEntityTypes`).
   * @throws UnsupportedError when the first store cannot watch
   */
  watch(namespace: string, options?: WatchOptions): ChangeFeed {
    this.checkOpen(namespace);
    const first = this.#stores[0] as Store;
    if (!first.capabilities.watch || !first.watch) {
      throw new UnsupportedError("the first store of this union cannot watch (capabilities.watch is false)");
    }
    const watch = first.watch.bind(first);
    return this.openFeed(
      namespace,
      options,
      (_pollIntervalMs, batchSize) => new FirstStoreFeed(watch(namespace, options), (c) => this.loaded(c), batchSize),
    );
  }

  /** Compacts `namespace` in every store that can. */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.checkOpen(namespace, options);
    for (const s of this.#stores) {
      throwIfAborted(options?.signal);
      if (s.capabilities.compact && s.compact) await s.compact(namespace, options);
    }
  }

  /**
   * The namespaces of all stores together.
   * @throws UnsupportedError when a store cannot list namespaces (`capabilities.listNamespaces` is false)
   */
  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.checkOpen(undefined, options);
    const lists = await Promise.all(
      this.#stores.map((s, index) => {
        if (!s.listNamespaces) throw new UnsupportedError(`store #${index} of this union cannot list namespaces`);
        return s.listNamespaces(options);
      }),
    );
    return [...new Set(lists.flat())];
  }

  /** Closes every store (all are attempted; the first error is thrown). */
  protected async closeResources(): Promise<void> {
    const results = await Promise.allSettled(this.#stores.map((s) => s.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/**
 * The first store's feed as the source of the union's feed: its events
 * passed on in order, each change through the union's `loaded` check. The
 * first read takes the initial part (up to the first store's caught-up
 * barrier, in pieces of at most `batchSize` changes); each later read one
 * change, once `wait` has seen it come.
 */
class FirstStoreFeed implements FeedSource {
  readonly #inner: ChangeFeed;
  readonly #events: AsyncIterator<FeedEvent>;
  readonly #loaded: (change: Change) => Change;
  readonly #batchSize: number;
  /** The inner feed's next event, asked for and not yet taken by a read. */
  #next: Promise<IteratorResult<FeedEvent>> | undefined;
  /** Whether {@link #next} has settled (a read takes it without waiting). */
  #ready = false;
  #caughtUp = false;

  constructor(inner: ChangeFeed, loaded: (change: Change) => Change, batchSize: number) {
    this.#inner = inner;
    this.#events = inner[Symbol.asyncIterator]();
    this.#loaded = loaded;
    this.#batchSize = batchSize;
  }

  #peek(): Promise<IteratorResult<FeedEvent>> {
    if (this.#next === undefined) {
      const next = this.#events.next();
      this.#next = next;
      this.#ready = false;
      next.then(
        () => {
          if (this.#next === next) this.#ready = true;
        },
        () => undefined,
      );
    }
    return this.#next;
  }

  /**
   * After the initial part, when no event is ready (the feed was asked to
   * read again now, `refresh()`): the inner feed reads again too; resolves
   * when it did, or when an event came first.
   */
  async #refreshed(): Promise<"read" | "event"> {
    const next = this.#peek();
    const target = this.#inner.refresh();
    let off: (() => void) | undefined;
    const read = new Promise<"read">((resolve) => {
      off = this.#inner.onRead((_cursor, reads) => {
        if (reads >= target) resolve("read");
      });
    });
    try {
      return await Promise.race([read, next.then(() => "event" as const)]);
    } finally {
      off?.();
    }
  }

  async read(): Promise<FeedBatch> {
    const items: FeedChange[] = [];
    if (this.#caughtUp && !this.#ready && (await this.#refreshed()) === "read" && !this.#ready) {
      // Read again and nothing new: where the inner feed stands now.
      const cursor = this.#inner.cursor ?? { position: 0, epoch: "" };
      return { items, cursor: { position: cursor.position, epoch: cursor.epoch }, head: this.#inner.head };
    }
    for (;;) {
      const result = await this.#peek();
      this.#next = undefined;
      this.#ready = false;
      // The inner feed ended: its store was closed under the open union. A batch returned here would be read
      // again at once, forever (the inner iterator stays done), and before the barrier pass a partial state for
      // the whole one: the union's feed fails instead.
      if (result.done) {
        this.#inner.close();
        throw new ClosedError("the union store's first store");
      }
      const event = result.value;
      if (event.type === FeedEventType.CaughtUp) {
        this.#caughtUp = true;
        return { items, cursor: { position: event.position, epoch: event.epoch }, head: this.#inner.head };
      }
      items.push({ ...event, change: this.#loaded(event.change) });
      if (this.#caughtUp)
        return { items, cursor: { position: event.position, epoch: event.epoch }, head: this.#inner.head };
      if (items.length === this.#batchSize) {
        // A piece of the initial part: the feed reads on at once, and the barrier comes after the last piece.
        const cursor = { position: event.position, epoch: event.epoch };
        return { items, cursor, head: this.#inner.head, more: true };
      }
    }
  }

  async wait(_cursor: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((resolve) => {
      onAbort = () => resolve();
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([this.#peek(), aborted]);
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  close(): void {
    this.#inner.close();
  }
}
