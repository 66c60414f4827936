/**
 * `TableReadModelStore`: a read-model store whose models live in a
 * {@link ReadModelTable} in memory (the memory store; the file store, which
 * also appends each write to its log). Public for backend authors: extend
 * it and implement {@link TableReadModelStore.persist} (and
 * `closeResources`).
 */
import {
  type CallOptions,
  copyJsonData,
  OpenState,
  throwIfAborted,
  validateEntityId,
  validateEntityType,
  validateName,
} from "../index.js";
import {
  copyMetadata,
  copyStatus,
  type PreparedWrite,
  type ProjectedBatch,
  ProjectedEntry,
  type ProjectedModel,
  prepareDelete,
  prepareProjected,
  prepareSave,
  prepareStatus,
  prepareWrites,
} from "./prepare.js";
import { checkQuery } from "./query.js";
import type { ReadModelTable, TableEntry } from "./table.js";
import type {
  ProjectionStatusRecord,
  Query,
  QueryResult,
  ReadModelDeleteOptions,
  ReadModelMetadata,
  ReadModelSaveOptions,
  ReadModelStore,
  ReadModelStoreCapabilities,
  ReadModelWrite,
  StoredReadModel,
} from "./types.js";

/**
 * The projector's own way into a {@link TableReadModelStore} (not part of
 * the package's API): a synchronous load from the table, and the writes of
 * a batch with its checkpoint prepared from the projector's entries
 * without a write object per model. Same checks, copies and atomicity as
 * `load` and `saveWithCheckpoint`.
 */
export const projectorLoadNow: unique symbol = Symbol("statelog.readModels.loadNow");
/** See {@link projectorLoadNow}. */
export const projectorSaveBatch: unique symbol = Symbol("statelog.readModels.saveBatch");

/** A stored entry as callers receive it: fresh copies they may change. */
export function toStoredReadModel<M>(entry: TableEntry): StoredReadModel<M> {
  return { model: copyJsonData(entry.value as M), metadata: copyMetadata(entry.metadata), revision: entry.revision };
}

/** A read-model store over a {@link ReadModelTable}: reads from memory, writes through {@link persist}. */
export abstract class TableReadModelStore implements ReadModelStore {
  abstract readonly capabilities: ReadModelStoreCapabilities;
  /** Largest model, in bytes of UTF-8 JSON. */
  readonly maxValueBytes: number;
  /** The models, revisions and statuses. */
  protected readonly table: ReadModelTable;
  readonly #state: OpenState;
  /** Writes run one after the other (check, persist, apply). */
  #tail: Promise<unknown> = Promise.resolve();

  /**
   * @param description what the store is, for `ClosedError` messages: `"memory read-model store"`
   */
  protected constructor(description: string, table: ReadModelTable, maxValueBytes: number) {
    this.#state = new OpenState(description);
    this.table = table;
    this.maxValueBytes = maxValueBytes;
  }

  /**
   * Makes `writes` (with the revisions they get) and `status` durable, as
   * one step when the store declares `atomicCheckpoint`; the table is
   * updated after it resolves. A rejection leaves the table unchanged.
   * `removedStatus`: the name of a status `deleteProjectionStatus` removes
   * (then nothing else is written); a store that keeps statuses across a
   * restart makes its removal durable too.
   */
  protected abstract persist(
    writes: readonly PreparedWrite[],
    revisions: readonly number[],
    status: ProjectionStatusRecord | undefined,
    removedStatus?: string,
  ): Promise<void>;

  /** Releases what the store holds; called once, by the first `close()`. */
  protected abstract closeResources(): Promise<void>;

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#state.closed;
  }

  /** @throws ClosedError | AbortError */
  protected checkOpen(options?: CallOptions): void {
    this.#state.check();
    throwIfAborted(options?.signal);
  }

  async save<M>(model: M, metadata: ReadModelMetadata, options?: ReadModelSaveOptions): Promise<number> {
    this.checkOpen(options);
    const write = prepareSave(model, metadata, this.maxValueBytes, options?.expectedRevision);
    return (await this.#commit([write], undefined))[0] as number;
  }

  async load<M>(modelType: string, id: string, options?: CallOptions): Promise<StoredReadModel<M> | undefined> {
    this.checkOpen(options);
    validateEntityType(modelType);
    validateEntityId(id);
    const entry = this.table.get(modelType, id);
    return entry && toStoredReadModel<M>(entry);
  }

  async delete(modelType: string, id: string, options?: ReadModelDeleteOptions): Promise<boolean> {
    this.checkOpen(options);
    const write = prepareDelete(modelType, id, options?.expectedRevision);
    return (await this.#commit([write], undefined))[0] !== 0;
  }

  async list(modelType: string, options?: CallOptions): Promise<string[]> {
    this.checkOpen(options);
    validateEntityType(modelType);
    return this.table.list(modelType);
  }

  async query<M>(query: Query, options?: CallOptions): Promise<QueryResult<M>> {
    this.checkOpen(options);
    checkQuery(query);
    const page = this.table.query(query);
    return { items: page.items.map((e) => toStoredReadModel<M>(e)), total: page.total, next: page.next };
  }

  async updateProjectionStatus(record: ProjectionStatusRecord, options?: CallOptions): Promise<void> {
    this.checkOpen(options);
    await this.#commit([], prepareStatus(record));
  }

  async getProjectionStatus(name: string, options?: CallOptions): Promise<ProjectionStatusRecord | undefined> {
    this.checkOpen(options);
    validateName("projection", name, true);
    const record = this.table.getStatus(name);
    return record && copyStatus(record);
  }

  async listProjectionStatuses(options?: CallOptions): Promise<ProjectionStatusRecord[]> {
    this.checkOpen(options);
    return [...this.table.statuses()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(copyStatus);
  }

  async deleteProjectionStatus(name: string, options?: CallOptions): Promise<boolean> {
    this.checkOpen(options);
    validateName("projection", name, true);
    return this.exclusive(async () => {
      if (this.table.getStatus(name) === undefined) return false;
      await this.persist([], [], undefined, name);
      return this.table.deleteStatus(name);
    });
  }

  async saveWithCheckpoint(
    writes: readonly ReadModelWrite[],
    status: ProjectionStatusRecord,
    options?: CallOptions,
  ): Promise<number[]> {
    this.checkOpen(options);
    const prepared = prepareWrites(writes, this.maxValueBytes);
    return this.#commit(prepared, prepareStatus(status));
  }

  /**
   * `load`, answered synchronously from the table as a new entry for the
   * projector: a copy of the model, its revision and its last event's
   * position; for a model not stored, an entry without one (`value`
   * undefined, revision 0). See {@link projectorLoadNow}.
   * @throws InvalidNameError for an invalid model type or id
   */
  [projectorLoadNow](modelType: string, id: string): ProjectedEntry {
    this.checkOpen();
    const entry = this.table.get(modelType, id);
    if (entry === undefined) {
      // What the table holds was checked when written.
      validateEntityType(modelType);
      validateEntityId(id);
      return new ProjectedEntry(id, undefined, 0, 0);
    }
    const position = entry instanceof ProjectedEntry ? entry.lastEventPosition : entry.metadata.lastEventPosition;
    return new ProjectedEntry(id, copyJsonData(entry.value), entry.revision, position);
  }

  /**
   * `saveWithCheckpoint` of the saves and deletes of `models` (see
   * {@link prepareProjected}), read synchronously before it returns; one
   * model type, each id once (a projector's batch). `handOver`: the
   * {@link ProjectedEntry} models passed are entries {@link projectorLoadNow}
   * gave for this model type (their ids are checked), which the caller
   * gives up once the batch is applied (the table keeps them, and their
   * models, as they are). `byId`, with `handOver`: a map of exactly those
   * entries by id, given up too (the table may take it as its map of the
   * model type: see {@link ReadModelTable.apply}).
   */
  [projectorSaveBatch](
    batch: ProjectedBatch,
    models: readonly ProjectedModel[],
    status: ProjectionStatusRecord,
    handOver = false,
    byId?: Map<string, ProjectedEntry>,
  ): Promise<number[]> {
    try {
      this.checkOpen();
      const prepared = prepareProjected(batch, models, this.maxValueBytes, handOver);
      return this.#commit(prepared, prepareStatus(status), true, handOver ? byId : undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async close(): Promise<void> {
    if (!this.#state.close()) return;
    await this.#tail.catch(() => undefined);
    await this.closeResources();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Runs `fn` after every write (and every other `exclusive` call) before it,
   * and before those after it. A call made after `close()` is a
   * `ClosedError`; one made before runs (`close()` waits for it).
   */
  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    try {
      this.#state.check();
    } catch (error) {
      return Promise.reject(error);
    }
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Checks, persists and applies one batch, after the batches before it
   * (`distinct`: no model written twice in it; `byId`: see {@link ReadModelTable.apply}).
   */
  #commit(
    writes: readonly PreparedWrite[],
    status: ProjectionStatusRecord | undefined,
    distinct = false,
    byId?: Map<string, ProjectedEntry>,
  ): Promise<number[]> {
    return this.exclusive(async () => {
      const revisions = this.table.plan(writes, distinct);
      const changed = revisions.some((r) => r !== 0);
      if (changed || status) await this.persist(writes, revisions, status);
      this.table.apply(writes, revisions, byId);
      if (status) this.table.setStatus(status);
      return revisions;
    });
  }
}
