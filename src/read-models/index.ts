/**
 * `statelog/read-models`: the read-model contract — read models with
 * metadata and revisions, queries (`QueryBuilder`, `Pagination`), the
 * status of the projections that keep them current — and the parts every
 * store shares, public for backend authors: the query engine
 * (`runQuery`, `checkQuery`, …), the checks and encodings of what a store
 * is given (`prepareSave`, `prepareStatus`, …) and the in-memory
 * `ReadModelTable` with sorted indexes.
 */

export { TableReadModelStore, toStoredReadModel } from "./base.js";
export { type PageInfo, Pagination, QueryBuilder } from "./builder.js";
export {
  CACHED_READ_MODEL_STORE_DEFAULTS,
  CachedReadModelStore,
  type CachedReadModelStoreOptions,
  type ReadModelCacheStats,
} from "./cache.js";
export {
  checkExpectedRevision,
  checkIndexesOption,
  copyMetadata,
  copyStatus,
  metadataFromJson,
  metadataToJson,
  type PreparedDelete,
  type PreparedSave,
  type PreparedWrite,
  prepareDelete,
  prepareSave,
  prepareStatus,
  prepareWrites,
  revisionConflict,
  statusFromJson,
  statusToJson,
} from "./prepare.js";
export {
  type AtomicCheckpointStore,
  GENERATION_MODEL_TYPE,
  type GenerationPointer,
  hasAtomicCheckpoint,
  type Projection,
} from "./projection.js";
export { PROJECTOR_DEFAULTS, Projector, type ProjectorOptions, type WaitForCatchUpOptions } from "./projector.js";
export {
  checkQuery,
  compareSortValues,
  compareValues,
  compileFilters,
  cursorAfter,
  entryComparator,
  matchesAll,
  matchesFilter,
  PageCollector,
  pageOf,
  pathReader,
  type QueryEntry,
  type QueryPage,
  rankOf,
  runQuery,
  valueAt,
} from "./query.js";
export { ReadModels } from "./read-models.js";
export { ReadModelTable, type TableEntry } from "./table.js";
export {
  FilterOperator,
  ProjectionStatus,
  type ProjectionStatusRecord,
  type Query,
  type QueryFilter,
  type QueryResult,
  type QuerySort,
  type ReadModelDeleteOptions,
  type ReadModelMetadata,
  type ReadModelSaveOptions,
  type ReadModelStore,
  type ReadModelStoreCapabilities,
  type ReadModelWrite,
  SortDirection,
  type StoredReadModel,
} from "./types.js";
