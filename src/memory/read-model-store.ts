/**
 * `MemoryReadModelStore`: read models in process memory, with declared
 * sorted indexes that make filtered and sorted queries on hot fields fast.
 * Nothing survives a restart: for tests, and for read models rebuilt from
 * their events when a process starts.
 */
import { OptionChecker, STORE_DEFAULTS } from "../index.js";
import {
  checkIndexesOption,
  type PreparedWrite,
  type ProjectionStatusRecord,
  type ReadModelStoreCapabilities,
  ReadModelTable,
  TableReadModelStore,
} from "../read-models/index.js";

/** Options of {@link MemoryReadModelStore.open}. */
export interface MemoryReadModelStoreOptions {
  /**
   * Dotted paths into the models (`"customer.id"`, `"total"`) to keep a
   * sorted index on, for every model type: filters and the first sort key
   * on them skip the full scan (see docs/read-models.md).
   * @default [] (no index)
   */
  indexes?: readonly string[];
  /** Largest model, in bytes of UTF-8 JSON; over it a save fails with a `TooLargeError`. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
}

/** Defaults of {@link MemoryReadModelStoreOptions}. */
export const MEMORY_READ_MODEL_STORE_DEFAULTS = {
  /** @default [] */
  indexes: [] as readonly string[],
  /** @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
} as const;

/** Read models in memory. Open it with {@link MemoryReadModelStore.open} (or `new`). */
export class MemoryReadModelStore extends TableReadModelStore {
  readonly capabilities: ReadModelStoreCapabilities = { atomicCheckpoint: true, indexes: true, durable: false };
  /** The declared index paths. */
  readonly indexes: readonly string[];

  /** @throws ConfigurationError for an invalid or unknown option */
  constructor(options: MemoryReadModelStoreOptions = {}) {
    const check = new OptionChecker("MemoryReadModelStore", options, MEMORY_READ_MODEL_STORE_DEFAULTS).known([
      "indexes",
      "maxValueBytes",
    ]);
    const indexes = checkIndexesOption(check);
    const maxValueBytes = check.integer("maxValueBytes", { min: 1 });
    super("memory read-model store", new ReadModelTable(indexes), maxValueBytes);
    this.indexes = this.table.indexes;
  }

  /** A new, empty store (the same as `new MemoryReadModelStore(options)`). */
  static async open(options: MemoryReadModelStoreOptions = {}): Promise<MemoryReadModelStore> {
    return new MemoryReadModelStore(options);
  }

  /** How many models are stored (of `modelType`, or of every type). */
  count(modelType?: string): number {
    this.checkOpen();
    return this.table.count(modelType);
  }

  /** Nothing to write: the table is the store. */
  protected async persist(
    _writes: readonly PreparedWrite[],
    _revisions: readonly number[],
    _status: ProjectionStatusRecord | undefined,
  ): Promise<void> {}

  protected async closeResources(): Promise<void> {
    this.table.clear();
  }
}
