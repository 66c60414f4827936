/**
 * `statelog/union`: several stores as one, for redundancy (seed 2: "save to
 * both, load from either"; SEMANTICS.md, "Union of stores").
 */
import { type Change, type ChangeInput, changeKey } from "../core/change.js";
import {
  ConfigurationError,
  ErrorCode,
  messageOf,
  PartialWriteError,
  StatelogError,
  throwIfAborted,
} from "../core/errors.js";
import {
  applyLoadOptions,
  type CallOptions,
  type LoadOptions,
  OpenState,
  prepareChanges,
  type SaveOptions,
  type Store,
  type StoreCapabilities,
  toChange,
} from "../core/store.js";
import { validateNamespace } from "../core/validation.js";

/** How `load` treats a store that fails. */
export const ReadPolicy = {
  /** Any failed store fails the load. */
  All: "all",
  /** A failed store is skipped and reported through `onSkippedStore`; the load fails only if every store failed. */
  Any: "any",
} as const;
export type ReadPolicy = (typeof ReadPolicy)[keyof typeof ReadPolicy];

/** Options of {@link UnionStore}. */
export interface UnionStoreOptions {
  /** What a failed store does to a load. @default "all" */
  readPolicy?: ReadPolicy;
  /** Called for each store skipped by a load under the `"any"` policy. */
  onSkippedStore?: (report: { index: number; namespace: string; error: unknown }) => void;
  /** Largest entity in bytes of JSON, checked once before any store is written. @default 1 MiB */
  maxValueBytes?: number;
  /** Clock for changes without a timestamp, so every store gets the same one. @default () => new Date() */
  clock?: () => Date;
}

/** A union load failed: `failures` says which stores failed and why. */
export class UnionLoadError extends StatelogError {
  constructor(
    readonly namespace: string,
    readonly failures: readonly { index: number; error: unknown }[],
  ) {
    super(
      ErrorCode.Unavailable,
      `union load of ${JSON.stringify(namespace)}: ${failures.map((f) => `store #${f.index}: ${messageOf(f.error)}`).join("; ")}`,
      { cause: failures[0]?.error },
    );
    this.name = "UnionLoadError";
  }
}

/**
 * Writes to every store in order; loads from all of them and merges per
 * key: the later timestamp wins, on a tie the earlier store in the list.
 */
export class UnionStore implements Store {
  readonly capabilities: StoreCapabilities;
  readonly #stores: readonly Store[];
  readonly #options: UnionStoreOptions;
  readonly #state = new OpenState("union store");

  constructor(stores: readonly Store[], options: UnionStoreOptions = {}) {
    if (stores.length === 0) throw new ConfigurationError("UnionStore needs at least one store");
    const policy = options.readPolicy ?? ReadPolicy.All;
    if (policy !== ReadPolicy.All && policy !== ReadPolicy.Any) {
      throw new ConfigurationError(`UnionStore readPolicy must be "all" or "any", got ${JSON.stringify(policy)}`);
    }
    this.#stores = [...stores];
    this.#options = { ...options, readPolicy: policy };
    this.capabilities = {
      compact: stores.some((s) => s.capabilities.compact),
      listNamespaces: stores.every((s) => s.capabilities.listNamespaces),
      durable: stores.some((s) => s.capabilities.durable),
    };
  }

  /** The stores, in order. */
  get stores(): readonly Store[] {
    return this.#stores;
  }

  /**
   * Saves to every store in order (all are attempted).
   * @throws PartialWriteError (`targets: "stores"`) naming the stores that took the changes and those that did not
   */
  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    this.#state.check();
    throwIfAborted(options?.signal);
    // Validate once and fix timestamps so every store stores the same change.
    const prepared = prepareChanges(changes, this.#options).map(toChange);
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
      // Bad input fails the same way everywhere: surface that error itself.
      if (saved.length === 0 && failed.length === 1) throw failed[0]?.error;
      throw new PartialWriteError({ operation: "union save", targets: "stores", written: saved, failed });
    }
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.#state.check();
    validateNamespace(namespace);
    throwIfAborted(options?.signal);
    const results = await Promise.allSettled(this.#stores.map((s) => s.load(namespace, { signal: options?.signal })));
    const failures: { index: number; error: unknown }[] = [];
    results.forEach((r, index) => {
      if (r.status === "rejected") failures.push({ index, error: r.reason });
    });
    if (failures.length > 0) {
      if (this.#options.readPolicy === ReadPolicy.All || failures.length === results.length) {
        throw new UnionLoadError(namespace, failures);
      }
      for (const f of failures) this.#options.onSkippedStore?.({ ...f, namespace });
    }
    // Per key: later timestamp wins; on a tie, the earlier store. Order: the
    // first store's write order, then keys only later stores hold, in theirs.
    const winners = new Map<string, Change>();
    for (const r of results) {
      if (r.status !== "fulfilled") continue;
      for (const change of r.value) {
        const key = changeKey(change);
        const prev = winners.get(key);
        if (!prev || change.timestamp.getTime() > prev.timestamp.getTime()) winners.set(key, change);
      }
    }
    return applyLoadOptions([...winners.values()], options);
  }

  /** Compacts `namespace` in every store that can. */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.#state.check();
    validateNamespace(namespace);
    for (const s of this.#stores) {
      throwIfAborted(options?.signal);
      if (s.capabilities.compact && s.compact) await s.compact(namespace, options);
    }
  }

  /** The namespaces of all stores together (when every store can list them). */
  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.#state.check();
    const lists = await Promise.all(
      this.#stores.map((s) => {
        if (!s.listNamespaces) throw new ConfigurationError("a store of this union cannot list namespaces");
        return s.listNamespaces(options);
      }),
    );
    return [...new Set(lists.flat())];
  }

  /** Closes every store (all are attempted; the first error is thrown). */
  async close(): Promise<void> {
    if (!this.#state.close()) return;
    const results = await Promise.allSettled(this.#stores.map((s) => s.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
