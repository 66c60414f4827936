/**
 * `statelog/repository`: the backend-neutral `Repository<T>` contract
 * (versioned aggregates), its defaults, and the checks every repository
 * backend shares (`checkRepositoryOptions`, `checkExpectedVersion`,
 * `paginate`, …) and `BaseRepository`, the base a repository backend
 * extends (see docs/backends.md). Implementations:
 * `MemoryRepository` in `statelog/memory`, the NATS repositories in
 * `statelog/nats`. And the event-sourced repository
 * (`EventSourcedRepository`, docs/aggregates.md) with its `SnapshotStore`
 * contract; the snapshot stores live in the backends too.
 */
export { BaseRepository } from "./base.js";

// Event-sourced repositories: aggregates folded from their events, and their snapshots.
export { EventSourcedRepository } from "./event-sourced.js";
export {
  type AggregateEvent,
  type AggregateLoadOptions,
  type AggregateSaveOptions,
  type AggregateSaveResult,
  type DecideContext,
  type Decision,
  EVENT_SOURCED_REPOSITORY_DEFAULTS,
  type EventSourcedRepositoryOptions,
  type HandleOptions,
  type HandleResult,
  type LoadedAggregate,
  type SnapshotErrorInfo,
} from "./event-sourced-options.js";
export {
  type AggregateSnapshot,
  checkSnapshot,
  checkSnapshotLoad,
  checkSnapshotStoreOptions,
  checkSnapshotVersion,
  MAX_SNAPSHOTS_PER_STREAM,
  pickSnapshot,
  retainSnapshots,
  SNAPSHOT_STORE_DEFAULTS,
  SNAPSHOT_STORE_OPTION_NAMES,
  type SnapshotJson,
  type SnapshotLoadOptions,
  type SnapshotStore,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
  snapshotFromJson,
  snapshotStateJson,
} from "./snapshots.js";
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
