/**
 * The Store contract every backend keeps (docs/concepts.md, "The Store
 * contract"): `save` persists changes, `load` returns the latest change per
 * key of one namespace, tombstones included, in the order the winning
 * changes were written. And {@link BaseStore}, the base a backend author
 * extends to keep the contract's common rules the same way every built-in
 * store does.
 */
import { type Change, type ChangeInput, ChangeType, type EntityType, validateWithSchema } from "./change.js";
import { ClosedError, throwIfAborted, UnknownEntityTypeError, ValidationError } from "./errors.js";
import {
  ChangeFeed,
  FeedNotifier,
  type FeedSource,
  feedBatchSize,
  feedPollIntervalMs,
  feedStart,
  type WatchOptions,
} from "./feed.js";
import { OptionChecker } from "./options.js";
import { toJsonWithin, validateEntityId, validateEntityType, validateNamespace } from "./validation.js";

/** What a store can do beyond `save`, `load` and `close`. */
export interface StoreCapabilities {
  /** `compact(namespace)` is available. */
  readonly compact: boolean;
  /** `listNamespaces()` is available. */
  readonly listNamespaces: boolean;
  /** A resolved `save` survives a restart of the process (and of the store). */
  readonly durable: boolean;
  /** `watch(namespace)` is available: a live change feed (docs/concepts.md, "Change feeds"). @default false */
  readonly watch?: boolean;
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
  /**
   * A live feed of `namespace` (when `capabilities.watch`): its current
   * state (or the changes after `options.from`), then a caught-up barrier,
   * then every later change, each with its position. No change is missed
   * or delivered twice between the initial part and the live part.
   * @throws ValidationError for invalid options (the feed throws `FeedBehindError` when it cannot continue)
   */
  watch?(namespace: string, options?: WatchOptions): ChangeFeed;
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

/** What a store does with a change of an entity type nobody registered. */
export const UnknownEntityTypes = {
  /** Stored and loaded as plain JSON, without a schema check. */
  Accept: "accept",
  /** Refused with an `UnknownEntityTypeError`: on save (nothing is written) and on load. */
  Reject: "reject",
} as const;
export type UnknownEntityTypes = (typeof UnknownEntityTypes)[keyof typeof UnknownEntityTypes];

/** An entity type as a store knows it: its name and, optionally, its schema. */
export type StoreEntityType = Pick<EntityType, "name" | "schema">;

/** Options every store accepts. */
export interface BaseStoreOptions {
  /** Largest entity, in bytes of UTF-8 JSON. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
  /** The clock that stamps changes saved without a timestamp. @default () => new Date() */
  clock?: () => Date;
  /**
   * Entity types registered from the start, as with `registerEntityType`:
   * their schemas check entities on save. @default []
   */
  entityTypes?: readonly (StoreEntityType | string)[];
  /** Changes of entity types that were not registered; see {@link UnknownEntityTypes}. @default "accept" */
  unknownEntityTypes?: UnknownEntityTypes;
}

/** Defaults of {@link BaseStoreOptions}. */
export const STORE_DEFAULTS = {
  /**
   * Size limit of one value (entity, event payload, aggregate, model): 1 MiB
   * of JSON, like NATS's payload and Kafka's message size; every backend's
   * default limit starts from this one.
   * @default 1048576 (1 MiB)
   */
  maxValueBytes: 1024 * 1024,
  /** @default "accept" */
  unknownEntityTypes: UnknownEntityTypes.Accept,
} as const;

/** The option names of {@link BaseStoreOptions}, for a backend's `OptionChecker.known` list. */
export const BASE_STORE_OPTION_NAMES: readonly string[] = [
  "maxValueBytes",
  "clock",
  "entityTypes",
  "unknownEntityTypes",
];

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

/**
 * What {@link EntityTypeRegistry.checkSave} checks of a change about to be
 * saved: its entity type and change type as they are stored, and (for a
 * `set` of a type with a schema) the entity as it was read for the JSON
 * stored. A {@link PreparedChange} is one without its entity.
 */
export interface TypeCheck {
  readonly entityType: string;
  readonly changeType: ChangeType;
  readonly entity?: unknown;
}

/** A prepared change as a {@link Change} with its own copy of the entity. */
export function toChange(prepared: PreparedChange): Change {
  const { namespace, entityType, entityId } = prepared;
  const timestamp = prepared.timestamp;
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
 * Checks one change of a `save`, all but its entity, from its fields as
 * the caller read them (once: what is checked is what gets stored): its
 * namespace, entity type and id, its timestamp (`now` when it has none),
 * its change type. Returns the timestamp in ms since the epoch. For a
 * backend that prepares changes its own way (as `MemoryStore` does), with
 * the same errors as {@link prepareChanges}; check that the change is an
 * object first (`changes[i]` "must be a change object").
 * @throws InvalidNameError | ValidationError
 */
export function checkChangeFields(
  index: number,
  namespace: string,
  entityType: string,
  entityId: string,
  changeType: ChangeType,
  timestamp: Date | undefined,
  now: Date,
): number {
  validateNamespace(namespace);
  validateEntityType(entityType);
  validateEntityId(entityId);
  const at = timestamp === undefined ? now : timestamp;
  const time = at instanceof Date ? at.getTime() : Number.NaN;
  if (Number.isNaN(time)) throw new ValidationError(`changes[${index}].timestamp`, "must be a valid Date");
  if (changeType !== ChangeType.Set && changeType !== ChangeType.Unset) {
    throw new ValidationError(
      `changes[${index}].changeType`,
      `must be "set" or "unset", got ${JSON.stringify(changeType as unknown)}`,
    );
  }
  return time;
}

/** Throws unless `input` (change number `index` of a save) is an object. */
export function checkChangeObject(input: unknown, index: number): asserts input is ChangeInput {
  if (typeof input !== "object" || input === null) {
    throw new ValidationError(`changes[${index}]`, "must be a change object");
  }
}

/**
 * Validates changes before a save and makes each entity's JSON text:
 * names, values, size, timestamps. Throws on the first invalid change, so
 * a backend that calls this first writes nothing when any change is bad.
 * @throws InvalidNameError | InvalidValueError | TooLargeError | ValidationError
 */
export function prepareChanges(
  changes: readonly ChangeInput[],
  options: { maxValueBytes?: number | undefined; clock?: (() => Date) | undefined } = {},
): PreparedChange[] {
  return prepareAll(changes, options, undefined);
}

/** {@link prepareChanges}, also keeping in `entities` (when given) each `set` change's entity as it was read. */
function prepareAll(
  changes: readonly ChangeInput[],
  options: { maxValueBytes?: number | undefined; clock?: (() => Date) | undefined },
  entities: unknown[] | undefined,
): PreparedChange[] {
  if (!Array.isArray(changes)) throw new ValidationError("changes", "must be an array of changes");
  const maxBytes = options.maxValueBytes ?? STORE_DEFAULTS.maxValueBytes;
  const now = (options.clock ?? (() => new Date()))();
  const out: PreparedChange[] = new Array(changes.length);
  for (let i = 0; i < changes.length; i++) {
    const input: unknown = changes[i];
    checkChangeObject(input, i);
    // Each field read once: what is checked is what is stored.
    const { namespace, entityType, entityId, changeType } = input;
    const time = checkChangeFields(i, namespace, entityType, entityId, changeType, input.timestamp, now);
    let json: string | undefined;
    if (changeType === ChangeType.Set) {
      const entity = input.entity;
      if (entities) entities[i] = entity;
      // The messages are built only on error (arrow functions passed inline: nothing is made per change but them).
      json = toJsonWithin(
        entity,
        maxBytes,
        () => `${entityType} ${JSON.stringify(entityId)}`,
        () => `changes[${i}].entity`,
      );
    }
    out[i] = { namespace, changeType, entityType, entityId, timestamp: new Date(time), json };
  }
  return out;
}

/** Applies {@link LoadOptions.liveOnly} to a loaded list (for a backend that cannot filter while it reads). */
export function applyLoadOptions(changes: Change[], options: LoadOptions | undefined): Change[] {
  return options?.liveOnly ? changes.filter((c) => c.changeType === ChangeType.Set) : changes;
}

/**
 * Tracks the open/closed state of a store or client: `check()` throws a
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

/**
 * The registered entity types of a store, and the rule for the others.
 * {@link BaseStore} keeps one; a store that cannot extend `BaseStore`
 * keeps its own.
 */
export class EntityTypeRegistry {
  readonly #types = new Map<string, StoreEntityType>();
  readonly #reject: boolean;

  constructor(options: Pick<BaseStoreOptions, "entityTypes" | "unknownEntityTypes"> = {}) {
    this.#reject = (options.unknownEntityTypes ?? STORE_DEFAULTS.unknownEntityTypes) === UnknownEntityTypes.Reject;
    for (const type of options.entityTypes ?? []) this.register(type);
  }

  /** Registers `type` (a name, or an entity type with its schema); registering a name again replaces it. */
  register(type: StoreEntityType | string): void {
    const entityType: StoreEntityType = typeof type === "string" ? { name: type } : type;
    validateEntityType(entityType.name);
    this.#types.set(entityType.name, entityType);
  }

  /** The registered type names. */
  get names(): string[] {
    return [...this.#types.keys()];
  }

  /** True when {@link checkSave} checks anything: types are registered, or unknown ones refused. */
  get checksSaves(): boolean {
    return this.#types.size > 0 || this.#reject;
  }

  /** True when {@link checkSave} looks at entities: a registered type may have a schema. */
  get checksEntities(): boolean {
    return this.#types.size > 0;
  }

  /**
   * Checks changes about to be saved, as they are stored: a registered
   * type's schema validates each `set` entity, and unknown types are refused
   * under `"reject"`. Pass the entities (`entity`) when
   * {@link checksEntities}; otherwise the prepared changes will do.
   * @throws ValidationError | UnknownEntityTypeError (nothing may be written then)
   */
  checkSave(changes: readonly TypeCheck[]): void {
    if (this.#types.size === 0 && !this.#reject) return;
    for (const change of changes) {
      const type = this.#types.get(change.entityType);
      if (!type) {
        if (this.#reject) throw this.#unknown(change.entityType, "nothing was saved");
        continue;
      }
      if (type.schema && change.changeType === ChangeType.Set) validateWithSchema(type, change.entity);
    }
  }

  /**
   * Checks a loaded change under `"reject"`: its type must be registered.
   * (Schemas run on save; the Manager's apply runs them again on restore.)
   * @throws UnknownEntityTypeError
   */
  checkLoaded(change: Change): void {
    if (this.#reject && !this.#types.has(change.entityType)) {
      throw this.#unknown(change.entityType, `found in namespace ${JSON.stringify(change.namespace)}`);
    }
  }

  #unknown(entityType: string, what: string): UnknownEntityTypeError {
    return new UnknownEntityTypeError(
      entityType,
      `register it with store.registerEntityType() (registered: ${this.names.join(", ") || "none"}) or open the store with unknownEntityTypes: "accept"; ${what}`,
    );
  }
}

/**
 * The base of a store: what every built-in store does the same way, for a
 * backend author to extend. It checks the common options, keeps the
 * open/closed state (every call after `close()` is a `ClosedError`),
 * registers entity types, and prepares the changes of a `save`:
 * names, values, sizes, timestamps and schemas checked, **before** the
 * subclass writes anything.
 *
 * A subclass implements `capabilities`, `save` (starting with
 * `this.prepare(changes, options)`), `load` (starting with
 * `this.checkOpen(namespace, options)`), optionally `compact` and
 * `listNamespaces`, and `closeResources()`.
 *
 * @example
 * class MyStore extends BaseStore {
 *   readonly capabilities = { compact: false, listNamespaces: false, durable: true };
 *   static async open(options: MyStoreOptions): Promise<MyStore> { … }
 *   async save(changes: readonly ChangeInput[], options?: SaveOptions) {
 *     const prepared = this.prepare(changes, options);
 *     …write prepared…
 *   }
 *   async load(namespace: string, options?: LoadOptions) {
 *     this.checkOpen(namespace, options);
 *     …read, then this.loaded(change) per change…
 *   }
 *   protected async closeResources() { … }
 * }
 */
export abstract class BaseStore implements Store {
  abstract readonly capabilities: StoreCapabilities;
  /** Largest entity in bytes of UTF-8 JSON (see {@link lowerMaxValueBytes}). */
  protected maxValueBytes: number;
  /** The clock of changes saved without a timestamp. */
  protected readonly clock: () => Date;
  /** The registered entity types. */
  protected readonly types: EntityTypeRegistry;
  /** Wakes this store's feeds: call `feedNotifier.notify(namespace)` after a save. */
  protected readonly feedNotifier = new FeedNotifier();
  readonly #state: OpenState;
  readonly #feeds = new Set<ChangeFeed>();
  /** Feeds ended whose sources are still releasing what they hold. */
  readonly #releasing = new Set<Promise<void>>();

  /**
   * @param description what the store is, for `ClosedError` messages: `"file store"`
   * @param options the store's options; the common ones are checked here
   * @param owner the class name, for `ConfigurationError` messages
   * @throws ConfigurationError for an invalid common option
   */
  protected constructor(description: string, options: BaseStoreOptions = {}, owner = "store") {
    const check = new OptionChecker<BaseStoreOptions>(owner, options, STORE_DEFAULTS);
    this.maxValueBytes = check.integer("maxValueBytes", { min: 1 });
    this.clock = check.optionalFunction("clock") ?? (() => new Date());
    check.oneOf("unknownEntityTypes", UnknownEntityTypes);
    check.custom("entityTypes", (v) => (v === undefined || Array.isArray(v) ? undefined : "an array of entity types"));
    this.types = new EntityTypeRegistry(options);
    this.#state = new OpenState(description);
  }
  /**
   * Lowers `maxValueBytes` to `limit` (a larger `limit` changes nothing):
   * for a backend that learns a smaller limit of its own while it opens,
   * before any write (a NATS stream's largest message, `max_msg_size`).
   */
  protected lowerMaxValueBytes(limit: number): void {
    if (limit < this.maxValueBytes) this.maxValueBytes = limit;
  }

  /**
   * Registers an entity type: its schema (if any) checks entities on save,
   * before anything is written. Under `unknownEntityTypes: "reject"` only
   * registered types may be saved and loaded.
   */
  registerEntityType(type: StoreEntityType | string): this {
    this.types.register(type);
    return this;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#state.closed;
  }

  /**
   * The checks at the start of every call: not closed, not aborted, and a
   * valid namespace when one is given.
   * @throws ClosedError | AbortError | InvalidNameError
   */
  protected checkOpen(namespace?: string, options?: CallOptions): void {
    this.#state.check();
    if (namespace !== undefined) validateNamespace(namespace);
    throwIfAborted(options?.signal);
  }

  /**
   * The start of a `save`: {@link checkOpen}, then every change validated
   * and prepared (see {@link prepareChanges}) and checked against the
   * registered types. When it throws, nothing may be written.
   */
  protected prepare(changes: readonly ChangeInput[], options?: SaveOptions): PreparedChange[] {
    this.checkOpen(undefined, options);
    const limits = { maxValueBytes: this.maxValueBytes, clock: this.clock };
    // Without registered types no entity is looked at again (a save is refused, or not checked further).
    if (!this.types.checksEntities) {
      const prepared = prepareChanges(changes, limits);
      this.types.checkSave(prepared);
      return prepared;
    }
    // Schemas check the entities as they were read for the JSON stored, not as a getter answers a second time.
    const entities: unknown[] = new Array(changes.length);
    const prepared = prepareAll(changes, limits, entities);
    this.types.checkSave(
      prepared.map((p, i) => ({ entityType: p.entityType, changeType: p.changeType, entity: entities[i] })),
    );
    return prepared;
  }

  /** A loaded change, checked against the registered types (see {@link EntityTypeRegistry.checkLoaded}). */
  protected loaded<C extends Change>(change: C): C {
    this.types.checkLoaded(change);
    return change;
  }

  abstract save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void>;
  abstract load(namespace: string, options?: LoadOptions): Promise<Change[]>;

  /**
   * The start of a `watch`: {@link checkOpen}, the options checked, then a
   * {@link ChangeFeed} over `makeSource`'s source that ends when the store
   * closes. `makeSource` gets the checked poll interval and batch size
   * (the most changes one read after the initial state may take; a source
   * that stops there says so with `FeedBatch.more`).
   * @throws ClosedError | InvalidNameError | ValidationError
   */
  protected openFeed(
    namespace: string,
    options: WatchOptions | undefined,
    makeSource: (pollIntervalMs: number, batchSize: number) => FeedSource,
  ): ChangeFeed {
    this.#state.check();
    validateNamespace(namespace);
    feedStart(options);
    const source = makeSource(feedPollIntervalMs(options), feedBatchSize(options));
    const feed = new ChangeFeed(namespace, source, options, {
      isClosed: () => this.#state.closed,
      onEnd: (f) => {
        this.#feeds.delete(f);
        // Its source may still be releasing what it holds: close() waits for that too.
        const released = f[Symbol.asyncDispose]();
        this.#releasing.add(released);
        void released.finally(() => this.#releasing.delete(released));
      },
    });
    if (!feed.ended) this.#feeds.add(feed);
    return feed;
  }

  /** Releases the store's resources; called once, by the first `close()`. */
  protected abstract closeResources(): Promise<void>;

  /**
   * Releases resources, ending its feeds and waiting until each released
   * what it holds (a Kafka feed its consumer); later calls fail with a
   * `ClosedError`. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#state.close()) return;
    for (const feed of [...this.#feeds]) feed.close();
    await Promise.all(this.#releasing);
    await this.closeResources();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
