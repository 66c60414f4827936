/**
 * `statelog/read-models`: the read-model contract — read models with
 * metadata and revisions, queries, and the status of the projections that
 * keep them current.
 */
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
