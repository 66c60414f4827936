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
  type ChangeInput,
  type LoadOptions,
  type PreparedChange,
  type SaveOptions,
  type StoreCapabilities,
  toChange,
} from "../index.js";

/** Options of {@link MemoryStore}: those of every store. */
export interface MemoryStoreOptions extends BaseStoreOptions {}

/** A Store in memory: latest change per key, in write order. */
export class MemoryStore extends BaseStore {
  readonly capabilities: StoreCapabilities = { compact: true, listNamespaces: true, durable: false };
  /**
   * namespace → key → prepared change (entity kept as its JSON text, so
   * nobody can alias stored state); a re-set key moves to the end (write order).
   */
  readonly #data = new Map<string, Map<string, PreparedChange>>();

  constructor(options: MemoryStoreOptions = {}) {
    super("memory store", options, "MemoryStore");
  }

  /** A new, empty store (the same as `new MemoryStore(options)`: nothing to connect to). */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    return new MemoryStore(options);
  }

  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    for (const p of this.prepare(changes, options)) {
      let ns = this.#data.get(p.namespace);
      if (!ns) {
        ns = new Map();
        this.#data.set(p.namespace, ns);
      }
      const key = `${p.entityType}/${p.entityId}`;
      ns.delete(key);
      ns.set(key, p);
    }
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.checkOpen(namespace, options);
    const ns = this.#data.get(namespace);
    if (!ns) return [];
    // Fresh objects from the JSON text: callers may mutate what they load.
    const out: Change[] = [];
    for (const p of ns.values()) {
      if (options?.liveOnly && p.json === undefined) continue;
      out.push(this.loaded(toChange(p)));
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

  /** Removes one namespace, or everything. */
  clear(namespace?: string): void {
    this.checkOpen();
    if (namespace === undefined) this.#data.clear();
    else this.#data.delete(namespace);
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
