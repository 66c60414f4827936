/**
 * The read-model contract: CQRS read models stored with their metadata, a
 * revision per model for optimistic concurrency, queries that run on every
 * backend, and the status of the projections that keep them current.
 */
import type { CallOptions } from "../index.js";

/** Where a projection stands. */
export const ProjectionStatus = {
  /** Every event up to the end of its source is applied. */
  UpToDate: "up_to_date",
  /** Applying a backlog of events. */
  CatchingUp: "catching_up",
  /** Rebuilding from the start into a shadow copy. */
  Rebuilding: "rebuilding",
  /** Stopped on an error (after its retries); the others keep running. */
  Failed: "failed",
} as const;
export type ProjectionStatus = (typeof ProjectionStatus)[keyof typeof ProjectionStatus];

/** Metadata stored with a read model. */
export interface ReadModelMetadata {
  /** The read model's id. */
  readonly id: string;
  /** Its type, e.g. `"OrderSummary"`. */
  readonly modelType: string;
  /** Version of the model's schema, for evolving read models. @default 1 */
  readonly schemaVersion: number;
  /** When it was last updated. */
  readonly lastUpdated: Date;
  /** Global position of the last event applied to it (0: none). Older events are skipped by the projector. */
  readonly lastEventPosition: number;
  /** Free-form string metadata. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A stored read model: the model, its metadata and its revision. */
export interface StoredReadModel<M = unknown> {
  readonly model: M;
  readonly metadata: ReadModelMetadata;
  /**
   * A positive integer that increases with every write of this model; what
   * `expectedRevision` compares with. Built-in stores number revisions from
   * one store-wide sequence (on NATS: the KV revision), so a model deleted
   * and created again never reuses a revision a reader may still hold.
   */
  readonly revision: number;
}

/** Options of {@link ReadModelStore.save}. */
export interface ReadModelSaveOptions extends CallOptions {
  /**
   * The revision the caller read: the save fails with a
   * `VersionConflictError` (expected, actual) when the stored one differs.
   * `0`: the model must not exist yet. @default no check
   */
  expectedRevision?: number | undefined;
}

/** Options of {@link ReadModelStore.delete}. */
export interface ReadModelDeleteOptions extends CallOptions {
  /**
   * The revision the caller read: the delete fails with a
   * `VersionConflictError` when the stored one differs (`0`: expects none).
   * @default no check
   */
  expectedRevision?: number | undefined;
}

/**
 * One write of {@link ReadModelStore.saveWithCheckpoint}: a save (like
 * {@link ReadModelStore.save}) or a delete (like {@link ReadModelStore.delete}).
 */
export type ReadModelWrite =
  | {
      readonly type: "save";
      readonly model: unknown;
      readonly metadata: ReadModelMetadata;
      readonly expectedRevision?: number | undefined;
    }
  | {
      readonly type: "delete";
      readonly modelType: string;
      readonly id: string;
      readonly expectedRevision?: number | undefined;
    };

/** The status of one projection, as the projector keeps it. */
export interface ProjectionStatusRecord {
  /** The projection's name. */
  readonly name: string;
  readonly status: ProjectionStatus;
  /** Global position of the last event the projection handled (applied or skipped). */
  readonly checkpoint: number;
  /** When the status was written. */
  readonly updatedAt: Date;
  /** Events between the checkpoint and the end of the source, when known. */
  readonly lagEvents?: number | undefined;
  /** Milliseconds between the newest event handled and now, when known. */
  readonly lagMs?: number | undefined;
  /** The last error's message (`failed`, or a retry in progress). */
  readonly lastError?: string | undefined;
  /** Global position of the event whose handling failed. */
  readonly failedPosition?: number | undefined;
}

/** Direction of a sort key. */
export const SortDirection = {
  Ascending: "asc",
  Descending: "desc",
} as const;
export type SortDirection = (typeof SortDirection)[keyof typeof SortDirection];

/** A comparison of a filter. */
export const FilterOperator = {
  Eq: "eq",
  Ne: "ne",
  Gt: "gt",
  Gte: "gte",
  Lt: "lt",
  Lte: "lte",
  In: "in",
  Prefix: "prefix",
  Exists: "exists",
} as const;
export type FilterOperator = (typeof FilterOperator)[keyof typeof FilterOperator];

/** One filter: the value at `path` (dotted, into the model) compared with `value`. */
export interface QueryFilter {
  /** Dotted path into the model: `"customer.id"`. */
  readonly path: string;
  readonly op: FilterOperator;
  /** For `in`: an array; for `exists`: a boolean; else a JSON scalar. */
  readonly value: unknown;
}

/** One sort key. Missing values sort last ascending, first descending. */
export interface QuerySort {
  readonly path: string;
  readonly direction: SortDirection;
}

/**
 * A query over the read models of one type: every filter must match (AND);
 * then a stable sort by the keys in order (ties by model id); then `offset`
 * and `limit`, or `after` (a keyset cursor from a previous page).
 */
export interface Query {
  readonly modelType: string;
  readonly filters: readonly QueryFilter[];
  readonly sort: readonly QuerySort[];
  /** Most models returned. @default all */
  readonly limit?: number | undefined;
  /** Models skipped first (not with `after`). @default 0 */
  readonly offset?: number | undefined;
  /** The `next` cursor of the previous page: continue after its last model. */
  readonly after?: string | undefined;
}

/** A page of query results. */
export interface QueryResult<M = unknown> {
  readonly items: readonly StoredReadModel<M>[];
  /** How many models match the filters (before offset and limit). */
  readonly total: number;
  /** A cursor for the next page, when there is one. */
  readonly next?: string | undefined;
}

/** What a read-model store can do beyond the basics. */
export interface ReadModelStoreCapabilities {
  /** A save and a checkpoint can be written in one atomic step (`saveWithCheckpoint`). */
  readonly atomicCheckpoint: boolean;
  /** Declared indexes speed up queries on their paths. */
  readonly indexes: boolean;
  /** A saved model survives a restart. */
  readonly durable: boolean;
}

/** The read-model store contract. */
export interface ReadModelStore extends AsyncDisposable {
  readonly capabilities: ReadModelStoreCapabilities;
  /**
   * The store this one writes through to, for a wrapper (a cache, a
   * metrics or logging layer) whose models are the ones of the store
   * behind it, under the same model types and projection names. The
   * projector follows it, through any number of wrappers, to refuse two
   * projectors writing one projection's models into one store. Leave it
   * out for a store that keeps its own models.
   */
  readonly wrapped?: ReadModelStore;
  /**
   * Saves `model` with its metadata; returns the new revision.
   * @throws VersionConflictError when `expectedRevision` does not match
   */
  save<M>(model: M, metadata: ReadModelMetadata, options?: ReadModelSaveOptions): Promise<number>;
  /** The model, its metadata and revision, or `undefined`. */
  load<M>(modelType: string, id: string, options?: CallOptions): Promise<StoredReadModel<M> | undefined>;
  /**
   * Deletes the model; returns whether it existed.
   * @throws VersionConflictError when `expectedRevision` does not match
   */
  delete(modelType: string, id: string, options?: ReadModelDeleteOptions): Promise<boolean>;
  /** The ids of the models of `modelType`, sorted. */
  list(modelType: string, options?: CallOptions): Promise<string[]>;
  /** Runs a query (see {@link Query}). */
  query<M>(query: Query, options?: CallOptions): Promise<QueryResult<M>>;
  /** Writes a projection's status; stored where no model id can collide with it. */
  updateProjectionStatus(record: ProjectionStatusRecord, options?: CallOptions): Promise<void>;
  /** A projection's status, or `undefined`. */
  getProjectionStatus(name: string, options?: CallOptions): Promise<ProjectionStatusRecord | undefined>;
  /**
   * Every projection status the store holds, sorted by name (optional: a
   * tool that lacks it asks for known names with `getProjectionStatus`).
   */
  listProjectionStatuses?(options?: CallOptions): Promise<ProjectionStatusRecord[]>;
  /**
   * Removes a projection's status; returns whether there was one
   * (optional: the projector removes the statuses of the generations a
   * rebuild retired with it, where the store has it).
   */
  deleteProjectionStatus?(name: string, options?: CallOptions): Promise<boolean>;
  /**
   * Present exactly when `capabilities.atomicCheckpoint` is true: applies
   * `writes` (saves and deletes, in order) and writes `status` (the
   * projection's new checkpoint) as ONE atomic step: after a crash either
   * all of it is stored or none of it. Every `expectedRevision` is checked
   * first (a write sees the revisions of the writes before it in the list);
   * one mismatch fails the whole call with a `VersionConflictError` and
   * nothing is written.
   * @returns per write: the new revision of a save; for a delete, the
   *   revision of the delete (0 when the model did not exist)
   */
  saveWithCheckpoint?(
    writes: readonly ReadModelWrite[],
    status: ProjectionStatusRecord,
    options?: CallOptions,
  ): Promise<number[]>;
  /** Releases resources; later calls fail with a `ClosedError`. Idempotent. */
  close(): Promise<void>;
}
