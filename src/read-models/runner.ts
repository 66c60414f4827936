/**
 * One projection's generation at work: a filtered global subscription from
 * its checkpoint, events folded into models in batches, each batch written
 * with its checkpoint so that every event takes effect exactly once per
 * model across crashes (see docs/read-models.md, "Exactly once").
 */
import type { EventStore, EventSubscription, RecordedEvent } from "../events/index.js";
import { ApplyError, type RetryPolicy, retrying } from "../index.js";
import { generationModelType, generationStatusName, hasAtomicCheckpoint, type Projection } from "./projection.js";
import { ProjectionStatus, type ProjectionStatusRecord, type ReadModelStore, type ReadModelWrite } from "./types.js";

/** What a runner needs from its projector. */
export interface RunnerHost {
  readonly eventStore: EventStore;
  readonly store: ReadModelStore;
  readonly retry: Required<RetryPolicy>;
  readonly batchSize: number;
  /** Called after each checkpoint or status change (wakes `waitForCatchUp`). */
  progressed(): void;
}

/** A model as the batch holds it. */
interface Entry {
  model: unknown;
  /** Revision in the store (0: not stored). */
  revision: number;
  /** Position of the last event applied. */
  lastEventPosition: number;
  dirty: boolean;
}

/** One generation of one projection, running. */
export class ProjectionRunner {
  readonly modelType: string;
  readonly statusName: string;
  /** Position of the last event handled and written (the stored checkpoint). */
  checkpoint = 0;
  status: ProjectionStatus = ProjectionStatus.CatchingUp;
  lastError: unknown;
  failedPosition: number | undefined;
  /** Shown instead of up_to_date / catching_up while a rebuild runs (on both generations). */
  rebuilding = false;
  /** Also write the status under the projection's own name (an active generation > 0). */
  mirror = false;
  #lastEventTime: number | undefined;
  #sub: EventSubscription | undefined;
  #loop: Promise<void> = Promise.resolve();
  #queue: Promise<void> = Promise.resolve();
  #batch = new Map<string, Entry>();
  #batchPosition = 0;
  #resumedFrom = 0;
  #stopping = false;
  readonly #atomic: boolean;
  readonly #handles: Set<string>;

  constructor(
    readonly host: RunnerHost,
    readonly projection: Projection,
    readonly generation: number,
  ) {
    this.modelType = generationModelType(projection.modelType, generation);
    this.statusName = generationStatusName(projection.name, generation);
    this.#atomic = hasAtomicCheckpoint(host.store);
    this.#handles = new Set(projection.handles);
  }

  /** Reads the checkpoint and starts the subscription from it. */
  async start(): Promise<void> {
    const stored = await this.host.store.getProjectionStatus(this.statusName);
    this.checkpoint = stored?.checkpoint ?? 0;
    this.#batchPosition = this.checkpoint;
    this.status = ProjectionStatus.CatchingUp;
    this.lastError = undefined;
    this.failedPosition = undefined;
    this.#stopping = false;
    this.#batch.clear();
    // Without an atomic write, the event AT the checkpoint is delivered again: a delete is written after its checkpoint.
    this.#resumedFrom = this.#atomic || this.checkpoint === 0 ? 0 : this.checkpoint;
    const p = this.projection;
    const sub = this.host.eventStore.subscribeAll(this.#resumedFrom ? this.checkpoint - 1 : this.checkpoint, {
      types: p.handles,
      streamPrefix: p.stream ?? p.streamPrefix,
      onCheckpoint: (position) => this.#enqueue(() => this.#flush(position)),
    });
    this.#sub = sub;
    void sub.caughtUp.then((caught) => {
      if (caught) this.#enqueue(() => this.#flush(this.#batchPosition));
    });
    this.#loop = this.#run(sub);
  }

  /** Stops the subscription and waits for the batch in hand to be written. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#sub?.close();
    await this.#loop;
    await this.#queue;
  }

  get failed(): boolean {
    return this.status === ProjectionStatus.Failed;
  }

  /** Runs `work` after every earlier one: events, checkpoints and failures never interleave. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work);
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #enqueue(work: () => Promise<void>): void {
    void this.#exclusive(work).catch((error: unknown) =>
      this.#exclusive(() => this.#fail(error, this.#batchPosition + 1, false)),
    );
  }

  async #run(sub: EventSubscription): Promise<void> {
    try {
      for await (const event of sub) {
        const go = await this.#exclusive(async () => {
          if (this.#stopping || this.failed) return false;
          if (!(await this.#handle(event))) return false;
          const head = this.host.eventStore.stats().globalPosition;
          if (this.#batch.size >= this.host.batchSize || event.globalPosition >= head)
            await this.#flush(event.globalPosition);
          return true;
        });
        if (!go) break;
      }
    } catch (error) {
      if (!this.#stopping) await this.#exclusive(() => this.#fail(error, this.#batchPosition + 1, false));
    }
  }

  /** Applies one event to the batch; false when the projection failed on it. */
  async #handle(event: RecordedEvent): Promise<boolean> {
    const p = this.projection;
    if (!this.#handles.has(event.type) || (p.stream !== undefined && event.streamId !== p.stream)) {
      this.#batchPosition = event.globalPosition;
      return true;
    }
    let id = "";
    let entry: Entry;
    try {
      id = await retrying(this.host.retry, () => p.id(event));
      entry = this.#batch.get(id) ?? (await this.#load(id));
    } catch (error) {
      await this.#fail(new ApplyError(this.modelType, id, { cause: error }), event.globalPosition, true);
      return false;
    }
    const resumedDelete = event.globalPosition === this.#resumedFrom && entry.model === undefined;
    if (entry.lastEventPosition >= event.globalPosition || resumedDelete) {
      this.#batchPosition = event.globalPosition; // applied before a crash: once is enough
      return true;
    }
    let next: unknown;
    try {
      next = await retrying(this.host.retry, () => p.evolve(entry.model, event));
    } catch (error) {
      await this.#fail(new ApplyError(this.modelType, id, { cause: error }), event.globalPosition, true);
      return false;
    }
    const deleted = next === null || next === undefined;
    this.#batch.set(id, {
      model: deleted ? undefined : next,
      revision: entry.revision,
      lastEventPosition: event.globalPosition,
      dirty: true,
    });
    this.#lastEventTime = event.timestamp.getTime();
    this.#batchPosition = event.globalPosition;
    // Without an atomic write a delete ends its batch: checkpoint first, then the delete (see start()).
    if (deleted && !this.#atomic && entry.revision > 0) await this.#flush(event.globalPosition);
    return true;
  }

  async #load(id: string): Promise<Entry> {
    const stored = await this.host.store.load(this.modelType, id);
    return stored
      ? {
          model: stored.model,
          revision: stored.revision,
          lastEventPosition: stored.metadata.lastEventPosition,
          dirty: false,
        }
      : { model: undefined, revision: 0, lastEventPosition: 0, dirty: false };
  }

  /** Writes the batch and the checkpoint `position` (at least the batch's own). */
  async #flush(position: number): Promise<void> {
    if (this.failed || this.#stopping) return;
    const checkpoint = Math.max(position, this.#batchPosition, this.checkpoint);
    this.#batchPosition = checkpoint;
    const writes: ReadModelWrite[] = [];
    for (const [id, e] of this.#batch) {
      if (!e.dirty) continue;
      if (e.model === undefined && e.revision === 0) continue; // created and deleted within the batch
      const metadata = {
        id,
        modelType: this.modelType,
        schemaVersion: this.projection.schemaVersion ?? 1,
        lastUpdated: new Date(),
        lastEventPosition: e.lastEventPosition,
        metadata: { projection: this.projection.name },
      };
      writes.push(
        e.model === undefined
          ? { type: "delete", modelType: this.modelType, id, expectedRevision: e.revision }
          : { type: "save", model: e.model, metadata, expectedRevision: e.revision },
      );
    }
    const head = this.host.eventStore.stats().globalPosition;
    const base = checkpoint >= head ? ProjectionStatus.UpToDate : ProjectionStatus.CatchingUp;
    const record = this.#record(base, checkpoint, head);
    if (writes.length === 0 && checkpoint === this.checkpoint && base === this.status && !this.rebuilding) return;
    const store = this.host.store;
    await retrying(this.host.retry, async () => {
      if (hasAtomicCheckpoint(store)) {
        await store.saveWithCheckpoint(writes, record);
        return;
      }
      for (const w of writes) if (w.type === "save") await this.#saveOnce(w);
      await store.updateProjectionStatus(record);
      for (const w of writes)
        if (w.type === "delete")
          await store.delete(w.modelType, w.id, { expectedRevision: w.expectedRevision }).catch(() => false);
    });
    if (this.mirror) await store.updateProjectionStatus({ ...record, name: this.projection.name });
    this.#batch.clear();
    this.checkpoint = checkpoint;
    this.status = base;
    this.host.progressed();
  }

  /** A save that a retry after a lost reply does not repeat. */
  async #saveOnce(w: Extract<ReadModelWrite, { type: "save" }>): Promise<void> {
    const now = await this.host.store.load(w.metadata.modelType, w.metadata.id);
    if (now && now.metadata.lastEventPosition >= w.metadata.lastEventPosition) return;
    await this.host.store.save(w.model, w.metadata, { expectedRevision: w.expectedRevision });
  }

  /** The status record as of now. */
  #record(status: ProjectionStatus, checkpoint: number, head: number): ProjectionStatusRecord {
    const shown = this.rebuilding && status !== ProjectionStatus.Failed ? ProjectionStatus.Rebuilding : status;
    const error = this.lastError;
    return {
      name: this.statusName,
      status: shown,
      checkpoint,
      updatedAt: new Date(),
      lagEvents: Math.max(0, head - checkpoint),
      lagMs:
        status === ProjectionStatus.UpToDate
          ? 0
          : this.#lastEventTime === undefined
            ? undefined
            : Math.max(0, Date.now() - this.#lastEventTime),
      ...(error === undefined ? {} : { lastError: error instanceof Error ? error.message : String(error) }),
      ...(this.failedPosition === undefined ? {} : { failedPosition: this.failedPosition }),
    };
  }

  /** The status as the projector reports it now (from memory). */
  snapshot(): ProjectionStatusRecord {
    const head = this.host.eventStore.stats().globalPosition;
    const status = this.failed
      ? ProjectionStatus.Failed
      : this.checkpoint >= head
        ? ProjectionStatus.UpToDate
        : ProjectionStatus.CatchingUp;
    return { ...this.#record(status, this.checkpoint, head), name: this.projection.name };
  }

  /** Writes what was applied before `position`, then marks the projection failed there. */
  async #fail(error: unknown, position: number, flush: boolean): Promise<void> {
    if (this.failed || this.#stopping) return;
    try {
      if (flush && this.#batch.size > 0) await this.#flush(this.#batchPosition);
    } catch {
      // The batch is lost: resuming starts again from the stored checkpoint.
    }
    this.lastError = error;
    this.failedPosition = position;
    this.status = ProjectionStatus.Failed;
    this.#sub?.close();
    const record = {
      ...this.#record(ProjectionStatus.Failed, this.checkpoint, this.host.eventStore.stats().globalPosition),
    };
    await this.host.store.updateProjectionStatus(record).catch(() => undefined);
    if (this.mirror)
      await this.host.store.updateProjectionStatus({ ...record, name: this.projection.name }).catch(() => undefined);
    this.host.progressed();
  }
}
