/**
 * `CachedReadModelStore`: a bounded LRU cache (entries and bytes) in front
 * of any {@link ReadModelStore}. Loads are served from memory; every write
 * made through it (the projector's own) updates or invalidates the cached
 * model, so a load that starts after a write resolved never sees what was
 * there before it. Queries, lists and statuses go to the store.
 */
import { type CallOptions, OpenState, OptionChecker, throwIfAborted, UnsupportedError } from "../index.js";
import { prepareSave, prepareWrites } from "./prepare.js";
import { hasAtomicCheckpoint } from "./projection.js";
import type {
  ProjectionStatusRecord,
  Query,
  QueryResult,
  ReadModelDeleteOptions,
  ReadModelMetadata,
  ReadModelSaveOptions,
  ReadModelStore,
  ReadModelStoreCapabilities,
  ReadModelWrite,
  StoredReadModel,
} from "./types.js";

/** Options of {@link CachedReadModelStore.open}. */
export interface CachedReadModelStoreOptions {
  /** The store behind the cache (closed by the cache's `close()`). */
  store: ReadModelStore;
  /** Most models (or remembered absences) held; the least recently used goes first. @default 10000 */
  maxEntries?: number;
  /**
   * Most bytes held, counted as the UTF-8 length of each cached model's
   * JSON with its metadata; a model larger than this is not cached.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number;
}

/** Defaults of {@link CachedReadModelStoreOptions}. */
export const CACHED_READ_MODEL_STORE_DEFAULTS = {
  /** @default 10000 */
  maxEntries: 10_000,
  /** @default 67108864 (64 MiB) */
  maxBytes: 64 * 1024 * 1024,
} as const;

/** What {@link CachedReadModelStore.stats} reports. */
export interface ReadModelCacheStats {
  /** Loads answered from the cache. */
  readonly hits: number;
  /** Loads that went to the store. */
  readonly misses: number;
  /** Entries dropped to stay within `maxEntries` or `maxBytes`. */
  readonly evictions: number;
  /** Entries held now (models and remembered absences). */
  readonly entries: number;
  /** Bytes held now. */
  readonly bytes: number;
}

/** A cached model, or a remembered absence (`stored: undefined`). */
interface Entry {
  readonly stored: StoredReadModel | undefined;
  readonly bytes: number;
}

/** The writes in flight on one key, and whether two of them overlapped. */
interface Writing {
  count: number;
  overlapped: boolean;
}

/** Bytes charged for a remembered absence, on top of its key. */
const ABSENT_BYTES = 16;

const keyOf = (modelType: string, id: string) => `${modelType}\u0000${id}`;

/** A bounded LRU cache in front of a read-model store. Create it with {@link CachedReadModelStore.open}. */
export class CachedReadModelStore implements ReadModelStore {
  readonly capabilities: ReadModelStoreCapabilities;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** The store behind the cache (every write goes through to it). */
  readonly wrapped: ReadModelStore;
  readonly #store: ReadModelStore;
  /** In LRU order: the first key is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  /** Loads in flight per key; a write marks them stale so they do not fill the cache with what it replaced. */
  readonly #loading = new Map<string, Set<{ stale: boolean }>>();
  readonly #writing = new Map<string, Writing>();
  readonly #state = new OpenState("read-model cache");
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  private constructor(store: ReadModelStore, maxEntries: number, maxBytes: number) {
    this.#store = store;
    this.wrapped = store;
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    const atomic = hasAtomicCheckpoint(store);
    this.capabilities = { ...store.capabilities, atomicCheckpoint: atomic };
    // The contract: saveWithCheckpoint is present exactly when the capability is.
    if (!atomic) Object.defineProperty(this, "saveWithCheckpoint", { value: undefined });
    // The statuses' list is passed through when the store behind has one.
    if (typeof store.listProjectionStatuses !== "function") {
      Object.defineProperty(this, "listProjectionStatuses", { value: undefined });
    }
    if (typeof store.deleteProjectionStatus !== "function") {
      Object.defineProperty(this, "deleteProjectionStatus", { value: undefined });
    }
  }

  /**
   * Checks the options and puts a cache in front of `store`.
   * @throws ConfigurationError for a missing store, a bound that is not a positive integer, or an unknown option
   */
  static async open(options: CachedReadModelStoreOptions): Promise<CachedReadModelStore> {
    const check = new OptionChecker<CachedReadModelStoreOptions>(
      "CachedReadModelStore",
      options,
      CACHED_READ_MODEL_STORE_DEFAULTS,
    );
    check.known(["store", "maxEntries", "maxBytes"]);
    const store = check.custom<"store", ReadModelStore>("store", (v) =>
      typeof v === "object" &&
      v !== null &&
      typeof (v as ReadModelStore).load === "function" &&
      typeof (v as ReadModelStore).save === "function"
        ? undefined
        : "a ReadModelStore",
    );
    const maxEntries = check.integer("maxEntries", { min: 1, infinity: true });
    const maxBytes = check.integer("maxBytes", { min: 1, infinity: true });
    return new CachedReadModelStore(store, maxEntries, maxBytes);
  }

  /** Hits, misses, evictions and what the cache holds now. */
  stats(): ReadModelCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      entries: this.#entries.size,
      bytes: this.#bytes,
    };
  }

  /**
   * Forgets one cached model, every model of `modelType`, or everything:
   * for when something other than this cache wrote to the store.
   */
  invalidate(modelType?: string, id?: string): void {
    // Loads in flight may have read the value replaced: they must not cache it either.
    if (modelType !== undefined && id !== undefined) {
      const key = keyOf(modelType, id);
      this.#drop(key);
      this.#staleLoads(key);
      return;
    }
    const matches = (key: string) => modelType === undefined || key.startsWith(`${modelType}\u0000`);
    for (const key of [...this.#entries.keys()]) if (matches(key)) this.#drop(key);
    for (const key of this.#loading.keys()) if (matches(key)) this.#staleLoads(key);
  }

  async load<M>(modelType: string, id: string, options?: CallOptions): Promise<StoredReadModel<M> | undefined> {
    this.#state.check();
    throwIfAborted(options?.signal);
    const key = keyOf(modelType, id);
    const entry = this.#entries.get(key);
    if (entry) {
      this.#hits++;
      this.#entries.delete(key); // most recently used: to the end
      this.#entries.set(key, entry);
      return entry.stored && (structuredClone(entry.stored) as StoredReadModel<M>);
    }
    this.#misses++;
    const token = { stale: false };
    const tokens = this.#loading.get(key) ?? new Set();
    tokens.add(token);
    this.#loading.set(key, tokens);
    try {
      const stored = await this.#store.load<M>(modelType, id, options);
      // A write overlapped this load: what it read may be older than the write; do not cache it.
      if (!token.stale && !this.#writing.has(key)) this.#put(key, stored);
      return stored;
    } finally {
      tokens.delete(token);
      if (tokens.size === 0) this.#loading.delete(key);
    }
  }

  async save<M>(model: M, metadata: ReadModelMetadata, options?: ReadModelSaveOptions): Promise<number> {
    this.#state.check();
    // Checked and copied now, as the store does: the cache holds what the store stored (metadata defaults filled
    // in), whatever the caller changes later; bad input is the store's error, before any key is touched.
    const prepared = prepareSave(model, metadata, Number.POSITIVE_INFINITY, options?.expectedRevision);
    const key = keyOf(prepared.modelType, prepared.id);
    let revision = 0;
    await this.#write([key], async () => {
      revision = await this.#store.save(model, metadata, options);
      return [{ key, stored: { model: prepared.value, metadata: prepared.metadata, revision } }];
    });
    return revision;
  }

  async delete(modelType: string, id: string, options?: ReadModelDeleteOptions): Promise<boolean> {
    this.#state.check();
    const key = keyOf(modelType, id);
    let existed = false;
    await this.#write([key], async () => {
      existed = await this.#store.delete(modelType, id, options);
      return [{ key, stored: undefined }];
    });
    return existed;
  }

  /**
   * Writes the models and the checkpoint through the store's own
   * `saveWithCheckpoint`, then caches what was written. Present only when
   * the store behind has an atomic checkpoint (`capabilities.atomicCheckpoint`).
   * @throws UnsupportedError when called anyway on a cache whose store has none
   */
  async saveWithCheckpoint(
    writes: readonly ReadModelWrite[],
    status: ProjectionStatusRecord,
    options?: CallOptions,
  ): Promise<number[]> {
    this.#state.check();
    const store = this.#store;
    if (!hasAtomicCheckpoint(store)) {
      throw new UnsupportedError("saveWithCheckpoint: the store behind this cache has no atomic checkpoint");
    }
    const prepared = prepareWrites(writes, Number.POSITIVE_INFINITY); // checked and copied now, as in save
    const keys = prepared.map((w) => keyOf(w.modelType, w.id));
    let revisions: number[] = [];
    await this.#write(keys, async () => {
      revisions = await store.saveWithCheckpoint(writes, status, options);
      return prepared.map((w, i) => ({
        key: keys[i] as string,
        stored:
          w.type === "save" ? { model: w.value, metadata: w.metadata, revision: revisions[i] as number } : undefined,
      }));
    });
    return revisions;
  }

  /**
   * Runs a write of `keys`: they are dropped first (a concurrent load
   * cannot refill them with older values), then hold what was written, or
   * stay dropped when it failed or when two writes of one key overlapped.
   */
  async #write(
    keys: readonly string[],
    run: () => Promise<{ key: string; stored: StoredReadModel | undefined }[]>,
  ): Promise<void> {
    const mine = [...new Set(keys)];
    for (const key of mine) {
      this.#drop(key);
      this.#staleLoads(key);
      const w = this.#writing.get(key);
      if (w) {
        w.count++;
        w.overlapped = true;
      } else this.#writing.set(key, { count: 1, overlapped: false });
    }
    let written: { key: string; stored: StoredReadModel | undefined }[] = [];
    try {
      written = await run();
    } finally {
      const settled = new Set<string>();
      for (const key of mine) {
        this.#staleLoads(key);
        const w = this.#writing.get(key) as Writing;
        if (--w.count === 0) {
          this.#writing.delete(key);
          if (!w.overlapped) settled.add(key);
        }
        this.#drop(key);
      }
      // The written entries are the cache's own copies (prepareSave): kept as they are.
      for (const { key, stored } of written) if (settled.has(key)) this.#put(key, stored, true);
    }
  }

  #staleLoads(key: string): void {
    for (const token of this.#loading.get(key) ?? []) token.stale = true;
  }

  /**
   * Caches `stored` (a model, or its absence) as the most recently used;
   * evicts to stay in bounds. `owned`: nobody else holds `stored` (else it
   * is copied).
   */
  #put(key: string, stored: StoredReadModel | undefined, owned = false): void {
    this.#drop(key);
    let bytes: number;
    try {
      bytes =
        key.length +
        (stored ? Buffer.byteLength(JSON.stringify({ model: stored.model, metadata: stored.metadata })) : ABSENT_BYTES);
    } catch {
      return; // not JSON: not counted, so not cached
    }
    if (bytes > this.maxBytes) return;
    this.#entries.set(key, { stored: stored && (owned ? stored : structuredClone(stored)), bytes });
    this.#bytes += bytes;
    for (const [oldest] of this.#entries) {
      if (this.#entries.size <= this.maxEntries && this.#bytes <= this.maxBytes) break;
      this.#drop(oldest);
      this.#evictions++;
    }
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  list(modelType: string, options?: CallOptions): Promise<string[]> {
    this.#state.check();
    return this.#store.list(modelType, options);
  }

  query<M>(query: Query, options?: CallOptions): Promise<QueryResult<M>> {
    this.#state.check();
    return this.#store.query<M>(query, options);
  }

  updateProjectionStatus(record: ProjectionStatusRecord, options?: CallOptions): Promise<void> {
    this.#state.check();
    return this.#store.updateProjectionStatus(record, options);
  }

  getProjectionStatus(name: string, options?: CallOptions): Promise<ProjectionStatusRecord | undefined> {
    this.#state.check();
    return this.#store.getProjectionStatus(name, options);
  }

  /** The store's statuses (present only when the store behind lists them). */
  listProjectionStatuses(options?: CallOptions): Promise<ProjectionStatusRecord[]> {
    this.#state.check();
    const list = this.#store.listProjectionStatuses as (o?: CallOptions) => Promise<ProjectionStatusRecord[]>;
    return list.call(this.#store, options);
  }

  /** Removes a status from the store (present only when the store behind can). */
  deleteProjectionStatus(name: string, options?: CallOptions): Promise<boolean> {
    this.#state.check();
    const remove = this.#store.deleteProjectionStatus as (n: string, o?: CallOptions) => Promise<boolean>;
    return remove.call(this.#store, name, options);
  }

  /** Empties the cache and closes the store behind it. Idempotent; later calls fail with a `ClosedError`. */
  async close(): Promise<void> {
    if (!this.#state.close()) return;
    this.#entries.clear();
    this.#bytes = 0;
    await this.#store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
