/**
 * The Store contract every backend keeps (SEMANTICS.md): `save` persists
 * changes, `load` returns the latest change per key of one namespace,
 * tombstones included, in the order the winning changes were written.
 */
import { type Change, type ChangeInput, ChangeType, liveChanges } from "./change.js";
import { ClosedError, ValidationError } from "./errors.js";
import {
  DEFAULT_MAX_CHANGE_BYTES,
  toJsonWithin,
  validateEntityId,
  validateEntityType,
  validateNamespace,
} from "./validation.js";

/** What a store can do beyond `save`, `load` and `close`. */
export interface StoreCapabilities {
  /** `compact(namespace)` is available. */
  readonly compact: boolean;
  /** `listNamespaces()` is available. */
  readonly listNamespaces: boolean;
  /** A resolved `save` survives a restart of the process (and of the store). */
  readonly durable: boolean;
}

/** Options of every call: cancellation. */
export interface CallOptions {
  /** Aborts the call. What was already written stays written. */
  signal?: AbortSignal | undefined;
}

/** Options of {@link ReadonlyStore.load}. */
export interface LoadOptions extends CallOptions {
  /** Leave out `unset` tombstones: only live entities. @default false */
  liveOnly?: boolean | undefined;
}

/** Options of {@link Store.save}. */
export interface SaveOptions extends CallOptions {}

/** The read side of a store. */
export interface ReadonlyStore extends AsyncDisposable {
  /** What the store can do beyond the basics. */
  readonly capabilities: StoreCapabilities;
  /**
   * The latest change per key of `namespace`, tombstones included (unless
   * `liveOnly`), ordered by when the winning change was written. A namespace
   * that does not exist loads as `[]`.
   */
  load(namespace: string, options?: LoadOptions): Promise<Change[]>;
  /** Every namespace that holds at least one change (when `capabilities.listNamespaces`). */
  listNamespaces?(options?: CallOptions): Promise<string[]>;
  /** Releases resources; later calls fail with a `ClosedError`. Idempotent. */
  close(): Promise<void>;
}

/** A store of compacted changelogs. */
export interface Store extends ReadonlyStore {
  /**
   * Persists `changes` in order; the later change of a key wins. Validates
   * every change first and writes nothing if one is invalid. Resolves once
   * the changes are stored as durably as the backend promises. Never
   * mutates its input; changes without a timestamp get the store's clock.
   */
  save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void>;
  /** Rewrites `namespace` to its latest change per key (when `capabilities.compact`). */
  compact?(namespace: string, options?: CallOptions): Promise<void>;
}

/** Options every store accepts. */
export interface BaseStoreOptions {
  /** Largest entity, in bytes of UTF-8 JSON. @default 1 MiB ({@link DEFAULT_MAX_CHANGE_BYTES}) */
  maxChangeBytes?: number;
  /** The clock that stamps changes saved without a timestamp. @default () => new Date() */
  clock?: () => Date;
}

/** A validated change with its timestamp filled in and its entity serialized. */
export interface PreparedChange {
  readonly namespace: string;
  readonly changeType: ChangeType;
  readonly entityType: string;
  readonly entityId: string;
  /** A copy of the input's timestamp, or the store's clock. */
  readonly timestamp: Date;
  /** The entity's JSON text (`undefined` for `unset`). */
  readonly json: string | undefined;
}

/** A prepared change as a {@link Change} with its own copy of the entity. */
export function toChange(prepared: PreparedChange): Change {
  const { namespace, entityType, entityId, timestamp } = prepared;
  return prepared.json === undefined
    ? { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp: new Date(timestamp.getTime()) }
    : {
        namespace,
        changeType: ChangeType.Set,
        entityType,
        entityId,
        entity: JSON.parse(prepared.json),
        timestamp: new Date(timestamp.getTime()),
      };
}

/**
 * Validates and copies changes before a save: names, values, size,
 * timestamps. Throws on the first invalid change, so a backend that calls
 * this first writes nothing when any change is bad.
 * @throws InvalidNameError | InvalidValueError | TooLargeError | ValidationError
 */
export function prepareChanges(
  changes: readonly ChangeInput[],
  options: { maxChangeBytes?: number | undefined; clock?: (() => Date) | undefined } = {},
): PreparedChange[] {
  if (!Array.isArray(changes)) throw new ValidationError("changes", "must be an array of changes");
  const maxBytes = options.maxChangeBytes ?? DEFAULT_MAX_CHANGE_BYTES;
  const now = (options.clock ?? (() => new Date()))();
  const out: PreparedChange[] = new Array(changes.length);
  for (let i = 0; i < changes.length; i++) {
    const input = changes[i] as ChangeInput | undefined;
    if (typeof input !== "object" || input === null) {
      throw new ValidationError(`changes[${i}]`, "must be a change object");
    }
    validateNamespace(input.namespace);
    validateEntityType(input.entityType);
    validateEntityId(input.entityId);
    const timestamp = input.timestamp === undefined ? now : input.timestamp;
    if (!(timestamp instanceof Date) || Number.isNaN(timestamp.getTime())) {
      throw new ValidationError(`changes[${i}].timestamp`, "must be a valid Date");
    }
    let json: string | undefined;
    if (input.changeType === ChangeType.Set) {
      json = toJsonWithin(
        input.entity,
        maxBytes,
        () => `${input.entityType} ${JSON.stringify(input.entityId)}`,
        () => `changes[${i}].entity`,
      );
    } else if (input.changeType !== ChangeType.Unset) {
      throw new ValidationError(
        `changes[${i}].changeType`,
        `must be "set" or "unset", got ${JSON.stringify((input as { changeType?: unknown }).changeType)}`,
      );
    }
    out[i] = {
      namespace: input.namespace,
      changeType: input.changeType,
      entityType: input.entityType,
      entityId: input.entityId,
      timestamp: new Date(timestamp.getTime()),
      json,
    };
  }
  return out;
}

/** Applies {@link LoadOptions.liveOnly} to a loaded list. */
export function applyLoadOptions(changes: Change[], options: LoadOptions | undefined): Change[] {
  return options?.liveOnly ? liveChanges(changes) : changes;
}

/**
 * Tracks the open/closed state of a store: `check()` throws a
 * `ClosedError` after `close()`.
 */
export class OpenState {
  #closed = false;
  constructor(private readonly what: string) {}
  get closed(): boolean {
    return this.#closed;
  }
  /** @throws ClosedError once closed */
  check(): void {
    if (this.#closed) throw new ClosedError(this.what);
  }
  /** Marks closed; returns false when it already was. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }
}
