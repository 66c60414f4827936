/**
 * `statelog/repository`: the backend-neutral `Repository<T>` contract
 * (versioned aggregates), its defaults, and the checks every repository
 * backend shares (`checkRepositoryOptions`, `checkExpectedVersion`,
 * `paginate`, …) and `BaseRepository`, the base a repository backend
 * extends (see docs/backends.md). Implementations:
 * `MemoryRepository` in `statelog/memory`, the NATS repositories in
 * `statelog/nats`.
 */
export { BaseRepository } from "./base.js";
export {
  type CheckedRepositoryOptions,
  checkExpectedVersion,
  checkRepositoryLimits,
  checkRepositoryOptions,
  checkTtlSeconds,
  compareIds,
  defaultIdOf,
  type HistoryEntry,
  type ListOptions,
  MAX_HISTORY,
  type Page,
  paginate,
  REPOSITORY_DEFAULTS,
  REPOSITORY_OPTION_NAMES,
  REPOSITORY_RENAMED_OPTIONS,
  type Repository,
  type RepositoryCapabilities,
  type RepositoryDeleteOptions,
  type RepositoryOptions,
  type RepositorySaveOptions,
  type SaveResult,
  type Versioned,
} from "./types.js";
