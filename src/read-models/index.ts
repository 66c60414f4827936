/**
 * `statelog/read-models`: the read-model contract — read models with
 * metadata and revisions, queries, and the status of the projections that
 * keep them current.
 */

export {
  CACHED_READ_MODEL_STORE_DEFAULTS,
  CachedReadModelStore,
  type CachedReadModelStoreOptions,
  type ReadModelCacheStats,
} from "./cache.js";
export {
  type AtomicCheckpointStore,
  GENERATION_MODEL_TYPE,
  type GenerationPointer,
  hasAtomicCheckpoint,
  type Projection,
  RETRY_POLICY_DEFAULTS,
  type ReadModelWrite,
  type RetryPolicy,
} from "./projection.js";
export { PROJECTOR_DEFAULTS, Projector, type ProjectorOptions, type WaitForCatchUpOptions } from "./projector.js";
export { ReadModels } from "./read-models.js";
export {
  FilterOperator,
  ProjectionStatus,
  type ProjectionStatusRecord,
  type Query,
  type QueryFilter,
  type QueryResult,
  type QuerySort,
  type ReadModelMetadata,
  type ReadModelSaveOptions,
  type ReadModelStore,
  type ReadModelStoreCapabilities,
  SortDirection,
  type StoredReadModel,
} from "./types.js";
