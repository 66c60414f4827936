/**
 * `MemoryStore`: a Store in process memory. It compacts immediately (one
 * change per key) and keeps nothing across restarts: for tests and for
 * caches in front of a durable store.
 */
import {
  BASE_STORE_OPTION_NAMES,
  BaseStore,
  type BaseStoreOptions,
  type CallOptions,
  type Change,
  type ChangeFeed,
  type ChangeInput,
  ChangeType,
  type FeedBatch,
  FeedBehindError,
  type FeedChange,
  FeedEventType,
  type FeedSource,
  type LoadOptions,
  OptionChecker,
  type SaveOptions,
  type StoreCapabilities,
  validateNamespace,
  type WatchOptions,
} from "../index.js";
import { Entries, prepareCopies } from "./entries.js";

/** Options of {@link MemoryStore}: those of every store. */
export interface MemoryStoreOptions extends BaseStoreOptions {}

/** A Store in memory: latest change per key, in write order. */
export class MemoryStore extends BaseStore {
  readonly capabilities: StoreCapabilities = { compact: true, listNamespaces: true, durable: false, watch: true };
  /** namespace → its entries (the latest change of each key, in position order). */
  readonly #data = new Map<string, Entries>();
  /** namespace → the position of its last change (a counter kept across `clear`). */
  readonly #positions = new Map<string, number>();
  /** namespace → the position at which it was last cleared: feeds from before it are behind. */
  readonly #cleared = new Map<string, number>();

  constructor(options: MemoryStoreOptions = {}) {
    super("memory store", options, "MemoryStore");
    new OptionChecker<MemoryStoreOptions>("MemoryStore", options, {}).known(BASE_STORE_OPTION_NAMES);
  }

  /** A new, empty store (the same as `new MemoryStore(options)`: nothing to connect to). */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    return new MemoryStore(options);
  }

  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    this.checkOpen(undefined, options);
    // Every change is checked (and its entity copied) before anything is written.
    const { namespaces, entityTypes, entityIds, changeTypes, times, entities } = prepareCopies(
      changes,
      this.maxValueBytes,
      this.clock,
    );
    this.#checkTypes(entityTypes, changeTypes, entities);
    const touched = new Set<string>();
    // The namespace of the previous change and its entries.
    let entries: Entries | undefined;
    for (let i = 0; i < namespaces.length; i++) {
      const namespace = namespaces[i] as string;
      if (entries === undefined || entries.namespace !== namespace) {
        if (entries !== undefined) this.#positions.set(entries.namespace, entries.position);
        entries = this.#data.get(namespace);
        if (entries === undefined) {
          entries = new Entries(namespace, this.#positions.get(namespace) ?? 0);
          this.#data.set(namespace, entries);
        }
        touched.add(namespace);
      }
      entries.put(
        entityTypes[i] as string,
        entityIds[i] as string,
        changeTypes[i] as ChangeType,
        times[i] as number,
        entities[i],
      );
    }
    if (entries !== undefined) this.#positions.set(entries.namespace, entries.position);
    for (const n of touched) this.feedNotifier.notify(n);
  }

  /**
   * The registered types' checks, on what is stored: the entity types and
   * change types as they were read once, and the copies of the entities
   * (an input's getter answering another time cannot get an unregistered
   * type or an entity its schema refuses past them).
   */
  #checkTypes(entityTypes: readonly string[], changeTypes: readonly ChangeType[], entities: readonly unknown[]): void {
    if (!this.types.checksSaves) return;
    this.types.checkSave(
      entityTypes.map((entityType, i) => ({
        entityType,
        changeType: changeTypes[i] as ChangeType,
        entity: this.types.checksEntities ? entities[i] : undefined,
      })),
    );
  }

  /**
   * A live feed of `namespace`: its current state, the caught-up barrier,
   * then every later change. Positions count the namespace's changes
   * (1, 2, …); a store keeps one change per key, so a feed `from` a
   * position gets the latest change of each key changed after it. After
   * `clear(namespace)`, a feed from before the clear is behind.
   */
  watch(namespace: string, options?: WatchOptions): ChangeFeed {
    return this.openFeed(namespace, options, (_pollIntervalMs, batchSize) => this.#feedSource(namespace, batchSize));
  }

  #feedSource(namespace: string, batchSize: number): FeedSource {
    return {
      read: async (cursor): Promise<FeedBatch> => {
        this.checkOpen(namespace);
        const head = this.#positions.get(namespace) ?? 0;
        const after = cursor?.position ?? 0;
        if (cursor !== undefined) {
          if (cursor.epoch !== undefined && cursor.epoch !== "") {
            throw new FeedBehindError(
              namespace,
              after,
              `position of another numbering (epoch ${JSON.stringify(cursor.epoch)})`,
            );
          }
          if (after > head) throw new FeedBehindError(namespace, after, `this store's last position is ${head}`);
          if (after < (this.#cleared.get(namespace) ?? 0)) {
            throw new FeedBehindError(namespace, after, "the namespace was cleared after it");
          }
        }
        const items: FeedChange[] = [];
        const entries = this.#data.get(namespace);
        if (entries) {
          // Entries are in position order: the tail after `after` (the whole state for a new feed).
          for (let e = entries.after(after); e !== undefined; e = e.next) {
            if (cursor !== undefined && items.length === batchSize) {
              const position = (items[batchSize - 1] as FeedChange).position;
              return { items, cursor: { position, epoch: "" }, head, more: true };
            }
            items.push({
              type: FeedEventType.Change,
              change: this.loaded(e.toChange(namespace)),
              position: e.position,
              epoch: "",
            });
          }
        }
        return { items, cursor: { position: head, epoch: "" }, head };
      },
      wait: (cursor, signal) =>
        (this.#positions.get(namespace) ?? 0) > cursor.position || this.closed
          ? Promise.resolve()
          : this.feedNotifier.wait(namespace, signal),
    };
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.checkOpen(namespace, options);
    // checkOpen leaves out an undefined namespace (a call about no namespace): here it is a bad name.
    validateNamespace(namespace);
    const entries = this.#data.get(namespace);
    if (!entries) return [];
    // Fresh copies: callers may mutate what they load.
    const liveOnly = options?.liveOnly === true;
    const out: Change[] = new Array(liveOnly ? 0 : entries.size);
    let n = 0;
    for (let e = entries.first; e !== undefined; e = e.next) {
      if (liveOnly && e.changeType === ChangeType.Unset) continue;
      out[n++] = this.loaded(e.toChange(namespace));
    }
    return out;
  }

  /** Nothing to do: a memory store is always compacted. */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.checkOpen(namespace, options);
    validateNamespace(namespace);
  }

  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.checkOpen(undefined, options);
    return [...this.#data.keys()];
  }

  /** Removes one namespace, or everything. Feeds of a cleared namespace that are behind the clear fail with `FeedBehindError`. */
  clear(namespace?: string): void {
    this.checkOpen();
    const namespaces = namespace === undefined ? [...this.#data.keys()] : [namespace];
    for (const ns of namespaces) {
      this.#data.delete(ns);
      // A feed positioned before the clear would miss that its entities are gone.
      const position = (this.#positions.get(ns) ?? 0) + 1;
      this.#positions.set(ns, position);
      this.#cleared.set(ns, position);
      this.feedNotifier.notify(ns);
    }
  }

  /** How many namespaces hold changes. */
  get namespaceCount(): number {
    return this.#data.size;
  }

  /** How many keys (entities and tombstones) `namespace` holds, or all namespaces together. */
  entityCount(namespace?: string): number {
    if (namespace !== undefined) return this.#data.get(namespace)?.size ?? 0;
    let n = 0;
    for (const ns of this.#data.values()) n += ns.size;
    return n;
  }

  protected async closeResources(): Promise<void> {
    this.#data.clear();
  }
}
