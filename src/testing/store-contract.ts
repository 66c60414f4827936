/**
 * The Store conformance suite: one set of tests that every backend passes
 * unchanged (the contract of docs/concepts.md). Backend differences are
 * declared capabilities and show up as visible skips. The tests live in
 * one function per area (store-data-areas.ts, store-lifecycle-areas.ts).
 */
import { type Change, STORE_DEFAULTS, type Store } from "../index.js";
import { checkContractOptions } from "./fixtures.js";
import {
  describeBasics,
  describeDeletes,
  describeNames,
  describeOrdering,
  describeValues,
} from "./store-data-areas.js";
import { describeCapabilities, describeClose, describeConcurrency, describeModel } from "./store-lifecycle-areas.js";
import { afterEach, describe } from "./vitest.js";

export { HOSTILE_IDS, HOSTILE_NAMES, uniqueName } from "./fixtures.js";

/** Options of {@link describeStoreContract}. */
export interface StoreContractOptions {
  /**
   * Closes `store` and opens a new one on the same data (a process
   * restart). Given for durable stores; enables the restart tests.
   */
  reopen?: (store: Store) => Promise<Store>;
  /**
   * Runs after writes and before every load the suite checks: a variant
   * can compact, reopen or wait for replication here and return the store
   * to load from. @default returns `store`
   */
  beforeLoad?: (store: Store, namespaces: readonly string[]) => Promise<Store>;
  /** The `maxValueBytes` the factory configures. @default 1 MiB */
  maxValueBytes?: number;
  /** Runs of the property-based test. @default 60 */
  propertyRuns?: number;
  /** Per-test timeout, in milliseconds. @default 30000 */
  timeoutMs?: number;
}

/** What an area of the Store suite works with. */
export interface StoreSuite {
  /** The backend's name, for test names and skip messages. */
  readonly name: string;
  readonly options: StoreContractOptions;
  /** The `maxValueBytes` the factory configures. */
  readonly maxBytes: number;
  /** Stores to close after each test. */
  readonly open: Store[];
  /** A fresh store from the factory, closed after the test. */
  fresh(): Promise<Store>;
  /** Runs `options.beforeLoad`: the store to load from. */
  settle(store: Store, namespaces: readonly string[]): Promise<Store>;
  /** {@link StoreSuite.settle}, then a load of `namespace`. */
  loadAfter(store: Store, namespace: string): Promise<{ store: Store; changes: Change[] }>;
}

/**
 * Registers the Store conformance tests for one backend.
 * @param name shown in the test names
 * @param factory creates a fresh, empty-enough store (tests use unique namespaces)
 */
export function describeStoreContract(
  name: string,
  factory: () => Store | Promise<Store>,
  options: StoreContractOptions = {},
): void {
  checkContractOptions("describeStoreContract", options, [
    "reopen",
    "beforeLoad",
    "maxValueBytes",
    "propertyRuns",
    "timeoutMs",
  ]);
  const timeout = options.timeoutMs ?? 30_000;
  const maxBytes = options.maxValueBytes ?? STORE_DEFAULTS.maxValueBytes;
  const open: Store[] = [];

  async function fresh(): Promise<Store> {
    const store = await factory();
    open.push(store);
    return store;
  }
  async function settle(store: Store, namespaces: readonly string[]): Promise<Store> {
    if (!options.beforeLoad) return store;
    const next = await options.beforeLoad(store, namespaces);
    if (next !== store) open.push(next);
    return next;
  }
  async function loadAfter(store: Store, namespace: string): Promise<{ store: Store; changes: Change[] }> {
    const s = await settle(store, [namespace]);
    return { store: s, changes: await s.load(namespace) };
  }

  const suite: StoreSuite = { name, options, maxBytes, open, fresh, settle, loadAfter };

  describe(`Store contract: ${name}`, { timeout }, () => {
    afterEach(async () => {
      const stores = open.splice(0);
      await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    });

    describeBasics(suite);
    describeOrdering(suite);
    describeDeletes(suite);
    describeValues(suite);
    describeNames(suite);
    describeConcurrency(suite);
    describeClose(suite);
    describeCapabilities(suite);
    describeModel(suite);
  });
}
