/**
 * `MemoryStore`: a Store in process memory. It compacts immediately (one
 * change per key) and keeps nothing across restarts: for tests and for
 * caches in front of a durable store.
 */
import {
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
  type PreparedChange,
  type SaveOptions,
  type StoreCapabilities,
  toChange,
  type WatchOptions,
} from "../index.js";

/** A stored change and its position in the namespace's feed. */
interface Entry {
  readonly prepared: PreparedChange;
  readonly position: number;
}

/** Options of {@link MemoryStore}: those of every store. */
export interface MemoryStoreOptions extends BaseStoreOptions {}

/** A Store in memory: latest change per key, in write order. */
export class MemoryStore extends BaseStore {
  readonly capabilities: StoreCapabilities = { compact: true, listNamespaces: true, durable: false, watch: true };
  /**
   * namespace → key → prepared change (entity kept as the store's own
   * copy, handed out only as copies, so nobody can alias stored state) and
   * its feed position; a re-set key moves to the end (write order, which
   * is position order).
   */
  readonly #data = new Map<string, Map<string, Entry>>();
  /** namespace → the position of its last change (a counter kept across `clear`). */
  readonly #positions = new Map<string, number>();
  /** namespace → the position at which it was last cleared: feeds from before it are behind. */
  readonly #cleared = new Map<string, number>();

  constructor(options: MemoryStoreOptions = {}) {
    super("memory store", options, "MemoryStore");
  }

  /** A new, empty store (the same as `new MemoryStore(options)`: nothing to connect to). */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    return new MemoryStore(options);
  }

  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    const touched = new Set<string>();
    // The namespace of the previous change, its map and its last position (written back when it changes).
    let namespace: string | undefined;
    let ns: Map<string, Entry> | undefined;
    let position = 0;
    for (const p of this.prepare(changes, options, true)) {
      if (p.namespace !== namespace || ns === undefined) {
        if (namespace !== undefined) this.#positions.set(namespace, position);
        namespace = p.namespace;
        ns = this.#data.get(namespace);
        if (!ns) {
          ns = new Map();
          this.#data.set(namespace, ns);
        }
        position = this.#positions.get(namespace) ?? 0;
        touched.add(namespace);
      }
      const key = `${p.entityType}/${p.entityId}`;
      ns.delete(key);
      ns.set(key, { prepared: p, position: ++position });
    }
    if (namespace !== undefined) this.#positions.set(namespace, position);
    for (const n of touched) this.feedNotifier.notify(n);
  }

  /**
   * A live feed of `namespace`: its current state, the caught-up barrier,
   * then every later change. Positions count the namespace's changes
   * (1, 2, …); a store keeps one change per key, so a feed `from` a
   * position gets the latest change of each key changed after it. After
   * `clear(namespace)`, a feed from before the clear is behind.
   */
  watch(namespace: string, options?: WatchOptions): ChangeFeed {
    return this.openFeed(namespace, options, () => this.#feedSource(namespace));
  }

  #feedSource(namespace: string): FeedSource {
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
        const ns = this.#data.get(namespace);
        if (ns) {
          // Entries are in position order: collect the tail after `after`.
          const entries = [...ns.values()];
          let i = entries.length;
          while (i > 0 && (entries[i - 1] as Entry).position > after) i--;
          for (; i < entries.length; i++) {
            const e = entries[i] as Entry;
            items.push({
              type: FeedEventType.Change,
              change: this.loaded(toChange(e.prepared)),
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
    const ns = this.#data.get(namespace);
    if (!ns) return [];
    // Fresh objects from the JSON text: callers may mutate what they load.
    const out: Change[] = [];
    for (const { prepared } of ns.values()) {
      if (options?.liveOnly && prepared.changeType === ChangeType.Unset) continue;
      out.push(this.loaded(toChange(prepared)));
    }
    return out;
  }

  /** Nothing to do: a memory store is always compacted. */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.checkOpen(namespace, options);
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
