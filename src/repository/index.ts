/**
 * `statelog/repository`: the backend-neutral `Repository<T>` contract and
 * `MemoryRepository`. NATS implementations live in `statelog/nats`.
 */
export { MemoryRepository, type MemoryRepositoryOptions } from "./memory.js";
export {
  checkExpectedVersion,
  checkRepositoryLimits,
  compareIds,
  DEFAULT_PAGE_SIZE,
  defaultIdOf,
  type HistoryEntry,
  type ListOptions,
  MAX_HISTORY,
  type Page,
  paginate,
  type Repository,
  type RepositoryCapabilities,
  type RepositoryDeleteOptions,
  type RepositoryOptions,
  type RepositorySaveOptions,
  type SaveResult,
  type Versioned,
} from "./types.js";
