/**
 * `statelog/memory`: every contract of the package in process memory —
 * a Store, an event store, a versioned repository, and the Map-backed
 * entity repository the Manager restores into. Nothing survives a restart:
 * for tests, and for caches in front of a durable backend.
 */

export { MapEntityRepository } from "./entity-repository.js";
export { MemoryEventStore, type MemoryEventStoreOptions } from "./event-store.js";
export {
  MEMORY_READ_MODEL_STORE_DEFAULTS,
  MemoryReadModelStore,
  type MemoryReadModelStoreOptions,
} from "./read-model-store.js";
export { MEMORY_REPOSITORY_DEFAULTS, MemoryRepository, type MemoryRepositoryOptions } from "./repository.js";
export { MemorySnapshotStore, type MemorySnapshotStoreOptions } from "./snapshot-store.js";
export { MemoryStore, type MemoryStoreOptions } from "./store.js";
