/**
 * Checking and encoding what a read-model store is given, written once for
 * every backend: models with their metadata, writes of a batch, projection
 * status records, expected revisions.
 */
import {
  CorruptionError,
  copyJsonWithin,
  isInvalidNameError,
  isValidationError,
  type OptionChecker,
  ValidationError,
  VersionConflictError,
  validateEntityId,
  validateEntityType,
  validateName,
} from "../index.js";
import { ProjectionStatus, type ProjectionStatusRecord, type ReadModelMetadata, type ReadModelWrite } from "./types.js";

/** A checked save: the model (a copy nobody else holds) and its JSON text, its metadata. */
export interface PreparedSave {
  readonly type: "save";
  readonly modelType: string;
  readonly id: string;
  /** The model's JSON text. */
  readonly json: string;
  /** The model as `JSON.parse(json)` gives it: what queries read. Never handed out. */
  readonly value: unknown;
  /** A copy of the metadata nobody else holds (its free-form part frozen). */
  readonly metadata: ReadModelMetadata;
  /** The metadata as JSON text (`lastUpdated` as an ISO string). */
  readonly metadataJson: string;
  readonly expectedRevision: number | undefined;
}

/** A checked delete. */
export interface PreparedDelete {
  readonly type: "delete";
  readonly modelType: string;
  readonly id: string;
  readonly expectedRevision: number | undefined;
}

export type PreparedWrite = PreparedSave | PreparedDelete;

/** Checks an expected revision: `undefined` or an integer >= 0. */
export function checkExpectedRevision(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError("expectedRevision", `must be an integer >= 0, got ${String(value)}`);
  }
  return value;
}

/** The conflict of a model whose stored revision is `actual` (0: none) where `expected` was expected. */
export function revisionConflict(
  modelType: string,
  id: string,
  expected: number,
  actual: number,
): VersionConflictError {
  return new VersionConflictError(expected, actual, `read model ${modelType}/${id} revision`);
}

/**
 * A save made here: the table stores the object itself as the model's
 * entry (with the revision it got) instead of a wrapper, the first time it
 * is applied.
 */
export abstract class OwnedSave {
  /** The revision the table gave it (0: not applied yet). */
  revision = 0;

  /** Takes `revision` when the save was never applied; false otherwise (the table then wraps it). */
  claim(revision: number): boolean {
    if (this.revision !== 0) return false;
    this.revision = revision;
    return true;
  }
}

/**
 * A save whose JSON texts (of the model and of its metadata) are made when
 * first read: a store that keeps models in memory never pays for them.
 */
abstract class LazyTextSave extends OwnedSave {
  readonly type = "save";
  abstract readonly value: unknown;
  abstract readonly metadata: ReadModelMetadata;
  #json: string | undefined;
  #metadataJson: string | undefined;

  get json(): string {
    this.#json ??= JSON.stringify(this.value);
    return this.#json;
  }

  get metadataJson(): string {
    this.#metadataJson ??= metadataToJson(this.metadata);
    return this.#metadataJson;
  }
}

/**
 * A checked save as {@link prepareSave} makes it: the parsed value is the
 * one copy made of the model (the value `JSON.parse` of its text would
 * give); the JSON texts of the model and of the metadata are made when
 * first read (a store that keeps models in memory never pays for them).
 */
class CheckedSave extends LazyTextSave implements PreparedSave {
  constructor(
    readonly value: unknown,
    readonly metadata: ReadModelMetadata,
    readonly expectedRevision: number | undefined,
  ) {
    super();
  }

  get modelType(): string {
    return this.metadata.modelType;
  }

  get id(): string {
    return this.metadata.id;
  }
}

/**
 * The free-form metadata of a save, checked: a frozen copy (an object of
 * strings). Saves of a batch usually carry equal ones: the last copy is
 * reused while it is equal, without even a look when it comes from the
 * same frozen object (whose string properties cannot change).
 */
function checkFreeMetadata(free: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  if (free === undefined) return EMPTY_METADATA;
  if (free === lastFreeSource) return lastFree as Readonly<Record<string, string>>;
  const proto = typeof free === "object" && free !== null ? Object.getPrototypeOf(free) : undefined;
  // A plain object only: an array, a Map or a Date would be stored as something else than given.
  if (proto !== Object.prototype && proto !== null)
    throw new ValidationError("metadata.metadata", "must be a plain object of strings");
  const keys = Object.keys(free);
  const last = lastFree;
  let same = last !== undefined && keys.length === lastFreeSize;
  for (const key of keys) {
    const v = free[key];
    if (typeof v !== "string") throw new ValidationError("metadata.metadata", "must be an object of strings");
    if (same && (last as Record<string, string>)[key] !== v) same = false;
  }
  if (!same) {
    const copy: Record<string, string> = {};
    for (const key of keys) {
      const value = free[key] as string;
      if (key === "__proto__") Object.defineProperty(copy, key, { value, enumerable: true, writable: true });
      else copy[key] = value;
    }
    lastFree = Object.freeze(copy);
    lastFreeSize = keys.length;
  }
  lastFreeSource = Object.isFrozen(free) && onlyData(free) ? free : undefined;
  return lastFree as Readonly<Record<string, string>>;
}

/** True when every own property of `o` is a data property (no getter whose value could change). */
function onlyData(o: object): boolean {
  for (const d of Object.values(Object.getOwnPropertyDescriptors(o))) if (d.get || d.set) return false;
  return true;
}

let lastFree: Readonly<Record<string, string>> | undefined;
let lastFreeSize = 0;
/** A frozen object of strings whose copy is {@link lastFree}. */
let lastFreeSource: object | undefined;

/** The stored copy of `date`: the last copy is reused while it holds the same time (stored dates are never handed out). */
function storedDate(date: Date): Date {
  const time = date.getTime();
  if (lastDate === undefined || lastDate.getTime() !== time) lastDate = new Date(time);
  return lastDate;
}

let lastDate: Date | undefined;

/** The last model type found valid (saves of a batch share theirs). */
let lastModelType: string | undefined;

const EMPTY_METADATA: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Checks a model and its metadata and encodes them.
 * @throws InvalidNameError (model type, id) | ValidationError (metadata) | InvalidValueError | TooLargeError
 */
export function prepareSave(
  model: unknown,
  metadata: ReadModelMetadata,
  maxValueBytes: number,
  expectedRevision?: number,
): PreparedSave {
  if (metadata === null || typeof metadata !== "object") throw new ValidationError("metadata", "must be an object");
  const modelType = metadata.modelType;
  if (lastModelType === undefined || modelType !== lastModelType) {
    validateEntityType(modelType);
    lastModelType = modelType;
  }
  validateEntityId(metadata.id);
  if (!(metadata.lastUpdated instanceof Date) || Number.isNaN(metadata.lastUpdated.getTime())) {
    throw new ValidationError("metadata.lastUpdated", "must be a valid Date");
  }
  const schemaVersion = metadata.schemaVersion ?? 1;
  if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 0) {
    throw new ValidationError("metadata.schemaVersion", `must be an integer >= 0, got ${String(schemaVersion)}`);
  }
  if (!Number.isSafeInteger(metadata.lastEventPosition) || metadata.lastEventPosition < 0) {
    throw new ValidationError(
      "metadata.lastEventPosition",
      `must be an integer >= 0, got ${String(metadata.lastEventPosition)}`,
    );
  }
  const free = checkFreeMetadata(metadata.metadata);
  const value = copyJsonWithin(model, maxValueBytes, () => `read model ${modelType}/${metadata.id}`, "model");
  // Not frozen (freezing each save's metadata costs more than the rest of it): nobody else holds this copy.
  const meta: ReadModelMetadata = {
    id: metadata.id,
    modelType,
    schemaVersion,
    lastUpdated: storedDate(metadata.lastUpdated),
    lastEventPosition: metadata.lastEventPosition,
    metadata: free,
  };
  return new CheckedSave(value, meta, checkExpectedRevision(expectedRevision));
}

/** What the saves of one projector batch share in their metadata. */
export interface ProjectedBatch {
  readonly modelType: string;
  readonly schemaVersion: number;
  readonly lastUpdated: Date;
  /** The free-form metadata of every model. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** One model of a projector's batch, as {@link prepareProjected} reads it (synchronously). */
export interface ProjectedModel {
  readonly id: string;
  /** The model; `undefined` deletes it. */
  readonly value: unknown;
  /** Position of the last event applied to it. */
  readonly lastEventPosition: number;
  /** Its revision in the store (0: not stored): the write's expected revision. */
  readonly revision: number;
}

/**
 * One model as a projector holds it, and the save of it that
 * {@link prepareProjected} makes: a table keeps the object itself as the
 * model's entry (with the revision the save got), its metadata made from
 * the batch's shared parts when read. Once a save of it was applied, its
 * holder never changes it again (the projector forgets it; see
 * `projectorSaveBatch`).
 */
export class ProjectedEntry implements PreparedSave, ProjectedModel {
  // Declared in the order a projector reads them for each event (the first ones share a cache line).
  /** The model; `undefined` when there is none (never stored, or deleted in the batch). */
  value: unknown;
  /** Position of the last event applied to it. */
  lastEventPosition: number;
  /** In the projector's batch: changed since it was loaded or written. */
  dirty = false;
  /** Its revision in the store (0: not stored); the one its save got once applied. */
  revision: number;
  readonly id: string;
  /** The batch of its last save (set by {@link prepareProjected}). */
  batch: ProjectedBatch | undefined = undefined;
  /** The revision its save expects (set by {@link prepareProjected}). */
  expectedRevision = 0;

  constructor(id: string, value: unknown, revision: number, lastEventPosition: number) {
    this.value = value;
    this.lastEventPosition = lastEventPosition;
    this.revision = revision;
    this.id = id;
  }

  get type(): "save" {
    return "save";
  }

  get modelType(): string {
    return (this.batch as ProjectedBatch).modelType;
  }

  /** The model's JSON text (made when read: a store that keeps models in memory never needs it). */
  get json(): string {
    return JSON.stringify(this.value);
  }

  get metadata(): ReadModelMetadata {
    const b = this.batch as ProjectedBatch;
    return {
      id: this.id,
      modelType: b.modelType,
      schemaVersion: b.schemaVersion,
      lastUpdated: b.lastUpdated,
      lastEventPosition: this.lastEventPosition,
      metadata: b.metadata,
    };
  }

  get metadataJson(): string {
    return metadataToJson(this.metadata);
  }
}

/** Depth from which {@link plainWithin} leaves a value to a copy (the copy's complete check detects cycles). */
const PLAIN_DEPTH = 64;
/** Upper bound of the UTF-8 size of the JSON text of what {@link plainWithin} walked (reset per walk). */
let plainBound = 0;

/**
 * True when `value` is already what a copy by `copyJsonWithin` would be
 * (objects with `Object.prototype` and no `__proto__` key, dense arrays,
 * strings, finite numbers other than -0, booleans, null, less than
 * {@link PLAIN_DEPTH} deep) and the upper bound of its UTF-8 JSON size is
 * within `maxBytes`: it can be stored as it is. False for anything else
 * (then a copy checks it completely, with its errors).
 */
export function plainWithin(value: unknown, maxBytes: number): boolean {
  plainBound = 0;
  return isPlain(value, 0) && plainBound <= maxBytes;
}

const hasOwn = Object.prototype.hasOwnProperty;

function isPlain(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
      plainBound += 6 * value.length + 2;
      return true;
    case "number":
      plainBound += 25;
      return Number.isFinite(value) && !Object.is(value, -0);
    case "boolean":
      plainBound += 5;
      return true;
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) {
    plainBound += 4;
    return true;
  }
  if (depth >= PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    // An array of another class, or with a toJSON of its own, is stored as JSON makes it: copied.
    if (Object.getPrototypeOf(value) !== Array.prototype || hasOwn.call(value, "toJSON")) return false;
    const n = value.length;
    plainBound += 2 + n;
    for (let i = 0; i < n; i++) if (!(i in value) || !isPlain(value[i], depth + 1)) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  plainBound += 2;
  for (const key in value) {
    if (!hasOwn.call(value, key) || key === "__proto__") return false;
    plainBound += 6 * key.length + 4;
    if (!isPlain((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/**
 * Checks and prepares the writes of a projector's batch: the same checks
 * and copies as {@link prepareWrites} of the equivalent saves and deletes
 * (each with its `revision` as expected revision; a model `undefined` is
 * a delete), with the metadata the models share checked once.
 *
 * `handOver`: the saves of {@link ProjectedEntry} models are the entries
 * themselves, each model stored as it is when it is plain JSON data
 * ({@link plainWithin}; otherwise its copy replaces it in the entry), for
 * a caller that gives the entries up (it never reads or changes them, nor
 * their models, again once the batch is applied); their ids are not
 * checked again (such entries come from the store's own load, which
 * checks them). Otherwise each save is a new entry holding a copy.
 * @throws InvalidNameError | ValidationError | InvalidValueError | TooLargeError
 */
export function prepareProjected(
  batch: ProjectedBatch,
  models: readonly ProjectedModel[],
  maxValueBytes: number,
  handOver = false,
): PreparedWrite[] {
  const modelType = batch.modelType;
  validateEntityType(modelType);
  if (!(batch.lastUpdated instanceof Date) || Number.isNaN(batch.lastUpdated.getTime())) {
    throw new ValidationError("metadata.lastUpdated", "must be a valid Date");
  }
  const schemaVersion = batch.schemaVersion;
  if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 0) {
    throw new ValidationError("metadata.schemaVersion", `must be an integer >= 0, got ${String(schemaVersion)}`);
  }
  const shared: ProjectedBatch = {
    modelType,
    schemaVersion,
    lastUpdated: storedDate(batch.lastUpdated),
    metadata: checkFreeMetadata(batch.metadata),
  };
  const out = new Array<PreparedWrite>(models.length);
  /** The id of the model being copied (one description function for the whole batch). */
  let current = "";
  const what = () => `read model ${modelType}/${current}`;
  for (let i = 0; i < models.length; i++) {
    const m = models[i] as ProjectedModel;
    const id = m.id;
    current = id;
    const owned = handOver && m instanceof ProjectedEntry;
    if (!owned) validateEntityId(id);
    const expected = checkExpectedRevision(m.revision) as number;
    if (m.value === undefined) {
      out[i] = { type: "delete", modelType, id, expectedRevision: expected };
      continue;
    }
    const position = m.lastEventPosition;
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new ValidationError("metadata.lastEventPosition", `must be an integer >= 0, got ${String(position)}`);
    }
    const save = owned ? m : new ProjectedEntry(id, undefined, expected, position);
    if (!owned || !plainWithin(m.value, maxValueBytes))
      save.value = copyJsonWithin(m.value, maxValueBytes, what, "model");
    save.batch = shared;
    save.expectedRevision = expected;
    out[i] = save;
  }
  return out;
}

/** Checks a delete. */
export function prepareDelete(modelType: string, id: string, expectedRevision?: number): PreparedDelete {
  validateEntityType(modelType);
  validateEntityId(id);
  return { type: "delete", modelType, id, expectedRevision: checkExpectedRevision(expectedRevision) };
}

/** Checks the writes of a batch. */
export function prepareWrites(writes: readonly ReadModelWrite[], maxValueBytes: number): PreparedWrite[] {
  if (!Array.isArray(writes)) throw new ValidationError("writes", "must be an array of read-model writes");
  return writes.map((w, i) => {
    if (w?.type === "save") return prepareSave(w.model, w.metadata, maxValueBytes, w.expectedRevision);
    if (w?.type === "delete") return prepareDelete(w.modelType, w.id, w.expectedRevision);
    throw new ValidationError(`writes[${i}].type`, `must be "save" or "delete", got ${String(w?.type)}`);
  });
}

/** Metadata as JSON text. */
export function metadataToJson(metadata: ReadModelMetadata): string {
  return JSON.stringify({ ...metadata, lastUpdated: metadata.lastUpdated.toISOString() });
}

/**
 * Runs `check`; a `ValidationError` or `InvalidNameError` it throws (what
 * a write of the value would have been refused with) becomes a
 * `CorruptionError` at `where` (and `line`): the value was stored.
 */
function storedValue<T>(check: () => T, what: string, where: string, line: number | undefined): T {
  try {
    return check();
  } catch (error) {
    if (!isValidationError(error) && !isInvalidNameError(error)) throw error;
    throw new CorruptionError(where, line, `${what} is not valid: ${error.message}`, { cause: error });
  }
}

/** True for a non-null object that is not an array (what a parsed JSON object is). */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Metadata from its stored JSON form (a parsed object), checked as a save
 * checks it: a model type and an id, `schemaVersion` and
 * `lastEventPosition` integers >= 0, `lastUpdated` a valid date (an ISO
 * string), free-form `metadata` an object of strings (none: `{}`).
 * @param where what the stored data is, for the error (a file, a bucket and key)
 * @param line where in it, when it has lines
 * @throws CorruptionError naming `where` (and `line`) for anything else
 */
export function metadataFromJson(value: unknown, where: string, line?: number): ReadModelMetadata {
  return storedValue(
    () => {
      if (!isRecord(value)) throw new ValidationError("metadata", "must be an object");
      validateEntityType(value.modelType);
      validateEntityId(value.id);
      const { schemaVersion, lastEventPosition, lastUpdated, metadata } = value;
      if (!Number.isSafeInteger(schemaVersion) || (schemaVersion as number) < 0) {
        throw new ValidationError("metadata.schemaVersion", `must be an integer >= 0, got ${String(schemaVersion)}`);
      }
      if (!Number.isSafeInteger(lastEventPosition) || (lastEventPosition as number) < 0) {
        throw new ValidationError(
          "metadata.lastEventPosition",
          `must be an integer >= 0, got ${String(lastEventPosition)}`,
        );
      }
      const updated = new Date(typeof lastUpdated === "string" ? lastUpdated : Number.NaN);
      if (Number.isNaN(updated.getTime())) {
        throw new ValidationError("metadata.lastUpdated", `must be a date, got ${JSON.stringify(lastUpdated)}`);
      }
      const free = metadata === undefined ? {} : metadata;
      if (!isRecord(free) || !Object.values(free).every((v) => typeof v === "string")) {
        throw new ValidationError("metadata.metadata", "must be an object of strings");
      }
      return Object.freeze({
        id: value.id as string,
        modelType: value.modelType as string,
        schemaVersion: schemaVersion as number,
        lastUpdated: updated,
        lastEventPosition: lastEventPosition as number,
        metadata: Object.freeze({ ...(free as Record<string, string>) }),
      });
    },
    "stored read-model metadata",
    where,
    line,
  );
}

/** A fresh, unfrozen copy of stored metadata (what callers receive). */
export function copyMetadata(m: ReadModelMetadata): ReadModelMetadata {
  return { ...m, lastUpdated: new Date(m.lastUpdated.getTime()), metadata: { ...m.metadata } };
}

const STATUSES = new Set<string>(Object.values(ProjectionStatus));
const OPTIONAL_COUNTS = ["lagEvents", "lagMs", "failedPosition"] as const;

/**
 * Checks a projection status record; returns a frozen copy.
 * @throws InvalidNameError (name) | ValidationError (any field)
 */
export function prepareStatus(record: ProjectionStatusRecord): ProjectionStatusRecord {
  if (record === null || typeof record !== "object") throw new ValidationError("status", "must be an object");
  validateName("projection", record.name, true);
  if (!STATUSES.has(record.status)) {
    throw new ValidationError(
      "status.status",
      `must be one of ${[...STATUSES].join(", ")}, got ${JSON.stringify(record.status)}`,
    );
  }
  if (!Number.isSafeInteger(record.checkpoint) || record.checkpoint < 0) {
    throw new ValidationError("status.checkpoint", `must be an integer >= 0, got ${String(record.checkpoint)}`);
  }
  if (!(record.updatedAt instanceof Date) || Number.isNaN(record.updatedAt.getTime())) {
    throw new ValidationError("status.updatedAt", "must be a valid Date");
  }
  for (const name of OPTIONAL_COUNTS) {
    const v = record[name];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
      throw new ValidationError(`status.${name}`, `must be a number >= 0, got ${String(v)}`);
    }
  }
  if (record.lastError !== undefined && typeof record.lastError !== "string") {
    throw new ValidationError("status.lastError", "must be a string");
  }
  const out: ProjectionStatusRecord = {
    name: record.name,
    status: record.status,
    checkpoint: record.checkpoint,
    updatedAt: new Date(record.updatedAt.getTime()),
    ...(record.lagEvents !== undefined ? { lagEvents: record.lagEvents } : {}),
    ...(record.lagMs !== undefined ? { lagMs: record.lagMs } : {}),
    ...(record.lastError !== undefined ? { lastError: record.lastError } : {}),
    ...(record.failedPosition !== undefined ? { failedPosition: record.failedPosition } : {}),
  };
  return Object.freeze(out);
}

/** A status record as JSON text. */
export function statusToJson(record: ProjectionStatusRecord): string {
  return JSON.stringify({ ...record, updatedAt: record.updatedAt.toISOString() });
}

/**
 * A status record from its stored JSON form (a parsed object), checked as
 * {@link prepareStatus} checks a write (`updatedAt` an ISO string).
 * @param where what the stored data is, for the error (a file, a bucket and key)
 * @param line where in it, when it has lines
 * @throws CorruptionError naming `where` (and `line`) for anything else
 */
export function statusFromJson(value: unknown, where: string, line?: number): ProjectionStatusRecord {
  return storedValue(
    () => {
      if (!isRecord(value)) throw new ValidationError("status", "must be an object");
      const { updatedAt } = value;
      const updated = new Date(typeof updatedAt === "string" ? updatedAt : Number.NaN);
      if (Number.isNaN(updated.getTime())) {
        throw new ValidationError("status.updatedAt", `must be a date, got ${JSON.stringify(updatedAt)}`);
      }
      return prepareStatus({ ...(value as unknown as ProjectionStatusRecord), updatedAt: updated });
    },
    "stored projection status",
    where,
    line,
  );
}

/** A fresh copy of a stored status record (what callers receive). */
export function copyStatus(r: ProjectionStatusRecord): ProjectionStatusRecord {
  return { ...r, updatedAt: new Date(r.updatedAt.getTime()) };
}

/** Checks the `indexes` option of a store (an array of dotted paths). */
export function checkIndexesOption(check: OptionChecker<{ indexes?: readonly string[] }>): readonly string[] {
  return check.custom<"indexes", readonly string[]>("indexes", (v) =>
    Array.isArray(v) && v.every((p) => typeof p === "string" && p.length > 0 && !p.split(".").includes(""))
      ? undefined
      : "an array of dotted paths",
  );
}
