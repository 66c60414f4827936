/**
 * Types, options and defaults of the event-sourced repository
 * (`EventSourcedRepository`, docs/aggregates.md).
 */
import type { EventMetadata, EventStore, ExpectedVersion, RecordedEvent } from "../events/index.js";
import {
  type CallOptions,
  ConfigurationError,
  checkRetryPolicy,
  isVersionConflictError,
  OptionChecker,
  type RetryPolicy,
  validateName,
} from "../index.js";
import type { SnapshotStore } from "./snapshots.js";

/**
 * An event as an aggregate decides it: a type and data, optionally
 * metadata, an id and a timestamp (filled in on save when missing). Every
 * `RecordedEvent` read back is one too (with its `metadata`).
 */
export interface AggregateEvent<T extends string = string, D = unknown> {
  readonly type: T;
  readonly data: D;
  /** Correlation and causation ids, user…: stored with the event and read back. */
  readonly metadata?: EventMetadata | undefined;
  /** @default a random UUID */
  readonly id?: string | undefined;
  /** @default the time of the save */
  readonly timestamp?: Date | undefined;
}

/** What {@link EventSourcedRepositoryOptions.onSnapshotError} receives. */
export interface SnapshotErrorInfo {
  /**
   * `"save"`: writing a snapshot failed (the events are stored); `"load"`:
   * reading one failed, or the one found is ahead of its stream (the load
   * folded from the first event); `"delete"`: removing the snapshots of a
   * stream found behind them failed.
   */
  readonly operation: "save" | "load" | "delete";
  readonly aggregateType: string;
  readonly streamId: string;
  /** The version the snapshot was for (a save) or asked at or below (a load; undefined = the newest). */
  readonly version: number | undefined;
  readonly error: unknown;
}

/** Options of `EventSourcedRepository.open`. */
export interface EventSourcedRepositoryOptions<S, E extends AggregateEvent> {
  /** The event store of the aggregates' streams (required); never closed by the repository. */
  eventStore: EventStore;
  /** The aggregate type (required): names the streams, `order` → `order-42`. */
  aggregateType: string;
  /** The state of an aggregate before its first event (required); called for each fold. */
  initialState: () => S;
  /** Folds one event into the state (required). Should not mutate the event (read events are frozen). */
  evolve: (state: S, event: E) => S;
  /** The stream of aggregate `id`. @default `${aggregateType}-${id}` */
  streamIdOf?: (id: string) => string;
  /** Turns a stored event (maybe an old shape) into today's event, before `evolve`. @default the stored event itself */
  upcast?: (event: RecordedEvent) => E;
  /** Where snapshots go. @default none: every load folds from the first event */
  snapshots?: SnapshotStore;
  /** A snapshot is written after a save that crosses a multiple of this many events; 0 = only on `createSnapshot`. @default 0 */
  snapshotEvery?: number;
  /** The version of the state's shape and of `evolve`: bump it when either changes, so older snapshots are ignored (and replaced). @default 1 */
  snapshotVersion?: number;
  /** Told when a snapshot could not be written or read; the save or load itself succeeded. @default a process warning */
  onSnapshotError?: (info: SnapshotErrorInfo) => void;
  /** Most events one load folds (after its snapshot); a load that would fold more fails with a `LimitExceededError`. @default Infinity */
  maxEvents?: number;
  /** Retries of {@link EventSourcedRepository.handle}. @default `EVENT_SOURCED_REPOSITORY_DEFAULTS.retry` */
  retry?: RetryPolicy;
}

/** Defaults of {@link EventSourcedRepositoryOptions}. */
export const EVENT_SOURCED_REPOSITORY_DEFAULTS = {
  /** @default 0 (snapshots only on `createSnapshot: true`) */
  snapshotEvery: 0,
  /** @default 1 */
  snapshotVersion: 1,
  /** @default Infinity (no bound) */
  maxEvents: Number.POSITIVE_INFINITY,
  /** Retries of `handle`. */
  retry: {
    /** @default 10 */
    maxAttempts: 10,
    /** @default 2 */
    backoffMs: 2,
    /** @default 200 */
    maxBackoffMs: 200,
  },
} as const;

/** Options of {@link EventSourcedRepository.load}. */
export interface AggregateLoadOptions extends CallOptions {
  /** Load the state at exactly this version (the fold of events 1..version). @default the newest */
  version?: number | undefined;
  /** Start from the newest usable snapshot. `false` folds from the first event. @default true */
  useSnapshot?: boolean | undefined;
  /** Most events this load folds. @default the repository's `maxEvents` */
  maxEvents?: number | undefined;
}

/** An aggregate's state at a version. */
export interface LoadedAggregate<S> {
  readonly id: string;
  readonly streamId: string;
  readonly state: S;
  /** The stream position the state includes (0 for a new aggregate in `handle`). */
  readonly version: number;
  /** The version of the snapshot the load started from; 0 when it folded from the first event. */
  readonly snapshotVersionAt: number;
  /** Events folded (after the snapshot). */
  readonly eventsFolded: number;
}

/** Options of {@link EventSourcedRepository.save}. */
export interface AggregateSaveOptions extends CallOptions {
  /**
   * The version the stream must have: a number (0 = nothing appended
   * yet), `"no_stream"`, `"stream_exists"` or `"any"` (see `ExpectedVersion`).
   * A mismatch is a `VersionConflictError { expected, actual }`, nothing appended.
   * @default "any"
   */
  expectedVersion?: ExpectedVersion | undefined;
  /** `true` writes a snapshot after this save; `false` none, even when `snapshotEvery` is due. @default per `snapshotEvery` */
  createSnapshot?: boolean | undefined;
  /** Metadata added to every event (an event's own keys win). @default none */
  metadata?: EventMetadata | undefined;
}

/** What {@link EventSourcedRepository.save} stored. */
export interface AggregateSaveResult {
  readonly id: string;
  readonly streamId: string;
  /** The stream's version after the save: the next expected version. */
  readonly version: number;
  /** Events appended. */
  readonly appended: number;
}

/** What a decider sees besides the state. */
export interface DecideContext {
  readonly id: string;
  /** The version the state was loaded at (0: a new aggregate). */
  readonly version: number;
  /** 1 on the first attempt, 2 after a first conflict… */
  readonly attempt: number;
}

/** Zero, one or several events. */
export type Decision<E> = E | readonly E[] | undefined | null;

/** Options of {@link EventSourcedRepository.handle}. */
export interface HandleOptions extends CallOptions {
  /** Overrides the repository's retry policy for this command; `false` = one attempt. */
  retry?: RetryPolicy | false | undefined;
  /** As in {@link AggregateSaveOptions.createSnapshot}. */
  createSnapshot?: boolean | undefined;
  /** As in {@link AggregateSaveOptions.metadata}. */
  metadata?: EventMetadata | undefined;
  /** As in {@link AggregateLoadOptions.maxEvents}. */
  maxEvents?: number | undefined;
}

/** What {@link EventSourcedRepository.handle} did. */
export interface HandleResult<S, E> {
  readonly id: string;
  readonly streamId: string;
  /**
   * The state after the new events (the loaded state when there were
   * none), as `evolve` made it from the events as decided; a load folds
   * them as stored (with their ids, timestamps and merged metadata, through
   * `upcast`), which an `evolve` that reads those sees differently.
   */
  readonly state: S;
  /** The version after the new events. */
  readonly version: number;
  /** The events appended (as decided). */
  readonly events: readonly E[];
  /** Attempts made (1 without a conflict). */
  readonly attempts: number;
}

/** The checked settings of a repository. */
export interface RepositorySettings<S, E extends AggregateEvent> {
  readonly eventStore: EventStore;
  readonly aggregateType: string;
  readonly initialState: () => S;
  readonly evolve: (state: S, event: E) => S;
  readonly streamIdOf: (id: string) => string;
  readonly upcast: ((event: RecordedEvent) => E) | undefined;
  readonly snapshots: SnapshotStore | undefined;
  readonly snapshotEvery: number;
  readonly snapshotVersion: number;
  readonly onSnapshotError: (info: SnapshotErrorInfo) => void;
  readonly maxEvents: number;
  readonly retry: Required<RetryPolicy>;
}

const OWNER = "EventSourcedRepository";
const OPTION_NAMES = [
  "eventStore",
  "aggregateType",
  "initialState",
  "evolve",
  "streamIdOf",
  "upcast",
  "snapshots",
  "snapshotEvery",
  "snapshotVersion",
  "onSnapshotError",
  "maxEvents",
  "retry",
];

function warn(info: SnapshotErrorInfo): void {
  const reason = info.error instanceof Error ? info.error.message : String(info.error);
  process.emitWarning(
    `${info.aggregateType} snapshot ${info.operation} of stream ${JSON.stringify(info.streamId)} failed: ${reason}`,
    "StatelogSnapshotWarning",
  );
}

function requiredFunction<O extends object, K extends keyof O & string>(check: OptionChecker<O>, name: K): O[K] {
  const f = check.optionalFunction(name);
  if (f === undefined) throw check.error(name, "a function (required)");
  return f as O[K];
}

/**
 * Checks the options of `EventSourcedRepository.open`.
 * @throws ConfigurationError naming the option, what it accepts and what it got
 */
export function checkEventSourcedOptions<S, E extends AggregateEvent>(
  options: EventSourcedRepositoryOptions<S, E>,
): RepositorySettings<S, E> {
  const check = new OptionChecker<EventSourcedRepositoryOptions<S, E>>(
    OWNER,
    options,
    EVENT_SOURCED_REPOSITORY_DEFAULTS,
  );
  check.known(OPTION_NAMES, { snapshotFrequency: "snapshotEvery", streamName: "streamIdOf" });
  const eventStore = check.custom<"eventStore", EventStore>("eventStore", (v) =>
    typeof v === "object" && v !== null && typeof (v as EventStore).append === "function"
      ? undefined
      : "an EventStore (MemoryEventStore, FileEventStore, NatsEventStore…)",
  );
  const aggregateType = check.string("aggregateType");
  try {
    validateName("aggregateType", aggregateType, false);
  } catch (error) {
    throw new ConfigurationError(`${OWNER} option aggregateType is not a valid name: ${String(error)}`);
  }
  const snapshots = check.custom<"snapshots", SnapshotStore | undefined>("snapshots", (v) =>
    v === undefined || (typeof v === "object" && v !== null && typeof (v as SnapshotStore).load === "function")
      ? undefined
      : "a SnapshotStore (MemorySnapshotStore, FileSnapshotStore, NatsKvSnapshotStore…)",
  );
  const given = check.optionalFunction("streamIdOf");
  if (given === undefined && aggregateType.includes("-")) {
    // The default stream names are `{aggregateType}-{id}`, the type being what comes before the first "-".
    throw new ConfigurationError(
      `${OWNER} option aggregateType must not contain "-" with the default streamIdOf (${JSON.stringify(aggregateType)}: ` +
        `aggregates of types "a" and "a-b" could share a stream, "a-b-1" being "a" "b-1" or "a-b" "1"); ` +
        `pass streamIdOf for another naming, such as (id) => \`${aggregateType}-\${id}\` to keep these stream names`,
    );
  }
  const streamIdOf = given ?? ((id: string) => `${aggregateType}-${id}`);
  const retryOn = (e: unknown) => isVersionConflictError(e);
  return {
    eventStore,
    aggregateType,
    initialState: requiredFunction(check, "initialState"),
    evolve: requiredFunction(check, "evolve"),
    streamIdOf,
    upcast: check.optionalFunction("upcast"),
    snapshots,
    snapshotEvery: check.integer("snapshotEvery", { min: 0 }),
    snapshotVersion: check.integer("snapshotVersion", { min: 0 }),
    onSnapshotError: check.optionalFunction("onSnapshotError") ?? warn,
    maxEvents: check.integer("maxEvents", { min: 1, infinity: true }),
    retry: checkRetryPolicy(
      check.value("retry") as RetryPolicy | undefined,
      { ...EVENT_SOURCED_REPOSITORY_DEFAULTS.retry, retryOn },
      `${OWNER} retry`,
    ),
  };
}
