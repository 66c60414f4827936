/**
 * `MemoryRepository`: the `Repository<T>` contract in process memory,
 * with the same versions, conflicts, history limit, TTL and paging as the
 * NATS repositories, for users' unit tests.
 */
import {
  type CallOptions,
  OpenState,
  OptionChecker,
  throwIfAborted,
  toJsonWithin,
  VersionConflictError,
  validateEntityId,
  validateEntityType,
} from "../index.js";
import {
  BaseRepository,
  checkExpectedVersion,
  checkRepositoryOptions,
  checkTtlSeconds,
  compareIds,
  type HistoryEntry,
  type ListOptions,
  type Page,
  paginate,
  type RepositoryCapabilities,
  type RepositoryDeleteOptions,
  type RepositoryOptions,
  type RepositorySaveOptions,
  type SaveResult,
  type Versioned,
} from "../repository/index.js";

/** Options of {@link MemoryRepository}. */
export interface MemoryRepositoryOptions<T> extends RepositoryOptions<T> {
  /** The aggregate type name (a valid entity type name). @default "aggregate" */
  aggregateType?: string;
  /** The clock for `savedAt` and expiry. @default () => new Date() */
  clock?: () => Date;
}

/** Defaults of {@link MemoryRepositoryOptions} beyond those of every repository (`REPOSITORY_DEFAULTS`). */
export const MEMORY_REPOSITORY_DEFAULTS = {
  /** @default "aggregate" */
  aggregateType: "aggregate",
} as const;

interface Entry {
  version: number;
  savedAt: number;
  /** When it expires (ms since epoch), or Infinity. */
  expiresAt: number;
  /** Aggregate JSON, undefined for a delete. */
  json: string | undefined;
}

/** A repository in memory. */
export class MemoryRepository<T> extends BaseRepository<T> {
  readonly aggregateType: string;
  readonly capabilities: RepositoryCapabilities = { ttl: true, perSaveTtl: true, durable: false };
  readonly #entries = new Map<string, Entry[]>();
  readonly #idOf: (aggregate: T) => string;
  readonly #history: number;
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #clock: () => Date;
  readonly #state: OpenState;

  /** @throws ConfigurationError for an invalid or unknown option */
  constructor(options: MemoryRepositoryOptions<T> = {}) {
    super();
    const shared = checkRepositoryOptions("MemoryRepository", options, ["aggregateType", "clock"]);
    const check = new OptionChecker<MemoryRepositoryOptions<T>>(
      "MemoryRepository",
      options,
      MEMORY_REPOSITORY_DEFAULTS,
    );
    this.aggregateType = check.custom("aggregateType", (v) => {
      try {
        validateEntityType(v);
        return undefined;
      } catch {
        return "an entity type name (1 to 255 UTF-8 bytes, no '/' or control characters)";
      }
    });
    this.#clock = check.optionalFunction("clock") ?? (() => new Date());
    this.#history = shared.history;
    this.#ttlMs = shared.ttlSeconds === 0 ? Number.POSITIVE_INFINITY : shared.ttlSeconds * 1000;
    this.#idOf = shared.idOf;
    this.#maxBytes = shared.maxValueBytes;
    this.#state = new OpenState(`${this.aggregateType} repository`);
  }

  /** A new, empty repository (the same as `new MemoryRepository(options)`: nothing to connect to). */
  static async open<T>(options: MemoryRepositoryOptions<T> = {}): Promise<MemoryRepository<T>> {
    return new MemoryRepository<T>(options);
  }

  async save(aggregate: T, options?: RepositorySaveOptions): Promise<SaveResult> {
    this.#check(options);
    checkExpectedVersion(options?.expectedVersion);
    const id = this.#idOf(aggregate);
    validateEntityId(id);
    const json = toJsonWithin(aggregate, this.#maxBytes, `${this.aggregateType} ${JSON.stringify(id)}`, "aggregate");
    let ttlMs = this.#ttlMs;
    if (options?.ttlSeconds !== undefined) {
      checkTtlSeconds(options.ttlSeconds);
      ttlMs = options.ttlSeconds === 0 ? Number.POSITIVE_INFINITY : options.ttlSeconds * 1000;
    }
    const entries = this.#live(id);
    const actual = entries.at(-1)?.version ?? 0;
    if (options?.expectedVersion !== undefined && options.expectedVersion !== actual) {
      throw new VersionConflictError(
        options.expectedVersion,
        actual,
        `${this.aggregateType} ${JSON.stringify(id)} version`,
      );
    }
    const now = this.#clock().getTime();
    this.#append(id, entries, { version: actual + 1, savedAt: now, expiresAt: now + ttlMs, json });
    return { id, version: actual + 1, savedAt: new Date(now) };
  }

  async loadVersioned(id: string, options?: CallOptions): Promise<Versioned<T> | undefined> {
    this.#check(options);
    validateEntityId(id);
    const last = this.#live(id).at(-1);
    if (!last || last.json === undefined) return undefined;
    return { id, version: last.version, savedAt: new Date(last.savedAt), aggregate: JSON.parse(last.json) };
  }

  async delete(id: string, options?: RepositoryDeleteOptions): Promise<boolean> {
    this.#check(options);
    validateEntityId(id);
    checkExpectedVersion(options?.expectedVersion);
    const entries = this.#live(id);
    const last = entries.at(-1);
    const actual = last?.version ?? 0;
    if (options?.expectedVersion !== undefined && options.expectedVersion !== actual) {
      throw new VersionConflictError(
        options.expectedVersion,
        actual,
        `${this.aggregateType} ${JSON.stringify(id)} version`,
      );
    }
    if (!last || last.json === undefined) return false;
    const now = this.#clock().getTime();
    this.#append(id, entries, { version: actual + 1, savedAt: now, expiresAt: now + this.#ttlMs, json: undefined });
    return true;
  }

  async history(id: string, options?: CallOptions): Promise<HistoryEntry<T>[]> {
    this.#check(options);
    validateEntityId(id);
    return this.#live(id).map((e) => ({
      id,
      version: e.version,
      savedAt: new Date(e.savedAt),
      deleted: e.json === undefined,
      aggregate: e.json === undefined ? undefined : JSON.parse(e.json),
    }));
  }

  async list(options?: ListOptions): Promise<Page<T>> {
    this.#check(options);
    const live: [string, string][] = [];
    for (const id of this.#entries.keys()) {
      const last = this.#live(id).at(-1);
      if (last?.json !== undefined) live.push([id, last.json]);
    }
    live.sort((a, b) => compareIds(a[0], b[0]));
    const page = paginate(live, options);
    return { ...page, items: page.items.map(([, json]) => JSON.parse(json) as T) };
  }

  /** Removes everything. */
  clear(): void {
    this.#state.check();
    this.#entries.clear();
  }

  /** Drops everything; later calls fail with a `ClosedError`. Idempotent. */
  async close(): Promise<void> {
    if (this.#state.close()) this.#entries.clear();
  }

  #check(options: CallOptions | undefined): void {
    this.#state.check();
    throwIfAborted(options?.signal);
  }

  /** The entries of `id` after its newest expired one (the others are dropped). */
  #live(id: string): Entry[] {
    const entries = this.#entries.get(id);
    if (!entries) return [];
    const now = this.#clock().getTime();
    // A version that expired takes the older ones with it (a save's own ttlSeconds can end it before them):
    // an expired newest version never brings an older one back.
    let first = entries.length;
    while (first > 0 && (entries[first - 1] as Entry).expiresAt > now) first--;
    const live = first === 0 ? entries : entries.slice(first);
    if (live.length === 0) this.#entries.delete(id);
    else if (live.length !== entries.length) this.#entries.set(id, live);
    return live;
  }

  #append(id: string, entries: Entry[], entry: Entry): void {
    const next = [...entries, entry];
    this.#entries.set(id, next.length > this.#history ? next.slice(next.length - this.#history) : next);
  }
}
