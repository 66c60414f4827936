/**
 * The `Repository<T>` contract: aggregates saved whole, with a version per
 * aggregate (1 on first save), optimistic concurrency through
 * `expectedVersion`, a bounded history, optional expiry, deletes and paged
 * listing — and the checks every repository backend shares. Backends:
 * `MemoryRepository` (`statelog/memory`) and the NATS repositories
 * (`statelog/nats`); `describeRepositoryContract` (`statelog/testing`)
 * checks them.
 */
import { type CallOptions, OptionChecker, STORE_DEFAULTS, ValidationError } from "../index.js";

/** What a repository returns after a save. */
export interface SaveResult {
  /** The aggregate's id. */
  readonly id: string;
  /** The aggregate's version after the save: 1 on the first save, +1 per save or delete. */
  readonly version: number;
  /** When the save was stored. */
  readonly savedAt: Date;
}

/** An aggregate with its version metadata. */
export interface Versioned<T> extends SaveResult {
  readonly aggregate: T;
}

/** One entry of an aggregate's history, oldest first. */
export interface HistoryEntry<T> {
  readonly id: string;
  /** The version this entry created. */
  readonly version: number;
  /** When it was stored. */
  readonly savedAt: Date;
  /** True for a delete; then `aggregate` is undefined. */
  readonly deleted: boolean;
  /** The aggregate as saved at this version (undefined for a delete). */
  readonly aggregate: T | undefined;
}

/** Options of {@link Repository.save}. */
export interface RepositorySaveOptions extends CallOptions {
  /**
   * The version the caller expects the aggregate to have now: `0` for "does
   * not exist yet", otherwise the version last loaded or saved. A mismatch
   * fails with a `VersionConflictError { expected, actual }` and writes
   * nothing. @default undefined (no check; the save still gets the next version)
   */
  expectedVersion?: number | undefined;
  /**
   * Expiry of this one save, in seconds, overriding the repository's TTL.
   * When it ends before the older versions' expiry, `MemoryRepository`
   * drops them with it; a NATS bucket (per-message TTL) expires that
   * version only, and the previous one is the newest again. Needs a
   * backend (and server) with per-message TTL; otherwise an `UnsupportedError`.
   * @default the repository's TTL
   */
  ttlSeconds?: number | undefined;
}

/** Options of {@link Repository.delete}. */
export interface RepositoryDeleteOptions extends CallOptions {
  /** As in {@link RepositorySaveOptions.expectedVersion}. */
  expectedVersion?: number | undefined;
}

/** Options of {@link Repository.list}. */
export interface ListOptions extends CallOptions {
  /** How many aggregates to skip (in id order). @default 0 */
  offset?: number | undefined;
  /** Page size (an integer >= 1). @default 20 */
  limit?: number | undefined;
}

/** A page of aggregates, in id order. */
export interface Page<T> {
  readonly items: T[];
  /** Live aggregates in total. */
  readonly total: number;
  readonly offset: number;
  /** The page size asked for. */
  readonly perPage: number;
  /** `floor(offset / perPage) + 1`. */
  readonly page: number;
  /** `ceil(total / perPage)`. */
  readonly totalPages: number;
  /** True exactly when `offset + items.length < total`. */
  readonly hasMore: boolean;
}

/** What a repository can do beyond the basics. */
export interface RepositoryCapabilities {
  /** Aggregates expire after the repository's `ttlSeconds`. */
  readonly ttl: boolean;
  /** `save(…, { ttlSeconds })` works (per-aggregate TTL). */
  readonly perSaveTtl: boolean;
  /** Data survives a restart of the process. */
  readonly durable: boolean;
}

/** A repository of whole aggregates of one type. */
export interface Repository<T> extends AsyncDisposable {
  /** The aggregate type this repository stores. */
  readonly aggregateType: string;
  readonly capabilities: RepositoryCapabilities;
  /**
   * Stores `aggregate` as its next version. Concurrent saves never lose a
   * version: each gets its own, strictly increasing.
   * @throws VersionConflictError when `expectedVersion` does not match
   * @throws InvalidNameError | InvalidValueError | TooLargeError for bad input (nothing written)
   */
  save(aggregate: T, options?: RepositorySaveOptions): Promise<SaveResult>;
  /** The latest version, or `undefined` when absent, deleted or expired. A copy. */
  load(id: string, options?: CallOptions): Promise<T | undefined>;
  /** Like {@link load}, with the version and save time. */
  loadVersioned(id: string, options?: CallOptions): Promise<Versioned<T> | undefined>;
  /** True when {@link load} would return an aggregate. */
  exists(id: string, options?: CallOptions): Promise<boolean>;
  /**
   * Deletes the aggregate. A delete takes the next version (so a stale save
   * after a delete conflicts) and stays in the history. Returns false (and
   * writes nothing) when there was nothing to delete.
   */
  delete(id: string, options?: RepositoryDeleteOptions): Promise<boolean>;
  /** The kept versions, oldest first, deletes included; at most `history` entries. `[]` when unknown. */
  history(id: string, options?: CallOptions): Promise<HistoryEntry<T>[]>;
  /** A page of live aggregates in id order. */
  list(options?: ListOptions): Promise<Page<T>>;
  /** Releases resources (never a client it was given); later calls fail with a `ClosedError`. */
  close(): Promise<void>;
}

/** Options shared by every repository (a backend's options extend these). */
export interface RepositoryOptions<T> {
  /** Extracts an aggregate's id. @default the aggregate's string `id` property */
  idOf?: (aggregate: T) => string;
  /** Versions kept per aggregate (saves and deletes), an integer from 1 to 64. @default 1 */
  history?: number;
  /** Seconds after which a saved version expires; 0 = never. @default 0 */
  ttlSeconds?: number;
  /** Largest aggregate, in UTF-8 bytes of JSON. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
}

/** Defaults of {@link RepositoryOptions} and of {@link ListOptions}. */
export const REPOSITORY_DEFAULTS = {
  /** @default 1 */
  history: 1,
  /** @default 0 (never expire) */
  ttlSeconds: 0,
  /** @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /** Page size of `list`. @default 20 */
  pageSize: 20,
} as const;

/** Largest history a repository keeps (NATS KV's limit). */
export const MAX_HISTORY = 64;

/** The option names of {@link RepositoryOptions}, for a backend's `OptionChecker.known` list. */
export const REPOSITORY_OPTION_NAMES: readonly string[] = ["idOf", "history", "ttlSeconds", "maxValueBytes"];

/** Old spellings of repository options and their names now, for `OptionChecker.known`'s hints. */
export const REPOSITORY_RENAMED_OPTIONS: Readonly<Record<string, string>> = {
  maxAggregateBytes: "maxValueBytes",
};

/** {@link RepositoryOptions} with their defaults filled in and checked. */
export interface CheckedRepositoryOptions<T> {
  readonly idOf: (aggregate: T) => string;
  readonly history: number;
  readonly ttlSeconds: number;
  readonly maxValueBytes: number;
}

/**
 * Checks the options every repository shares and fills in their defaults:
 * what a repository backend calls first in its `open` (or constructor).
 * @param owner the class name, for messages: `"MemoryRepository"`
 * @param ownOptionNames the backend's own option names; any other unknown
 *   option is refused (with a hint for old spellings such as `maxAggregateBytes`)
 * @param renamed the backend's own old spellings and their names now, hints
 *   added to {@link REPOSITORY_RENAMED_OPTIONS} (e.g. `{ bucketName: "bucket" }`)
 * @throws ConfigurationError naming the option, what it accepts and what it got
 */
export function checkRepositoryOptions<T>(
  owner: string,
  options: RepositoryOptions<T> | undefined,
  ownOptionNames: readonly string[],
  renamed: Readonly<Record<string, string>> = {},
): CheckedRepositoryOptions<T> {
  const check = new OptionChecker<RepositoryOptions<T>>(owner, options, REPOSITORY_DEFAULTS);
  check.known([...REPOSITORY_OPTION_NAMES, ...ownOptionNames], { ...REPOSITORY_RENAMED_OPTIONS, ...renamed });
  const history = check.integer("history", { min: 1, max: MAX_HISTORY });
  const ttlSeconds = check.number("ttlSeconds", { min: 0 });
  const maxValueBytes = check.integer("maxValueBytes", { min: 1 });
  const idOf = check.optionalFunction("idOf") ?? defaultIdOf;
  return { idOf, history, ttlSeconds, maxValueBytes };
}

/**
 * The default `idOf`: the aggregate's string `id`.
 * @throws ValidationError when the aggregate has no string `id`
 */
export function defaultIdOf(aggregate: unknown): string {
  const id = (aggregate as { id?: unknown } | null)?.id;
  if (typeof id !== "string") {
    throw new ValidationError("aggregate.id", "the aggregate has no string `id`; pass an `idOf` function");
  }
  return id;
}

/**
 * Checks the `expectedVersion` of a save or delete: undefined or an
 * integer >= 0. A backend calls it before comparing versions.
 * @throws ValidationError
 */
export function checkExpectedVersion(v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ValidationError("expectedVersion", `must be an integer >= 0, got ${String(v)}`);
  }
}

/**
 * Checks `history` and `ttlSeconds` options (for a backend that reads them
 * without {@link checkRepositoryOptions}).
 * @throws ConfigurationError
 */
export function checkRepositoryLimits(history: number, ttlSeconds: number, owner = "Repository"): void {
  const check = new OptionChecker<RepositoryOptions<unknown>>(owner, { history, ttlSeconds });
  check.integer("history", { min: 1, max: MAX_HISTORY });
  check.number("ttlSeconds", { min: 0 });
}

/**
 * Checks the `ttlSeconds` of one save (a call argument, not an option):
 * a finite number of seconds >= 0, 0 = never expire.
 * @throws ValidationError
 */
export function checkTtlSeconds(ttlSeconds: unknown): number {
  if (typeof ttlSeconds !== "number" || !Number.isFinite(ttlSeconds) || ttlSeconds < 0) {
    throw new ValidationError(
      "ttlSeconds",
      `must be a number of seconds >= 0 (0 = no expiry), got ${String(ttlSeconds)}`,
    );
  }
  return ttlSeconds;
}

/**
 * Builds a page from all live items, sorted by id: `items` are
 * `sorted[offset, offset + limit)`, `page = floor(offset / limit) + 1`,
 * `totalPages = ceil(total / limit)`, `hasMore = offset + items.length < total`.
 * A backend calls `paginate([], options)` first to check `offset` and
 * `limit` before any I/O.
 * @throws ValidationError for a bad `offset` or `limit`
 */
export function paginate<T>(sorted: readonly T[], options: ListOptions | undefined): Page<T> {
  const offset = options?.offset ?? 0;
  const perPage = options?.limit ?? REPOSITORY_DEFAULTS.pageSize;
  if (!Number.isInteger(offset) || offset < 0) {
    throw new ValidationError("offset", `must be an integer >= 0, got ${String(offset)}`);
  }
  if (!Number.isInteger(perPage) || perPage < 1) {
    throw new ValidationError("limit", `must be an integer >= 1, got ${String(perPage)}`);
  }
  const items = sorted.slice(offset, offset + perPage);
  const total = sorted.length;
  return {
    items,
    total,
    offset,
    perPage,
    page: Math.floor(offset / perPage) + 1,
    totalPages: Math.ceil(total / perPage),
    hasMore: offset + items.length < total,
  };
}

/** Compares ids the way `list` orders them (UTF-16 code units, like `Array.prototype.sort`). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
