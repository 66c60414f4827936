/**
 * The `Repository<T>` contract (SEMANTICS.md, "Repositories on NATS"):
 * aggregates saved whole, with a version per aggregate (1 on first save),
 * optimistic concurrency through `expectedVersion`, a bounded history,
 * optional expiry, deletes and paged listing. Backends: `MemoryRepository`
 * (here) and the NATS repositories (`statelog/nats`).
 */
import { ValidationError } from "../core/errors.js";
import type { CallOptions } from "../core/store.js";

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
   * Needs a backend (and server) with per-message TTL; otherwise an
   * `UnsupportedError`. @default the repository's TTL
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
  /** Page size. @default 20 */
  limit?: number | undefined;
}

/** A page of aggregates, in id order (SEMANTICS.md's pagination formula). */
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

/** Options shared by every repository. */
export interface RepositoryOptions<T> {
  /** Extracts an aggregate's id. @default `aggregate.id` (must be a string) */
  idOf?: (aggregate: T) => string;
  /** Versions kept per aggregate (saves and deletes), 1–64. @default 1 */
  history?: number;
  /** Seconds after which a saved version expires; 0 = never. @default 0 */
  ttlSeconds?: number;
  /** Largest aggregate, in bytes of UTF-8 JSON. @default 1 MiB */
  maxValueBytes?: number;
}

/** Default page size of {@link Repository.list}. */
export const DEFAULT_PAGE_SIZE = 20;
/** Largest history a repository keeps (NATS KV's limit). */
export const MAX_HISTORY = 64;

/** The default `idOf`: the aggregate's string `id`. */
export function defaultIdOf(aggregate: unknown): string {
  const id = (aggregate as { id?: unknown } | null)?.id;
  if (typeof id !== "string") {
    throw new ValidationError("aggregate.id", "the aggregate has no string `id`; pass an `idOf` function");
  }
  return id;
}

/** Checks an expected version: undefined or an integer >= 0. */
export function checkExpectedVersion(v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ValidationError("expectedVersion", `must be an integer >= 0, got ${String(v)}`);
  }
}

/** Checks `history` and `ttlSeconds` options. */
export function checkRepositoryLimits(history: number, ttlSeconds: number): void {
  if (!Number.isInteger(history) || history < 1 || history > MAX_HISTORY) {
    throw new ValidationError("history", `must be an integer from 1 to ${MAX_HISTORY}, got ${String(history)}`);
  }
  if (typeof ttlSeconds !== "number" || !Number.isFinite(ttlSeconds) || ttlSeconds < 0) {
    throw new ValidationError(
      "ttlSeconds",
      `must be a number of seconds >= 0 (0 = no expiry), got ${String(ttlSeconds)}`,
    );
  }
}

/** Builds a page from all live items, sorted by id (SEMANTICS.md's formula). */
export function paginate<T>(sorted: readonly T[], options: ListOptions | undefined): Page<T> {
  const offset = options?.offset ?? 0;
  const perPage = options?.limit ?? DEFAULT_PAGE_SIZE;
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
