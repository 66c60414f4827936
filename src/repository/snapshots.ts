/**
 * The snapshot-store contract of event-sourced repositories
 * (docs/aggregates.md): states of aggregates at a version of their stream,
 * so that a load folds only the events after the newest usable snapshot.
 * Implementations: `MemorySnapshotStore` (`statelog/memory`),
 * `FileSnapshotStore` (`statelog/file`), `NatsKvSnapshotStore`
 * (`statelog/nats`); `describeSnapshotStoreContract` (`statelog/testing`)
 * checks them.
 *
 * A snapshot is only an optimisation: losing one (a failed write, a
 * damaged file, a bumped `snapshotVersion`) never changes what a load
 * returns, only how many events it folds.
 */
import {
  type CallOptions,
  CorruptionError,
  copyJsonWithin,
  OptionChecker,
  ValidationError,
  validateName,
} from "../index.js";

/** The state of one aggregate at one version of its stream. */
export interface AggregateSnapshot<S = unknown> {
  /** The event stream the state was folded from. */
  readonly streamId: string;
  /** The stream position the state includes: the fold of events 1..version. */
  readonly version: number;
  /**
   * The version of the state's shape (and of `evolve`), chosen by the
   * repository's owner: a snapshot whose `snapshotVersion` differs from
   * the repository's is stale and never used.
   */
  readonly snapshotVersion: number;
  /** The state (JSON data for the durable stores). */
  readonly state: S;
  /** When the snapshot was taken. */
  readonly createdAt: Date;
}

/** Options of {@link SnapshotStore.load}. */
export interface SnapshotLoadOptions extends CallOptions {
  /** Only snapshots at or below this version. @default no bound (the newest) */
  maxVersion?: number | undefined;
  /** Only snapshots of this `snapshotVersion`. @default any */
  snapshotVersion?: number | undefined;
}

/** What a snapshot store can do beyond the basics. */
export interface SnapshotStoreCapabilities {
  /** Snapshots survive a restart of the process. */
  readonly durable: boolean;
}

/** A store of aggregate snapshots, keyed by stream. */
export interface SnapshotStore extends AsyncDisposable {
  readonly capabilities: SnapshotStoreCapabilities;
  /**
   * Stores `snapshot`. The store keeps the newest `maxSnapshotsPerStream`
   * snapshots of a stream (by `version`) and drops those of another
   * `snapshotVersion` than the one saved (they are stale).
   * @throws InvalidNameError | ValidationError for a bad stream id or version; ClosedError | AbortError
   */
  save(snapshot: AggregateSnapshot, options?: CallOptions): Promise<void>;
  /**
   * The snapshot of `streamId` with the highest `version` at or below
   * `maxVersion` (and of `snapshotVersion` when given), or `undefined`.
   */
  load(streamId: string, options?: SnapshotLoadOptions): Promise<AggregateSnapshot | undefined>;
  /** Removes every snapshot of `streamId`; true when there was one. */
  delete(streamId: string, options?: CallOptions): Promise<boolean>;
  /** Releases resources (never a client it was given); later calls fail with a `ClosedError`. Idempotent. */
  close(): Promise<void>;
}

/** Options every snapshot store accepts. */
export interface SnapshotStoreOptions {
  /**
   * Snapshots kept per stream, newest versions first: more lets
   * `load(id, { version })` of older versions start from a snapshot.
   * An integer from 1 to 64.
   * @default 8
   */
  maxSnapshotsPerStream?: number;
}

/** Defaults of {@link SnapshotStoreOptions}. */
export const SNAPSHOT_STORE_DEFAULTS = {
  /** @default 8 */
  maxSnapshotsPerStream: 8,
} as const;

/** Most snapshots a store keeps per stream (NATS KV's history limit). */
export const MAX_SNAPSHOTS_PER_STREAM = 64;

/** The option names of {@link SnapshotStoreOptions}, for a backend's `OptionChecker.known` list. */
export const SNAPSHOT_STORE_OPTION_NAMES: readonly string[] = ["maxSnapshotsPerStream"];

/**
 * Checks `maxSnapshotsPerStream` and refuses unknown options (the backend
 * passes its own names).
 * @throws ConfigurationError
 */
export function checkSnapshotStoreOptions<O extends SnapshotStoreOptions>(
  owner: string,
  options: O | undefined,
  ownOptionNames: readonly string[],
  defaults: Partial<Record<keyof O, unknown>> = {},
): { check: OptionChecker<O>; maxSnapshotsPerStream: number } {
  const all = { ...SNAPSHOT_STORE_DEFAULTS, ...defaults } as Partial<Record<keyof O, unknown>>;
  const check = new OptionChecker<O>(owner, options, all);
  check.known([...SNAPSHOT_STORE_OPTION_NAMES, ...ownOptionNames]);
  const maxSnapshotsPerStream = check.integer("maxSnapshotsPerStream" as keyof O & string, {
    min: 1,
    max: MAX_SNAPSHOTS_PER_STREAM,
  });
  return { check, maxSnapshotsPerStream };
}

/**
 * Checks a snapshot before it is stored and returns a plain copy of its
 * fields: a valid stream id, integer versions (`version` >= 1,
 * `snapshotVersion` >= 0), a valid `createdAt`.
 * @throws InvalidNameError | ValidationError
 */
export function checkSnapshot<S>(snapshot: AggregateSnapshot<S>): AggregateSnapshot<S> {
  if (typeof snapshot !== "object" || snapshot === null) {
    throw new ValidationError("snapshot", "must be an object { streamId, version, snapshotVersion, state, createdAt }");
  }
  validateName("streamId", snapshot.streamId, true);
  if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) {
    throw new ValidationError("snapshot.version", `must be an integer >= 1, got ${String(snapshot.version)}`);
  }
  checkSnapshotVersion(snapshot.snapshotVersion, "snapshot.snapshotVersion");
  if (!(snapshot.createdAt instanceof Date) || Number.isNaN(snapshot.createdAt.getTime())) {
    throw new ValidationError("snapshot.createdAt", "must be a valid Date");
  }
  const { streamId, version, snapshotVersion, state, createdAt } = snapshot;
  return { streamId, version, snapshotVersion, state, createdAt };
}

/**
 * `value` without the properties whose value is `undefined`, in its plain
 * objects and arrays (the same value when it has none; anything else is
 * left as it is, for the JSON check). `path`: the objects above, so that a
 * cycle is left for the check to report.
 */
function withoutUndefinedProperties(value: unknown, path: object[]): unknown {
  if (typeof value !== "object" || value === null || path.includes(value)) return value;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return value;
    path.push(value);
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const w = withoutUndefinedProperties(v, path);
      if (w !== v) {
        copy ??= value.slice();
        copy[i] = w;
      }
    }
    path.pop();
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  path.push(value);
  const entries = Object.entries(value);
  /** The entries kept, once one differs (those before it as they are, in their order). */
  let kept: [string, unknown][] | undefined;
  for (const [i, [key, v]] of entries.entries()) {
    const w = v === undefined ? undefined : withoutUndefinedProperties(v, path);
    if (kept === undefined) {
      if (w === v && v !== undefined) continue;
      kept = entries.slice(0, i);
    }
    if (w !== undefined) kept.push([key, w]);
  }
  path.pop();
  // fromEntries defines each key, "__proto__" included, as its own property.
  return kept === undefined ? value : Object.fromEntries(kept);
}

/**
 * The state of a checked snapshot (from {@link checkSnapshot}) as a store
 * that writes JSON keeps it: a copy (later changes of the caller's object
 * cannot reach the store) that is JSON data, properties whose value is
 * `undefined` left out as `JSON.stringify` leaves them (a state type's
 * optional fields). What JSON would change otherwise (a `Date` into a
 * string, a `Map` into `{}`, `NaN` into `null`) is refused, so that a load
 * through the snapshot never returns another state than the fold of the
 * events. For backend authors of JSON snapshot stores.
 * @throws InvalidValueError naming where in `snapshot.state`
 */
export function snapshotStateJson(snapshot: AggregateSnapshot): unknown {
  return copyJsonWithin(
    withoutUndefinedProperties(snapshot.state ?? null, []),
    Number.POSITIVE_INFINITY,
    () => `snapshot of stream ${JSON.stringify(snapshot.streamId)}`,
    "snapshot.state",
  );
}

/** Checks a `snapshotVersion`: an integer >= 0. @throws ValidationError */
export function checkSnapshotVersion(v: unknown, field = "snapshotVersion"): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new ValidationError(field, `must be an integer >= 0, got ${String(v)}`);
  }
  return v;
}

/**
 * Checks the options of {@link SnapshotStore.load} and the stream id.
 * @throws InvalidNameError | ValidationError
 */
export function checkSnapshotLoad(streamId: string, options: SnapshotLoadOptions | undefined): void {
  if (streamId !== lastValidStreamId) {
    validateName("streamId", streamId, true);
    lastValidStreamId = streamId;
  }
  const max = options?.maxVersion;
  if (max !== undefined && (typeof max !== "number" || !Number.isSafeInteger(max) || max < 0)) {
    throw new ValidationError("maxVersion", `must be an integer >= 0, got ${String(max)}`);
  }
  if (options?.snapshotVersion !== undefined) checkSnapshotVersion(options.snapshotVersion);
}

/** The last stream id {@link checkSnapshotLoad} found valid (loads of one stream, over and over, are common). */
let lastValidStreamId: string | undefined;

/**
 * Picks from `candidates` the snapshot a load returns: the highest
 * `version` at or below `maxVersion`, of `snapshotVersion` when given.
 */
export function pickSnapshot<T extends AggregateSnapshot<unknown>>(
  candidates: Iterable<T>,
  options: SnapshotLoadOptions | undefined,
): T | undefined {
  let best: T | undefined;
  for (const s of candidates) {
    if (options?.maxVersion !== undefined && s.version > options.maxVersion) continue;
    if (options?.snapshotVersion !== undefined && s.snapshotVersion !== options.snapshotVersion) continue;
    if (best === undefined || s.version > best.version) best = s;
  }
  return best;
}

/**
 * The snapshots a store keeps after saving `added` next to `existing`:
 * those of `added.snapshotVersion` (others are stale), one per version
 * (`added` replaces an equal one), the newest `max` by version.
 */
export function retainSnapshots<T extends AggregateSnapshot<unknown>>(
  existing: readonly T[],
  added: T,
  max: number,
): T[] {
  const kept = existing.filter((s) => s.snapshotVersion === added.snapshotVersion && s.version !== added.version);
  kept.push(added);
  kept.sort((a, b) => a.version - b.version);
  return kept.slice(Math.max(0, kept.length - max));
}

/** A snapshot as a durable store writes it: JSON data, `createdAt` as an ISO string. */
export interface SnapshotJson {
  /** The stream (stores that keep one stream per record write it; others keep it beside). */
  readonly streamId?: string;
  readonly version: number;
  readonly snapshotVersion: number;
  readonly createdAt: string;
  readonly state: unknown;
}

/**
 * A stored snapshot read back: checks its fields and that it belongs to
 * `streamId` (when it names its stream).
 * @param where the file or bucket it was read from, for the error
 * @throws CorruptionError naming `where` when a field is missing or wrong
 */
export function snapshotFromJson(value: unknown, streamId: string, where: string): AggregateSnapshot {
  const s = value as Partial<SnapshotJson> | null;
  const createdAt = new Date(s?.createdAt ?? Number.NaN);
  if (
    typeof s !== "object" ||
    s === null ||
    (s.streamId !== undefined && s.streamId !== streamId) ||
    !Number.isSafeInteger(s.version) ||
    !Number.isSafeInteger(s.snapshotVersion) ||
    Number.isNaN(createdAt.getTime()) ||
    !("state" in s)
  ) {
    throw new CorruptionError(
      where,
      undefined,
      `snapshot of ${JSON.stringify(streamId)} has no valid stream id, version, snapshotVersion, createdAt or state`,
    );
  }
  return {
    streamId,
    version: s.version as number,
    snapshotVersion: s.snapshotVersion as number,
    state: s.state,
    createdAt,
  };
}
