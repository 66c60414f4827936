/**
 * `BaseRepository`: the part of the `Repository<T>` contract that follows
 * from the rest, so that a backend writes it once. Extend it and implement
 * `save`, `loadVersioned`, `delete`, `history`, `list` and `close`.
 */
import type { CallOptions } from "../index.js";
import type {
  HistoryEntry,
  ListOptions,
  Page,
  Repository,
  RepositoryCapabilities,
  RepositoryDeleteOptions,
  RepositorySaveOptions,
  SaveResult,
  Versioned,
} from "./types.js";

/**
 * A documented public base for repository backends: `load` and `exists`
 * are answered through {@link loadVersioned}, and `[Symbol.asyncDispose]`
 * is {@link close}. `MemoryRepository` and the NATS repositories extend it.
 */
export abstract class BaseRepository<T> implements Repository<T> {
  abstract readonly aggregateType: string;
  abstract readonly capabilities: RepositoryCapabilities;

  abstract save(aggregate: T, options?: RepositorySaveOptions): Promise<SaveResult>;
  abstract loadVersioned(id: string, options?: CallOptions): Promise<Versioned<T> | undefined>;
  abstract delete(id: string, options?: RepositoryDeleteOptions): Promise<boolean>;
  abstract history(id: string, options?: CallOptions): Promise<HistoryEntry<T>[]>;
  abstract list(options?: ListOptions): Promise<Page<T>>;
  abstract close(): Promise<void>;

  /** The latest version's aggregate (see {@link loadVersioned}), or `undefined`. */
  async load(id: string, options?: CallOptions): Promise<T | undefined> {
    return (await this.loadVersioned(id, options))?.aggregate;
  }

  /** True when {@link loadVersioned} finds a live aggregate. */
  async exists(id: string, options?: CallOptions): Promise<boolean> {
    return (await this.loadVersioned(id, options)) !== undefined;
  }

  /** {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
