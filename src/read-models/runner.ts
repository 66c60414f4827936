/**
 * One projection's generation at work: a filtered global subscription from
 * its checkpoint, events folded into models in batches, each batch written
 * with its checkpoint so that every event takes effect exactly once per
 * model across crashes (see docs/read-models.md, "Exactly once").
 */
import {
  type EventStore,
  type EventSubscription,
  isBehindRetentionError,
  type RecordedEvent,
} from "../events/index.js";
import {
  ApplyError,
  CorruptionError,
  isNotFoundError,
  isVersionConflictError,
  type RetryPolicy,
  retrying,
  ValidationError,
} from "../index.js";
import { projectorLoadNow, projectorSaveBatch, TableReadModelStore } from "./base.js";
import { ProjectedEntry } from "./prepare.js";
import {
  type AtomicCheckpointStore,
  generationModelType,
  generationStatusName,
  hasAtomicCheckpoint,
  type Projection,
} from "./projection.js";
import {
  ProjectionStatus,
  type ProjectionStatusRecord,
  type ReadModelStore,
  type ReadModelWrite,
  type StoredReadModel,
} from "./types.js";

/** Events the subscription fetches at a time (each `nextBatch()` during catch-up). */
const SUBSCRIPTION_BUFFER = 4096;
/** How many events a catch-up batch takes between two readings of the clock. */
const CLOCK_EVERY = 256;
/** During catch-up, the time between two checkpoints is at least this many times the last one's writing time. */
const CHECKPOINT_SHARE = 10;
/** The clock is read for {@link EventLoopTurns} once per this many events + 1 (and at the end of each batch). */
const TURN_CHECK_MASK = 255;

/**
 * Gives the event loop a turn (a macrotask) after {@link EventLoopTurns.afterMs}
 * without one: a catch-up, a rebuild or the clean-up of a retired
 * generation in a store that keeps its models in memory never waits for
 * I/O, and would hold timers, I/O and reads (of the generation serving
 * them during a rebuild) until it is done.
 */
export class EventLoopTurns {
  /** In ms: often enough for timers and reads, rare enough to cost a catch-up nothing measurable. */
  static readonly afterMs = 10;
  #at = performance.now();

  /** Resolves at once, or after a turn of the event loop when the last one is `afterMs` ago. */
  async take(): Promise<void> {
    if (performance.now() - this.#at < EventLoopTurns.afterMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#at = performance.now();
  }
}

/** The error of an `evolve` that returned `undefined` for `event` (`null` deletes a model; `undefined` is refused). */
function evolveReturnedUndefined(event: RecordedEvent): ValidationError {
  return new ValidationError(
    "evolve",
    `returned undefined for the event ${JSON.stringify(event.type)} at global position ${event.globalPosition} ` +
      `(stream ${JSON.stringify(event.streamId)}): return the model, or null to delete it`,
  );
}

/** What a runner needs from its projector. */
export interface RunnerHost {
  readonly eventStore: EventStore;
  readonly store: ReadModelStore;
  readonly retry: Required<RetryPolicy>;
  readonly batchSize: number;
  /** Most models kept in memory across batches (clean ones beyond it are dropped, oldest first). */
  readonly maxCachedModels: number;
  /** During catch-up, least time between two checkpoints once the batch holds `batchSize` models (0: none). */
  readonly checkpointIntervalMs: number;
  /** Called after each checkpoint or status change (wakes `waitForCatchUp`). */
  progressed(): void;
}

/** A model as the runner holds it: in the batch (dirty) or cached from an earlier batch or load. */
type Entry = ProjectedEntry;

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
  /** The last event applied (its timestamp gives `lagMs`). */
  #lastEvent: RecordedEvent | undefined;
  #sub: EventSubscription | undefined;
  #loop: Promise<void> = Promise.resolve();
  #queue: Promise<void> = Promise.resolve();
  /** Exclusive work queued or running (0: the runner may handle an event synchronously). */
  #busy = 0;
  /**
   * The models of this generation as the runner last read or wrote them:
   * the batch (dirty entries) and, across batches, the clean ones (at
   * most `maxCachedModels`, oldest dropped first). The runner is their
   * only writer, so they stay equal to what the store holds. A store that
   * keeps its models in memory (a {@link TableReadModelStore}) keeps the
   * entries of each batch written, as they are: the runner forgets them
   * and loads a copy when it needs the model again.
   */
  #models = new Map<string, Entry>();
  /** The dirty entries of {@link #models}: the batch. */
  #batch: Entry[] = [];
  /** The event store's head as last read (it only grows): `stats()` is read again only when an event reaches it. */
  #head = 0;
  #batchPosition = 0;
  #resumedFrom = 0;
  /** The event at the checkpoint read at start is to be handled again (no atomic checkpoint) and no batch was written since. */
  #replayPending = false;
  /** When the last checkpoint was written (or the runner started), from `performance.now()`. */
  #checkpointedAt = 0;
  /** How long the last checkpoint took to write, in ms. */
  #checkpointCostMs = 0;
  /** Events handled since the clock was last read for {@link #due}. */
  #sinceClock = 0;
  readonly #turns = new EventLoopTurns();
  #stopping = false;
  /** Aborts the checks of a start still under way (`stop()`). */
  #starting: AbortController | undefined;
  /** A start's check of the checkpoint is under way: not caught up yet, whatever the positions say. */
  #checking = false;
  readonly #atomic: boolean;
  /** The store, when it keeps its models in memory: loads without a promise, batches without write objects. */
  readonly #table: TableReadModelStore | undefined;
  readonly #handles: Set<string>;
  /** The one event type the projection handles, when it handles one (compared without a lookup). */
  readonly #onlyType: string | undefined;
  /** The free-form metadata of every model written. */
  readonly #freeMetadata: Readonly<Record<string, string>>;

  constructor(
    readonly host: RunnerHost,
    readonly projection: Projection,
    readonly generation: number,
  ) {
    this.modelType = generationModelType(projection.modelType, generation);
    this.statusName = generationStatusName(projection.name, generation);
    this.#atomic = hasAtomicCheckpoint(host.store);
    this.#table = host.store instanceof TableReadModelStore ? host.store : undefined;
    this.#handles = new Set(projection.handles);
    this.#onlyType = this.#handles.size === 1 ? projection.handles[0] : undefined;
    this.#freeMetadata = Object.freeze({ projection: projection.name });
  }

  /** Reads the checkpoint and starts the subscription from it. */
  async start(): Promise<void> {
    // Cleared before the read: a stop() while it is under way must keep the start from subscribing.
    this.#stopping = false;
    const stored = await this.host.store.getProjectionStatus(this.statusName);
    if (this.#stopping) return;
    this.checkpoint = stored?.checkpoint ?? 0;
    this.#batchPosition = this.checkpoint;
    this.status = ProjectionStatus.CatchingUp;
    this.lastError = undefined;
    this.failedPosition = undefined;
    this.#batch = [];
    this.#models = new Map();
    this.#checkpointedAt = performance.now();
    this.#checkpointCostMs = 0;
    this.#sinceClock = 0;
    // Without an atomic write, the event AT the checkpoint is delivered again: a delete is written after its checkpoint.
    // Not at checkpoint 1: the first event of the store has no model before it to delete (and a subscription from 0
    // would start at the oldest event stored, passing over events retention removed after the checkpoint).
    this.#resumedFrom = this.#atomic || this.checkpoint <= 1 ? 0 : this.checkpoint;
    this.#replayPending = this.#resumedFrom > 0;
    this.#starting = new AbortController();
    this.#checking = true;
    this.#loop = this.#begin(this.#resumedFrom ? this.checkpoint - 1 : this.checkpoint, this.#starting.signal);
  }

  /**
   * Checks the checkpoint against the event store (see
   * {@link #aheadOfEvents}), then runs the subscription from `from`; a
   * `stop()` meanwhile aborts the check and nothing is subscribed.
   */
  async #begin(from: number, signal: AbortSignal): Promise<void> {
    let failure: unknown;
    try {
      failure = await this.#aheadOfEvents(signal);
    } catch (error) {
      failure = error; // the event store's own (closed…): subscribing would fail with it too
    } finally {
      this.#checking = false;
    }
    if (this.#stopping) return;
    if (failure !== undefined) {
      this.#replayPending = false;
      await this.#exclusive(() => this.#fail(failure, this.checkpoint + 1, false));
      return;
    }
    this.host.progressed();
    await this.#follow(from);
  }

  /**
   * The error when the checkpoint is past the event store's last global
   * position: the store holds fewer events than the projection applied (it
   * was emptied or replaced, or numbers its global positions anew, as a
   * NATS event store does after `max_age` removed messages). Subscribing
   * after the checkpoint would pass over the events that come next until
   * they reach it, silently. A store that can catch up with other
   * processes does so first (its head may lag theirs); when it cannot
   * answer, the subscription's own failure says so.
   */
  async #aheadOfEvents(signal: AbortSignal): Promise<Error | undefined> {
    if (this.checkpoint === 0) return undefined;
    const events = this.host.eventStore;
    try {
      await events.catchUp?.({ signal });
    } catch {
      return undefined;
    }
    const head = events.stats().globalPosition;
    if (this.checkpoint <= head) return undefined;
    return new CorruptionError(
      `projection ${JSON.stringify(this.projection.name)}`,
      undefined,
      `its checkpoint is global position ${this.checkpoint}, past the event store's last one (${head}): the store ` +
        "holds fewer events than the projection applied (emptied or replaced, or its global positions numbered anew); " +
        "rebuild the projection",
    );
  }

  /** The projection's global subscription after `from`, checkpointed as it passes filtered-out events. */
  #subscribe(from: number): EventSubscription {
    const p = this.projection;
    const prefix = p.stream ?? p.streamPrefix;
    // Without a stream filter, the types are checked here (#handle): cheaper than a filtered copy of each batch.
    const sub = this.host.eventStore.subscribeAll(from, {
      ...(prefix === undefined ? {} : { types: p.handles, streamPrefix: prefix }),
      bufferSize: SUBSCRIPTION_BUFFER,
      onCheckpoint: (position) => this.#enqueue(() => this.#flush(position)),
    });
    this.#sub = sub;
    void sub.caughtUp.then((caught) => {
      if (caught) this.#enqueue(() => this.#flush(this.#batchPosition));
    });
    return sub;
  }

  /**
   * Stops the subscription and waits for a write in progress to finish;
   * a batch not yet being written is dropped (the next start folds its
   * events again from the stored checkpoint).
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#starting?.abort();
    this.#sub?.close();
    await this.#loop;
    await this.#queue;
  }

  /**
   * The position up to which every event is applied and written: the
   * checkpoint, or the one before it right after a start that delivers the
   * event at the checkpoint again (a delete written after its checkpoint),
   * until the first batch after it is written. What `waitForCatchUp` and
   * the status of a running projection go by.
   */
  get handledPosition(): number {
    return this.#replayPending ? this.checkpoint - 1 : this.checkpoint;
  }

  /**
   * Whether every event up to `position` is applied and written: what the
   * caught-up barriers wait for. Never while a start still checks its
   * checkpoint against the event store (it may fail the projection).
   */
  handledUpTo(position: number): boolean {
    return !this.#checking && this.handledPosition >= position;
  }

  get failed(): boolean {
    return this.status === ProjectionStatus.Failed;
  }

  /** Runs `work` after every earlier one: events, checkpoints and failures never interleave. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#hold(this.#queue.then(work));
  }

  /** Makes `running` the last exclusive work: what is queued next waits for it. */
  #hold<T>(running: Promise<T>): Promise<T> {
    this.#busy++;
    const done = () => {
      this.#busy--;
    };
    this.#queue = running.then(done, done);
    return running;
  }

  #enqueue(work: () => Promise<void>): void {
    void this.#exclusive(work).catch((error: unknown) =>
      this.#exclusive(() => this.#fail(error, this.#batchPosition + 1, false)),
    );
  }

  async #run(sub: EventSubscription): Promise<void> {
    let replayGone = false;
    try {
      if (sub.nextBatch === undefined) {
        let n = 0;
        for await (const event of sub) {
          if (!(await this.#deliver(event))) break;
          if ((++n & TURN_CHECK_MASK) === 0) await this.#turns.take();
        }
        return;
      }
      // Events come a batch at a time: each is handled synchronously unless it must wait.
      for (let events = await sub.nextBatch(); events.length > 0; events = await sub.nextBatch()) {
        // An index, not for…of: in an async function, for…of allocates an iterator result per event.
        const last = events.length - 1;
        for (let i = 0; i <= last; i++) {
          const event = events[i] as RecordedEvent;
          const go = this.#busy === 0 ? this.#step(event) : await this.#stepQueued(event);
          if (go === false || (go !== true && !(await this.#hold(go)))) return;
          if ((i & TURN_CHECK_MASK) === TURN_CHECK_MASK || i === last) await this.#turns.take();
        }
      }
    } catch (error) {
      replayGone = this.#replayGone(error);
      if (!this.#stopping && !replayGone)
        await this.#exclusive(() => this.#fail(error, this.#batchPosition + 1, false));
    } finally {
      sub.close();
    }
    // Nothing was delivered: the run goes on after the checkpoint (checked here, synchronously with the new
    // subscription, so that a stop() either came before or closes it).
    if (replayGone && !this.#stopping) {
      this.#resumedFrom = 0;
      this.#replayPending = false;
      this.host.progressed();
      await this.#follow(this.checkpoint);
    }
  }

  /** Subscribes after `from` and runs the subscription; a subscription that cannot be made fails the projection. */
  async #follow(from: number): Promise<void> {
    let sub: EventSubscription;
    try {
      sub = this.#subscribe(from);
    } catch (error) {
      // Nobody awaits this loop until stop(): a throw here would be an unhandled rejection.
      await this.#exclusive(() => this.#fail(error, this.checkpoint + 1, false));
      return;
    }
    await this.#run(sub);
  }

  /**
   * Whether `error` says that retention removed the event at the
   * checkpoint, which a start without an atomic checkpoint delivers again
   * (a delete written after its checkpoint), and nothing after it: the
   * redelivery cannot be made, and nothing is missing after the checkpoint.
   */
  #replayGone(error: unknown): boolean {
    return (
      this.#replayPending &&
      isBehindRetentionError(error) &&
      error.streamId === undefined &&
      error.position === this.checkpoint - 1
    );
  }

  /**
   * Handles one event: right here, synchronously unless it must wait (a
   * load, an async evolve, a retry, a write), when nothing else runs; what
   * waits holds the queue so checkpoints never interleave with it. False to stop.
   */
  async #deliver(event: RecordedEvent): Promise<boolean> {
    const go = this.#busy === 0 ? this.#step(event) : await this.#stepQueued(event);
    return go === true || (go !== false && (await this.#hold(go)));
  }

  /**
   * {@link #step} after the work queued before it. A method of its own: a
   * closure over `event` in the caller would make every event allocate
   * its context, even those handled at once.
   */
  #stepQueued(event: RecordedEvent): Promise<boolean | Promise<boolean>> {
    return this.#exclusive(async () => this.#step(event));
  }

  /** Handles one event and writes the batch when it is full or at the head; false to stop. */
  #step(event: RecordedEvent): boolean | Promise<boolean> {
    if (this.#stopping || this.failed) return false;
    const handled = this.#handle(event);
    if (handled === true) {
      // #after's common case: behind the head, the batch still small.
      if (event.globalPosition < this.#head && this.#batch.length < this.host.batchSize) return true;
      return this.#after(event);
    }
    if (handled === false) return false;
    return handled.then((ok) => ok && this.#after(event));
  }

  /**
   * Writes the batch when it reaches the head; during catch-up, when it
   * holds `batchSize` models and `checkpointIntervalMs` passed since the
   * last checkpoint, or when it holds more than `maxCachedModels` models.
   */
  #after(event: RecordedEvent): boolean | Promise<boolean> {
    const position = event.globalPosition;
    if (position >= this.#head) this.#head = this.host.eventStore.stats().globalPosition;
    if (position < this.#head) {
      const size = this.#batch.length;
      if (size < this.host.batchSize || (size <= this.host.maxCachedModels && !this.#due())) return true;
    }
    return this.#flush(position).then(() => true);
  }

  /**
   * Whether a catch-up checkpoint is due: `checkpointIntervalMs` passed
   * since the last one, and at least {@link CHECKPOINT_SHARE} times as long
   * as it took to write (so that writing checkpoints takes a bounded share
   * of a catch-up, however slow the store). The clock is read once per
   * {@link CLOCK_EVERY} calls.
   */
  #due(): boolean {
    const interval = this.host.checkpointIntervalMs;
    if (interval === 0) return true;
    if (++this.#sinceClock < CLOCK_EVERY) return false;
    this.#sinceClock = 0;
    return performance.now() - this.#checkpointedAt >= Math.max(interval, CHECKPOINT_SHARE * this.#checkpointCostMs);
  }

  /**
   * Applies one event to the batch; false when the projection failed on it.
   * `id` and `evolve` are called directly; only a failure enters the
   * retry policy (the failed call counts as its first attempt).
   */
  #handle(event: RecordedEvent): boolean | Promise<boolean> {
    const p = this.projection;
    const only = this.#onlyType;
    const handled = only === undefined ? this.#handles.has(event.type) : event.type === only;
    if (!handled || (p.stream !== undefined && event.streamId !== p.stream)) {
      this.#batchPosition = event.globalPosition;
      return true;
    }
    let id: string;
    try {
      id = p.id(event);
    } catch (error) {
      return this.#retry(error, () => p.id(event)).then(
        (retried) => this.#handleWithId(event, retried),
        (failure: unknown) => this.#failOn(event, "", failure),
      );
    }
    return this.#handleWithId(event, id);
  }

  #handleWithId(event: RecordedEvent, id: string): boolean | Promise<boolean> {
    const entry = this.#models.get(id);
    return entry === undefined ? this.#handleMissing(event, id) : this.#apply(event, entry);
  }

  /** Applies `event` to model `id`, which the runner does not hold: loaded first. */
  #handleMissing(event: RecordedEvent, id: string): boolean | Promise<boolean> {
    if (this.#table) {
      let loaded: Entry;
      try {
        loaded = this.#table[projectorLoadNow](this.modelType, id);
      } catch (error) {
        return this.#failOn(event, id, error);
      }
      this.#models.set(id, loaded);
      return this.#apply(event, loaded);
    }
    return this.#load(id).then(
      (loaded) => {
        this.#models.set(id, loaded);
        return this.#apply(event, loaded);
      },
      (error: unknown) => this.#failOn(event, id, error),
    );
  }

  #apply(event: RecordedEvent, entry: Entry): boolean | Promise<boolean> {
    const resumedDelete = event.globalPosition === this.#resumedFrom && entry.value === undefined;
    if (entry.lastEventPosition >= event.globalPosition || resumedDelete) {
      this.#batchPosition = event.globalPosition; // applied before a crash: once is enough
      return true;
    }
    const p = this.projection;
    let next: unknown;
    try {
      next = p.evolve(entry.value as never, event as never);
    } catch (error) {
      return this.#retry(error, () => p.evolve(entry.value as never, event as never)).then(
        (retried) => this.#applied(event, entry, retried),
        (failure: unknown) => this.#failOn(event, entry.id, failure),
      );
    }
    if (next instanceof Promise) {
      return next.then(
        (value: unknown) => this.#applied(event, entry, value),
        (error: unknown) =>
          this.#retry(error, () => p.evolve(entry.value as never, event as never)).then(
            (retried) => this.#applied(event, entry, retried),
            (failure: unknown) => this.#failOn(event, entry.id, failure),
          ),
      );
    }
    return this.#applied(event, entry, next);
  }

  #applied(event: RecordedEvent, entry: Entry, next: unknown): boolean | Promise<boolean> {
    // Only null deletes: undefined is an evolve that handles no case for this event (not retried: it would again).
    if (next === undefined) return this.#failOn(event, entry.id, evolveReturnedUndefined(event));
    const deleted = next === null;
    const stored = entry.revision > 0;
    if (deleted && !this.#atomic && stored && entry.dirty) {
      // The batch changed this model before deleting it. Those changes are written first, as a batch of its
      // own under the checkpoint before this event: a crash between the delete's checkpoint and the delete
      // then replays the delete event on the model as the batch left it, not as an earlier batch stored it.
      return this.#flush(this.#batchPosition).then(() => {
        if (this.#stopping || this.failed) return false;
        // The write settled the entry; one whose new revision is unknown left the cache and is loaded again.
        const now = this.#models.get(entry.id);
        return now === entry ? this.#applied(event, entry, next) : this.#handleWithId(event, entry.id);
      });
    }
    entry.value = deleted ? undefined : next;
    entry.lastEventPosition = event.globalPosition;
    if (!entry.dirty) {
      entry.dirty = true;
      this.#batch.push(entry);
    }
    this.#lastEvent = event;
    this.#batchPosition = event.globalPosition;
    // Without an atomic write a delete ends its batch: checkpoint first, then the delete (see start()).
    if (deleted && !this.#atomic && stored) return this.#flush(event.globalPosition).then(() => true);
    return true;
  }

  /** Retries what failed once with `error` under the retry policy (that failure was its first attempt). */
  #retry<T>(error: unknown, fn: () => T | Promise<T>): Promise<T> {
    let first: { error: unknown } | undefined = { error };
    return retrying(this.host.retry, () => {
      if (first) {
        const failed = first.error;
        first = undefined;
        throw failed;
      }
      return fn();
    });
  }

  /** Marks the projection failed on `event` (after writing the batch before it); resolves false. */
  async #failOn(event: RecordedEvent, id: string, error: unknown): Promise<boolean> {
    await this.#fail(new ApplyError(this.modelType, id, { cause: error }), event.globalPosition, true);
    return false;
  }

  async #load(id: string): Promise<Entry> {
    return this.#entry(id, await this.host.store.load(this.modelType, id));
  }

  #entry(id: string, stored: StoredReadModel | undefined): Entry {
    return stored
      ? new ProjectedEntry(id, stored.model, stored.revision, stored.metadata.lastEventPosition)
      : new ProjectedEntry(id, undefined, 0, 0);
  }

  /** Writes the batch and the checkpoint `position` (at least the batch's own). */
  async #flush(position: number): Promise<void> {
    if (this.failed || this.#stopping) return;
    const started = performance.now();
    const checkpoint = Math.max(position, this.#batchPosition, this.checkpoint);
    this.#batchPosition = checkpoint;
    const batch = this.#batch;
    /** The entries to write (a model created and deleted within the batch is not). */
    const written: Entry[] = [];
    for (const e of batch) if (e.value !== undefined || e.revision !== 0) written.push(e);
    const head = this.host.eventStore.stats().globalPosition;
    if (head > this.#head) this.#head = head;
    const base = checkpoint >= head ? ProjectionStatus.UpToDate : ProjectionStatus.CatchingUp;
    const record = this.#record(base, checkpoint, head);
    if (written.length === 0 && checkpoint === this.checkpoint && base === this.status && !this.rebuilding) {
      this.#settle(batch, written, undefined, false);
      // Every flush comes after the event at a replayed checkpoint was handled (or filtered out).
      this.#replayPending = false;
      return;
    }
    const store = this.host.store;
    const table = this.#atomic ? this.#table : undefined;
    // The map itself when it holds just the entries written (a catch-up's last batch): the table may take it.
    const whole =
      table && written.length === batch.length && batch.length === this.#models.size ? this.#models : undefined;
    const lastUpdated = new Date();
    const schemaVersion = this.projection.schemaVersion ?? 1;
    const modelType = this.modelType;
    // The entries stay as they are while the batch is written (the runner holds its queue): a retry reads the same.
    const writes: ReadModelWrite[] = [];
    if (!table) {
      for (const e of written) {
        const id = e.id;
        writes.push(
          e.value === undefined
            ? { type: "delete", modelType, id, expectedRevision: e.revision }
            : {
                type: "save",
                model: e.value,
                metadata: {
                  id,
                  modelType,
                  schemaVersion,
                  lastUpdated,
                  lastEventPosition: e.lastEventPosition,
                  metadata: this.#freeMetadata,
                },
                expectedRevision: e.revision,
              },
        );
      }
    }
    const revisions = await retrying(this.host.retry, async (): Promise<(number | undefined)[]> => {
      // The table keeps the entries written (the runner forgets them in #settle).
      if (table)
        return table[projectorSaveBatch](
          { modelType, schemaVersion, lastUpdated, metadata: this.#freeMetadata },
          written,
          record,
          true,
          whole,
        );
      if (this.#atomic) return (store as AtomicCheckpointStore).saveWithCheckpoint(writes, record);
      const saved: (number | undefined)[] = [];
      for (const w of writes) saved.push(w.type === "save" ? await this.#saveOnce(w) : undefined);
      await store.updateProjectionStatus(record);
      for (const w of writes)
        if (w.type === "delete")
          await store.delete(w.modelType, w.id, { expectedRevision: w.expectedRevision }).catch((error: unknown) => {
            // A delete made again (a replay at the checkpoint) finds the model gone or changed: nothing to do.
            // Any other failure fails the batch (retried, then the projection fails): the model must not stay.
            if (isVersionConflictError(error) || isNotFoundError(error)) return false;
            throw error;
          });
      return saved;
    });
    if (whole) this.#models = new Map(); // given up with the entries: the table may hold it now
    if (this.mirror) await store.updateProjectionStatus({ ...record, name: this.projection.name });
    this.#settle(batch, written, revisions, table !== undefined);
    this.#checkpointedAt = performance.now();
    this.#checkpointCostMs = this.#checkpointedAt - started;
    this.checkpoint = checkpoint;
    this.#replayPending = false;
    this.status = base;
    this.host.progressed();
  }

  /**
   * After the batch was written: its entries are clean, with the revision
   * each write got (an entry whose revision is unknown, or whose model was
   * deleted, leaves the cache); then the oldest clean entries beyond
   * `maxCachedModels` are dropped. `handedOver`: the store keeps the
   * entries written (with their revisions), and the cache forgets them.
   */
  #settle(
    batch: Entry[],
    written: readonly Entry[],
    revisions: readonly (number | undefined)[] | undefined,
    handedOver: boolean,
  ): void {
    const models = this.#models;
    if (handedOver) {
      if (batch.length === models.size) models.clear();
      else if (models.size > 0) for (const e of batch) models.delete(e.id);
    } else {
      for (let i = 0; i < written.length; i++) {
        const e = written[i] as Entry;
        const revision = revisions?.[i];
        if (e.value === undefined || revision === undefined || revision === 0) models.delete(e.id);
        else e.revision = revision;
      }
      for (const e of batch) {
        e.dirty = false;
        if (e.value === undefined) models.delete(e.id);
      }
    }
    if (this.#batch === batch) this.#batch = [];
    let excess = models.size - this.host.maxCachedModels;
    if (excess > 0) {
      for (const id of models.keys()) {
        if (excess-- <= 0) break;
        models.delete(id);
      }
    }
  }

  /** A save that a retry after a lost reply does not repeat; its revision, undefined when it was not repeated. */
  async #saveOnce(w: Extract<ReadModelWrite, { type: "save" }>): Promise<number | undefined> {
    const now = await this.host.store.load(w.metadata.modelType, w.metadata.id);
    if (now && now.metadata.lastEventPosition >= w.metadata.lastEventPosition) return undefined;
    return this.host.store.save(w.model, w.metadata, { expectedRevision: w.expectedRevision });
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
          : this.#lastEvent === undefined
            ? undefined
            : Math.max(0, Date.now() - this.#lastEvent.timestamp.getTime()),
      ...(error === undefined ? {} : { lastError: error instanceof Error ? error.message : String(error) }),
      ...(this.failedPosition === undefined ? {} : { failedPosition: this.failedPosition }),
    };
  }

  /**
   * Writes the status as it is now under the generation's name, and under
   * the projection's when mirrored: after a switch of generations, which
   * changes it (no longer `rebuilding`) without a checkpoint. Queued after
   * any write in progress, so that it never overwrites a later checkpoint.
   */
  writeStatus(): Promise<void> {
    return this.#exclusive(async () => {
      const head = this.host.eventStore.stats().globalPosition;
      const status = this.failed
        ? ProjectionStatus.Failed
        : this.checkpoint >= head
          ? ProjectionStatus.UpToDate
          : ProjectionStatus.CatchingUp;
      const record = this.#record(status, this.checkpoint, head);
      await this.host.store.updateProjectionStatus(record);
      if (this.mirror) await this.host.store.updateProjectionStatus({ ...record, name: this.projection.name });
    });
  }

  /** The status as the projector reports it now (from memory). */
  snapshot(): ProjectionStatusRecord {
    const head = this.host.eventStore.stats().globalPosition;
    // A failed projection shows the stored checkpoint, where a resume starts (and what #fail wrote).
    if (this.failed)
      return { ...this.#record(ProjectionStatus.Failed, this.checkpoint, head), name: this.projection.name };
    const status = this.handledUpTo(head) ? ProjectionStatus.UpToDate : ProjectionStatus.CatchingUp;
    return { ...this.#record(status, this.handledPosition, head), name: this.projection.name };
  }

  /**
   * Marks a stopped runner `failed` with `error`, in memory (the store
   * refused to start it again, see `Projector`'s switch of generations):
   * the caught-up barrier rejects with it, and a resume starts it again.
   */
  failStopped(error: unknown): void {
    this.lastError = error;
    this.failedPosition = this.checkpoint + 1;
    this.status = ProjectionStatus.Failed;
    this.host.progressed();
  }

  /** Writes what was applied before `position`, then marks the projection failed there. */
  async #fail(error: unknown, position: number, flush: boolean): Promise<void> {
    if (this.failed || this.#stopping) return;
    try {
      if (flush && this.#batch.length > 0) await this.#flush(this.#batchPosition);
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
