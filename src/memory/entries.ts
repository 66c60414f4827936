/**
 * What a {@link MemoryStore} holds per namespace: the latest change of each
 * key, found by entity type and id, and linked in position order (the
 * order `load` returns and a feed delivers). A change to a key updates its
 * entry in place and moves it to the end of the list: no entry allocated
 * and one map lookup per change. (Overwriting the stored entity copy in
 * place as well was measured slower: writes into old objects cost more
 * than the new copy's garbage collection.)
 */
import {
  type Change,
  type ChangeInput,
  ChangeType,
  checkChangeFields,
  checkChangeObject,
  copyJsonData,
  copyJsonWithin,
  STORE_DEFAULTS,
  ValidationError,
} from "../index.js";

/** The latest change of one key. */
export class Entry {
  /** The entry changed just before this one (`undefined` for the first). */
  prev: Entry | undefined = undefined;
  /** The entry changed just after this one (`undefined` for the last). */
  next: Entry | undefined = undefined;
  constructor(
    readonly entityType: string,
    readonly entityId: string,
    public changeType: ChangeType,
    /** The timestamp, in ms since the epoch. */
    public time: number,
    /** The store's own copy of the entity (`undefined` for `unset`): handed out only as copies. */
    public entity: unknown,
    /** The position of the change in its namespace. */
    public position: number,
  ) {}

  /** The change as a caller gets it: its own copy of the entity and of the timestamp. */
  toChange(namespace: string): Change {
    const { entityType, entityId } = this;
    return this.changeType === ChangeType.Unset
      ? { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp: new Date(this.time) }
      : {
          namespace,
          changeType: ChangeType.Set,
          entityType,
          entityId,
          entity: copyJsonData(this.entity),
          timestamp: new Date(this.time),
        };
  }
}

/** The entries of one namespace. */
export class Entries {
  /** entity type → entity id → entry (two lookups of the given strings: no key string is built). */
  readonly #byType = new Map<string, Map<string, Entry>>();
  /** The earliest entry (lowest position). */
  first: Entry | undefined = undefined;
  /** The latest entry (highest position). */
  last: Entry | undefined = undefined;
  /** How many keys (entities and tombstones). */
  size = 0;

  /** @param position the position of the namespace's last change (numbering continues after a clear) */
  constructor(
    readonly namespace: string,
    public position: number,
  ) {}

  /** Records a change of a key: it gets the next position and becomes the last entry. */
  put(entityType: string, entityId: string, changeType: ChangeType, time: number, entity: unknown): void {
    const position = ++this.position;
    let ids = this.#byType.get(entityType);
    if (ids === undefined) {
      ids = new Map();
      this.#byType.set(entityType, ids);
    }
    let entry = ids.get(entityId);
    if (entry === undefined) {
      entry = new Entry(entityType, entityId, changeType, time, entity, position);
      ids.set(entityId, entry);
      this.size++;
    } else {
      entry.changeType = changeType;
      entry.time = time;
      entry.entity = entity;
      entry.position = position;
      if (entry === this.last) return;
      // Unlink (it is not the last, so it has a next).
      const next = entry.next as Entry;
      next.prev = entry.prev;
      if (entry.prev === undefined) this.first = next;
      else entry.prev.next = next;
      entry.next = undefined;
    }
    entry.prev = this.last;
    if (this.last === undefined) this.first = entry;
    else this.last.next = entry;
    this.last = entry;
  }

  /** The first entry whose position is after `position` (`undefined` if none): walks back from the end. */
  after(position: number): Entry | undefined {
    let e = this.last;
    if (e === undefined || e.position <= position) return undefined;
    while (e.prev !== undefined && e.prev.position > position) e = e.prev;
    return e;
  }
}

/**
 * The changes of a `save`, checked, by index: the values read once from
 * each input (what is stored is exactly what was checked).
 */
export interface PreparedCopies {
  readonly namespaces: string[];
  readonly entityTypes: string[];
  readonly entityIds: string[];
  readonly changeTypes: ChangeType[];
  /** Each change's timestamp in ms since the epoch (the store's clock when it had none). */
  readonly times: number[];
  /** Each `set` change's entity, copied (`undefined` for `unset`). */
  readonly entities: unknown[];
}

/**
 * Checks the changes of a `save` as `BaseStore.prepare` does (with
 * `checkChangeFields`: the same checks and errors) and copies their
 * entities, without building a prepared change per change: a memory store
 * stores the copies in its entries directly. Throws on the first invalid
 * change: nothing is written.
 * @throws InvalidNameError | InvalidValueError | TooLargeError | ValidationError
 */
export function prepareCopies(
  changes: readonly ChangeInput[],
  maxValueBytes: number | undefined,
  clock: () => Date,
): PreparedCopies {
  if (!Array.isArray(changes)) throw new ValidationError("changes", "must be an array of changes");
  const maxBytes = maxValueBytes ?? STORE_DEFAULTS.maxValueBytes;
  const now = clock();
  const n = changes.length;
  const namespaces: string[] = new Array(n);
  const entityTypes: string[] = new Array(n);
  const entityIds: string[] = new Array(n);
  const changeTypes: ChangeType[] = new Array(n);
  const times: number[] = new Array(n);
  const entities: unknown[] = new Array(n);
  // The messages of a size or value error name the change being copied: built only on error.
  let current = 0;
  const what = (): string => {
    const input = changes[current] as ChangeInput;
    return `${input.entityType} ${JSON.stringify(input.entityId)}`;
  };
  const path = (): string => `changes[${current}].entity`;
  for (let i = 0; i < n; i++) {
    const input: unknown = changes[i];
    checkChangeObject(input, i);
    const { namespace, entityType, entityId, changeType } = input;
    times[i] = checkChangeFields(i, namespace, entityType, entityId, changeType, input.timestamp, now);
    if (changeType === ChangeType.Set) {
      current = i;
      entities[i] = copyJsonWithin(input.entity, maxBytes, what, path);
    }
    namespaces[i] = namespace;
    entityTypes[i] = entityType;
    entityIds[i] = entityId;
    changeTypes[i] = changeType;
  }
  return { namespaces, entityTypes, entityIds, changeTypes, times, entities };
}
