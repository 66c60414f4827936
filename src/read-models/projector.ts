/**
 * The `Projector`: runs projections from an event store's global
 * subscription into a read-model store, with checkpoints, status, retries,
 * rebuilds into a shadow generation and a caught-up barrier. Read the
 * models through {@link ReadModels} (`projector.models`): it follows each
 * projection's active generation across rebuilds.
 */
import type { EventStore } from "../events/index.js";
import {
  AbortError,
  ClosedError,
  ConfigurationError,
  checkRetryPolicy,
  checkSignal,
  isInvalidNameError,
  MAX_NAME_BYTES,
  MAX_TIMER_MS,
  NotFoundError,
  OptionChecker,
  type RetryPolicy,
  retrying,
  ValidationError,
  validateEntityId,
  validateEntityType,
  validateName,
} from "../index.js";
import {
  GENERATION_MODEL_TYPE,
  GENERATION_SEPARATOR,
  type GenerationPointer,
  generationModelType,
  generationStatusName,
  type Projection,
} from "./projection.js";
import { ReadModels } from "./read-models.js";
import { EventLoopTurns, ProjectionRunner, type RunnerHost } from "./runner.js";
import type { ProjectionStatusRecord, ReadModelStore } from "./types.js";

/** Options of {@link Projector.open}. */
export interface ProjectorOptions {
  /** The event store whose global subscription feeds the projections. */
  eventStore: EventStore;
  /** Where the models, checkpoints and statuses are written. */
  readModels: ReadModelStore;
  /** The projections to run (unique names and model types). */
  projections: readonly Projection<never, never>[] | readonly Projection[];
  /**
   * How a failing `id`, `evolve` or write is retried before the projection
   * is `failed`. @default `PROJECTOR_DEFAULTS.retry`: 3 attempts, backoff
   * from 10 ms up to 1 s, every error retried
   */
  retry?: RetryPolicy | false;
  /** Most models changed in memory before they are written with a checkpoint. @default 500 */
  batchSize?: number;
  /**
   * Most models each running projection keeps in memory across batches,
   * so that an event for a model handled recently needs no load: the
   * projector is their only writer, so they stay equal to the stored ones.
   * 0 keeps none (every batch loads its models), `Infinity` lifts the bound.
   * @default 100000
   */
  maxCachedModels?: number;
  /**
   * During catch-up (events behind the store's head), least time between
   * two checkpoints: a batch that holds `batchSize` models keeps growing
   * until this much time passed since the last checkpoint (or until it
   * holds more than `maxCachedModels` models), so that a model changed by many
   * events is written once per checkpoint, not once per `batchSize`
   * models. A batch that reaches the head is written at once. 0 writes
   * every `batchSize` models. In milliseconds.
   * @default 1000
   */
  checkpointIntervalMs?: number;
}

/** Defaults of {@link ProjectorOptions}. */
export const PROJECTOR_DEFAULTS = {
  /** @default 500 */
  batchSize: 500,
  /** @default 100000 */
  maxCachedModels: 100_000,
  /** @default 1000 */
  checkpointIntervalMs: 1000,
  /** Retries of a failing `id`, `evolve` or write. */
  retry: {
    /** @default 3 */
    maxAttempts: 3,
    /** @default 10 */
    backoffMs: 10,
    /** @default 1000 */
    maxBackoffMs: 1000,
    /** @default every error */
    retryOn: (_error: unknown): boolean => true,
  },
} as const;

/** Options of {@link Projector.waitForCatchUp}. */
export interface WaitForCatchUpOptions {
  /** Aborts the wait (an `AbortError`). */
  signal?: AbortSignal | undefined;
  /**
   * Gives up after this many ms (an `AbortError` whose cause is a `TimeoutError`): a number >= 0, `Infinity`
   * (or anything past about 24.8 days) for no limit; the timer keeps the process alive until the wait ends.
   * @default no limit
   */
  timeoutMs?: number | undefined;
  /** Only these projections. @default all */
  projections?: readonly string[] | undefined;
}

interface Slot {
  readonly projection: Projection;
  active: ProjectionRunner;
  shadow: ProjectionRunner | undefined;
  rebuild: Promise<void> | undefined;
  pointer: GenerationPointer;
  /** The pointer writes under way, one after another (see `#updatePointer`). */
  pointerWrites: Promise<void>;
}

/** Runs projections into a read-model store. Create it with {@link Projector.open}. */
export class Projector implements AsyncDisposable {
  /** The models, read through each projection's active generation. */
  readonly models: ReadModels;
  readonly #host: RunnerHost;
  readonly #slots = new Map<string, Slot>();
  #waiters = new Set<() => void>();
  #closed = false;
  /** Background work close() waits for. */
  readonly #pending = new Set<Promise<void>>();
  /** Gives the projections' names and model types back to the store's registry (once closed). */
  #claimed: () => void = () => undefined;

  private constructor(host: Omit<RunnerHost, "progressed">) {
    this.#host = { ...host, progressed: () => this.#wake() };
    this.models = new ReadModels(host.store, (modelType) => this.#generationOf(modelType));
  }

  /**
   * Checks the options, reads each projection's generation and checkpoint,
   * and starts them (a projection `failed` before starts again).
   * @throws ConfigurationError for an invalid or unknown option, or two projections with one name or model type
   */
  static async open(options: ProjectorOptions): Promise<Projector> {
    const check = new OptionChecker<ProjectorOptions>("Projector", options, PROJECTOR_DEFAULTS);
    check.known([
      "eventStore",
      "readModels",
      "projections",
      "retry",
      "batchSize",
      "maxCachedModels",
      "checkpointIntervalMs",
    ]);
    const isObject = (v: unknown) => (typeof v === "object" && v !== null ? undefined : "an object");
    const eventStore = check.custom<"eventStore", EventStore>(
      "eventStore",
      (v) => isObject(v) ?? (typeof (v as EventStore).subscribeAll === "function" ? undefined : "an EventStore"),
    );
    const store = check.custom<"readModels", ReadModelStore>(
      "readModels",
      (v) => isObject(v) ?? (typeof (v as ReadModelStore).save === "function" ? undefined : "a ReadModelStore"),
    );
    const projections = check.custom<"projections", readonly Projection[]>("projections", (v) =>
      Array.isArray(v) ? undefined : "an array of projections",
    );
    const batchSize = check.integer("batchSize", { min: 1 });
    const maxCachedModels = check.integer("maxCachedModels", { min: 0, infinity: true });
    const checkpointIntervalMs = check.integer("checkpointIntervalMs", { min: 0 });
    const retry = checkRetryPolicy(
      check.custom<"retry", RetryPolicy | false | undefined>("retry", (v) =>
        v === undefined || v === false ? undefined : isObject(v),
      ),
      PROJECTOR_DEFAULTS.retry,
      "Projector retry",
    );
    checkProjections(projections);
    const claimed = claimProjections(store, projections);
    const projector = new Projector({
      eventStore,
      store,
      retry,
      batchSize,
      maxCachedModels,
      checkpointIntervalMs,
    });
    projector.#claimed = claimed;
    try {
      for (const p of projections) await projector.#startSlot(p);
    } catch (error) {
      await projector.close();
      throw error;
    }
    return projector;
  }

  async #startSlot(projection: Projection): Promise<void> {
    const stored = await this.#host.store.load<GenerationPointer>(GENERATION_MODEL_TYPE, projection.name);
    const pointer: GenerationPointer = stored?.model ?? { active: 0 };
    const active = new ProjectionRunner(this.#host, projection, pointer.active);
    active.mirror = pointer.active > 0;
    const slot: Slot = {
      projection,
      active,
      shadow: undefined,
      rebuild: undefined,
      pointer,
      pointerWrites: Promise.resolve(),
    };
    this.#slots.set(projection.name, slot);
    await active.start();
    if (pointer.retired?.length) this.#background(this.#retire(slot));
    if (pointer.rebuilding !== undefined) slot.rebuild = this.#rebuild(slot, pointer.rebuilding);
  }

  #slot(name: string): Slot {
    if (this.#closed) throw new ClosedError("projector");
    const slot = this.#slots.get(name);
    if (!slot) throw new NotFoundError("projection", name);
    return slot;
  }

  #generationOf(modelType: string): number {
    for (const slot of this.#slots.values()) if (slot.projection.modelType === modelType) return slot.active.generation;
    return 0;
  }

  /** The status of each projection, from memory (what is also written to the store). */
  status(): ProjectionStatusRecord[];
  status(name: string): ProjectionStatusRecord;
  status(name?: string): ProjectionStatusRecord | ProjectionStatusRecord[] {
    if (name !== undefined) return this.#slot(name).active.snapshot();
    return [...this.#slots.values()].map((s) => s.active.snapshot());
  }

  /**
   * Starts a `failed` projection again from its checkpoint (after its
   * cause is fixed); does nothing to a running one.
   * @throws NotFoundError for an unknown projection
   */
  async resume(name: string): Promise<void> {
    const slot = this.#slot(name);
    for (const runner of [slot.active, slot.shadow]) {
      if (runner?.failed) {
        await runner.stop();
        await runner.start();
      }
    }
    if (slot.shadow && !slot.rebuild) slot.rebuild = this.#rebuild(slot, slot.shadow.generation);
  }

  /**
   * Rebuilds a projection from the first event into a new generation while
   * the current one keeps serving reads (and keeps being updated), then
   * switches reads to it in one step once it has caught up, and removes
   * the old generation's models. Resolves after the switch; a rebuild
   * interrupted by a crash or `close()` goes on at the next `open`.
   * @throws the store's error for a switch it kept refusing (under `retry`), or the error that failed the new
   *   generation: the current one serves on (docs/read-models.md, "Rebuilds")
   */
  rebuild(name: string): Promise<void> {
    const slot = this.#slot(name);
    slot.rebuild ??= this.#rebuild(slot, Math.max(slot.pointer.active, ...(slot.pointer.retired ?? [])) + 1);
    return slot.rebuild;
  }

  #rebuild(slot: Slot, generation: number): Promise<void> {
    slot.active.rebuilding = true;
    if (slot.shadow) slot.shadow.rebuilding = true;
    const running = this.#rebuilding(slot, generation);
    running.catch(() => undefined); // also reported by the status (failed) and by rebuild()'s own promise
    return running;
  }

  async #rebuilding(slot: Slot, generation: number): Promise<void> {
    try {
      if (slot.pointer.rebuilding !== generation)
        await this.#updatePointer(slot, (p) => ({ ...p, rebuilding: generation }));
      const running = slot.shadow;
      const shadow = running ?? new ProjectionRunner(this.#host, slot.projection, generation);
      slot.shadow = shadow;
      shadow.rebuilding = true;
      slot.active.rebuilding = true;
      if (!running) await shadow.start();
      // Caught up with the active generation: stop it there, let the shadow reach the same point, switch.
      await this.#until(() => shadow.failed || shadow.handledUpTo(this.#host.eventStore.stats().globalPosition));
      if (shadow.failed) throw shadow.lastError;
      const old = slot.active;
      await old.stop();
      try {
        // Not past the store's last position: an old checkpoint past it (the store was emptied, replaced, or numbers
        // its global positions anew) is one no event will reach.
        const reach = () => Math.min(old.checkpoint, this.#host.eventStore.stats().globalPosition);
        await this.#until(() => shadow.failed || shadow.handledUpTo(reach()));
        if (shadow.failed) throw shadow.lastError;
        await this.#updatePointer(slot, (p) => ({
          active: generation,
          retired: [...(p.retired ?? []), old.generation],
        }));
      } catch (error) {
        // No switch: the old generation goes on serving and following events (the shadow keeps running too, and the
        // next rebuild() or resume() tries the switch again).
        await this.#restart(old);
        throw error;
      }
      slot.active = shadow;
      slot.shadow = undefined;
      shadow.rebuilding = false;
      shadow.mirror = true;
      // The waiters went by the stopped generation: the new one may have handled what they wait for already.
      this.#wake();
      // The switch is done and stays done: a status write the store keeps refusing (under the retry policy) is left
      // to the new generation's next checkpoint, which writes it again.
      await retrying(this.#host.retry, () => shadow.writeStatus()).catch(() => undefined);
      this.#background(this.#retire(slot));
    } finally {
      slot.rebuild = undefined;
      if (!slot.shadow) slot.active.rebuilding = false;
      this.#wake();
    }
  }

  /**
   * Starts again the active generation a rebuild stopped for a switch that
   * did not happen, under the retry policy; when the store keeps refusing,
   * the generation is `failed` with its error (waiters reject with it,
   * `resume()` starts it). Not once closed.
   */
  async #restart(runner: ProjectionRunner): Promise<void> {
    if (this.#closed) return;
    try {
      await retrying(this.#host.retry, () => {
        if (this.#closed) throw new ClosedError("projector");
        return runner.start();
      });
    } catch (error) {
      if (!this.#closed) runner.failStopped(error);
    }
    this.#wake();
  }

  /**
   * Runs background work (the clean-up of retired generations) that
   * `close()` waits for; its failure is left for the next open to retry.
   */
  #background(work: Promise<void>): void {
    const tracked = work.catch(() => undefined).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  /**
   * Removes the models of retired generations and their statuses (where
   * the store can), then forgets them; stops early on close (the next open
   * resumes: the pointer names them until all of it is done).
   */
  async #retire(slot: Slot): Promise<void> {
    const store = this.#host.store;
    const turns = new EventLoopTurns();
    const retiring = [...(slot.pointer.retired ?? [])];
    for (const generation of retiring) {
      const type = generationModelType(slot.projection.modelType, generation);
      for (const id of await store.list(type)) {
        if (this.#closed) return;
        await store.delete(type, id);
        await turns.take();
      }
      // Generation 0's status is the projection's own record, which the active generation writes.
      if (generation > 0 && !this.#closed)
        await store.deleteProjectionStatus?.(generationStatusName(slot.projection.name, generation));
    }
    // Only the generations cleaned here leave the pointer: a rebuild that switched meanwhile retired another.
    if (!this.#closed)
      await this.#updatePointer(slot, (p) => ({ ...p, retired: p.retired?.filter((g) => !retiring.includes(g)) }));
  }

  /**
   * Writes the pointer `update` makes of the current one, after the
   * writes of the projection's pointer under way: each sees the one
   * before (a clean-up ending while a rebuild starts or switches would
   * otherwise write over it).
   */
  #updatePointer(slot: Slot, update: (current: GenerationPointer) => GenerationPointer): Promise<void> {
    const write = slot.pointerWrites.then(() => this.#setPointer(slot, update(slot.pointer)));
    slot.pointerWrites = write.catch(() => undefined);
    return write;
  }

  async #setPointer(slot: Slot, pointer: GenerationPointer): Promise<void> {
    const clean: GenerationPointer = {
      active: pointer.active,
      ...(pointer.rebuilding === undefined ? {} : { rebuilding: pointer.rebuilding }),
      ...(pointer.retired?.length ? { retired: pointer.retired } : {}),
    };
    // A write like the models': under the retry policy (a failed switch leaves the old generation serving).
    await retrying(this.#host.retry, () =>
      this.#host.store.save(clean, {
        id: slot.projection.name,
        modelType: GENERATION_MODEL_TYPE,
        schemaVersion: 1,
        lastUpdated: new Date(),
        lastEventPosition: 0,
        metadata: {},
      }),
    );
    slot.pointer = clean;
  }

  /**
   * Resolves once every projection (or those named) has handled every
   * event stored when it was called: read-your-writes after an append.
   * @throws the error that failed a projection when one of them is or becomes `failed`: an `ApplyError`
   *   when it could not apply an event (its `id`, `evolve` or the model's load threw: the cause), else
   *   what stopped it as it was (a write the store kept refusing, a `BehindRetentionError`)
   * @throws AbortError on `signal` or after `timeoutMs`
   * @throws ValidationError for a `timeoutMs` that is not a number >= 0
   */
  async waitForCatchUp(options: WaitForCatchUpOptions = {}): Promise<void> {
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0)) {
      const got = typeof timeoutMs === "string" ? JSON.stringify(timeoutMs) : String(timeoutMs);
      throw new ValidationError("timeoutMs", `must be a number >= 0 (ms; Infinity: no limit), got ${got}`);
    }
    checkSignal(options.signal);
    const names = options.projections ?? [...this.#slots.keys()];
    const slots = names.map((n) => this.#slot(n));
    const target = this.#host.eventStore.stats().globalPosition;
    // A timer that keeps the process alive (AbortSignal.timeout's does not: a script waiting on a stalled
    // projection would exit before its time-out), cleared when the wait ends. Past what setTimeout takes: no limit.
    const timeout = timeoutMs === undefined || timeoutMs > MAX_TIMER_MS ? undefined : new AbortController();
    const timer =
      timeout &&
      setTimeout(
        () => timeout.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
        timeoutMs,
      );
    const signals = [options.signal, timeout?.signal];
    const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
    try {
      await this.#until(() => {
        const failed = slots.find((s) => s.active.failed);
        if (failed) throw failed.active.lastError;
        return slots.every((s) => s.active.handledUpTo(target));
      }, signal);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until `done()` (re-checked after every checkpoint); rejects with what it throws. */
  #until(done: () => boolean, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        try {
          if (this.#closed) throw new ClosedError("projector");
          if (signal?.aborted) throw new AbortError(signal.reason);
          if (!done()) return;
          resolve();
        } catch (error) {
          reject(error);
        }
        this.#waiters.delete(check);
        signal?.removeEventListener("abort", check);
      };
      this.#waiters.add(check);
      signal?.addEventListener("abort", check, { once: true });
      check();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /**
   * Stops every projection: a write in progress finishes, a batch not yet
   * being written is dropped (the next start folds its events again), a
   * running rebuild rejects with a `ClosedError`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#slots.values()].flatMap((s) => [s.active.stop(), s.shadow?.stop()]));
    // Stopped runners report no progress: waiters (a rebuild among them) are told of the close now.
    this.#wake();
    await Promise.all([...this.#slots.values()].map((s) => s.rebuild?.catch(() => undefined)));
    await Promise.all([...this.#pending]);
    this.#wake();
    this.#claimed();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The projection names and model types that open projectors run, per
 * read-model store object (the innermost one behind any wrappers): two
 * projectors running one projection into one store would each write its
 * models (the second one's writes conflict with the first one's, and it
 * fails).
 */
const claims = new WeakMap<ReadModelStore, Set<string>>();

/** The store behind `store`'s wrappers (`wrapped`, followed until a store has none or one is seen again). */
function innermostStore(store: ReadModelStore): ReadModelStore {
  const seen = new Set<ReadModelStore>([store]);
  let inner = store;
  for (;;) {
    const next: unknown = inner.wrapped;
    if (typeof next !== "object" || next === null || seen.has(next as ReadModelStore)) return inner;
    inner = next as ReadModelStore;
    seen.add(inner);
  }
}

/**
 * Records that `projections` run into `store`; returns what gives them back.
 * @throws ConfigurationError for a projection name or model type an open projector runs into the same store
 */
function claimProjections(outer: ReadModelStore, projections: readonly Projection[]): () => void {
  // A cache over S and S itself are two objects writing the same models: the claim is on S.
  const store = innermostStore(outer);
  let held = claims.get(store);
  if (!held) {
    held = new Set();
    claims.set(store, held);
  }
  const keys = projections.flatMap((p) => [
    `name ${JSON.stringify(p.name)}`,
    `modelType ${JSON.stringify(p.modelType)}`,
  ]);
  const taken = keys.find((k) => held.has(k));
  if (taken !== undefined) {
    throw new ConfigurationError(
      `Projector option projections: the projection with ${taken} already runs into this read-model store in another open Projector, directly or through a wrapper such as a CachedReadModelStore (one projector per projection and store: close the other one first)`,
    );
  }
  for (const k of keys) held.add(k);
  return () => {
    for (const k of keys) held.delete(k);
  };
}

/** A stream id as the event stores check it. */
const validateStreamId = (value: unknown): void => validateName("streamId", value, true);

/** `value` for an error message. */
const describeValue = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : typeof value === "function" ? "a function" : String(value);

/** The longest generation suffix a rebuild appends to a projection's name and model type. */
const MAX_SUFFIX_BYTES = Buffer.byteLength(generationModelType("", Number.MAX_SAFE_INTEGER));

/** Checks that `value` (a valid name) stays within the name limit with a rebuild's generation suffix. */
function checkSuffixRoom(what: string, value: string): void {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes + MAX_SUFFIX_BYTES <= MAX_NAME_BYTES) return;
  throw new ConfigurationError(
    `${what} is ${bytes} UTF-8 bytes: at most ${MAX_NAME_BYTES - MAX_SUFFIX_BYTES}, so that a rebuild's generation ` +
      `(written under the name with "${GENERATION_SEPARATOR}" and its number appended) stays within the limit of ${MAX_NAME_BYTES}`,
  );
}

/**
 * Checks a projection's field (`what` names it) with `validate`, a validator of core/validation.
 * @throws ConfigurationError naming the projection and the field, with the `InvalidNameError` as its cause
 */
function checkProjectionName(what: string, value: unknown, validate: (v: unknown) => void): void {
  try {
    validate(value);
  } catch (error) {
    if (!isInvalidNameError(error)) throw error;
    throw new ConfigurationError(`${what} ${describeValue(value)} is not valid: ${error.reason}`, { cause: error });
  }
}

function checkProjections(projections: readonly Projection[]): void {
  const names = new Set<string>();
  const types = new Set<string>();
  for (const [i, p] of projections.entries()) {
    const where = `Projector option projections[${i}]`;
    if (typeof p !== "object" || p === null) throw new ConfigurationError(`${where} must be a projection object`);
    for (const key of ["name", "modelType"] as const) {
      const v = p[key];
      if (typeof v !== "string" || v === "" || v.includes(GENERATION_SEPARATOR)) {
        throw new ConfigurationError(
          `${where}.${key} must be a non-empty string without "${GENERATION_SEPARATOR}", got ${JSON.stringify(v)}`,
        );
      }
    }
    // The name is a status record's name and the id of the generation pointer; the model type, a stored model
    // type: both checked as the store checks them, so that a bad one is refused here, not when it is first written.
    checkProjectionName(`${where}.name`, p.name, validateEntityId);
    /** The field `key` of this projection, for a message. */
    const at = (key: string) => `${where}.${key} (projection ${JSON.stringify(p.name)})`;
    checkProjectionName(at("modelType"), p.modelType, validateEntityType);
    // A rebuild writes generation N under `name~N` and `modelType~N`: leave room for the longest suffix.
    checkSuffixRoom(`${where}.name`, p.name);
    checkSuffixRoom(at("modelType"), p.modelType);
    if (p.modelType === GENERATION_MODEL_TYPE)
      throw new ConfigurationError(`${at("modelType")} ${GENERATION_MODEL_TYPE} is the projector's own`);
    const { schemaVersion, stream, streamPrefix } = p;
    if (schemaVersion !== undefined && (!Number.isSafeInteger(schemaVersion) || schemaVersion < 0)) {
      throw new ConfigurationError(
        `${at("schemaVersion")} must be an integer >= 0 (or left out: 1), got ${describeValue(schemaVersion)}`,
      );
    }
    if (stream !== undefined) checkProjectionName(at("stream"), stream, validateStreamId);
    if (streamPrefix !== undefined && typeof streamPrefix !== "string") {
      throw new ConfigurationError(`${at("streamPrefix")} must be a string, got ${describeValue(streamPrefix)}`);
    }
    if (!Array.isArray(p.handles) || p.handles.some((t) => typeof t !== "string" || t === "")) {
      throw new ConfigurationError(`${where}.handles must be an array of event types`);
    }
    if (typeof p.id !== "function" || typeof p.evolve !== "function") {
      throw new ConfigurationError(`${where} must have the functions id(event) and evolve(model, event)`);
    }
    if (names.has(p.name)) throw new ConfigurationError(`${where}.name ${JSON.stringify(p.name)} is used twice`);
    if (types.has(p.modelType))
      throw new ConfigurationError(`${where}.modelType ${JSON.stringify(p.modelType)} is written by two projections`);
    names.add(p.name);
    types.add(p.modelType);
  }
}
