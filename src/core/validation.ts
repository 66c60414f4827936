/**
 * Validation of names and values, shared by every backend (docs/concepts.md,
 * "Names, values and limits"). Backends call these before they write anything.
 */
import { InvalidNameError, InvalidValueError, type NameKind, TooLargeError } from "./errors.js";

/** Longest valid name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is what it looks for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const SIMPLE = /^[A-Za-z0-9._~:@-]{1,255}$/;

/**
 * Checks one name. Valid names are non-empty strings of at most 255 UTF-8
 * bytes without control characters; `allowSlash` is false for namespaces
 * and entity types, true for entity ids.
 * @throws InvalidNameError
 */
export function validateName(kind: NameKind, value: unknown, allowSlash: boolean): asserts value is string {
  if (typeof value !== "string") throw new InvalidNameError(kind, value, "must be a string");
  if (SIMPLE.test(value)) return; // fast path: the common case needs no more checks
  if (value.length === 0) throw new InvalidNameError(kind, value, "must not be empty");
  if (CONTROL.test(value)) throw new InvalidNameError(kind, value, "must not contain NUL or other control characters");
  if (!allowSlash && value.includes("/")) throw new InvalidNameError(kind, value, `a ${kind} must not contain "/"`);
  if (!value.isWellFormed())
    throw new InvalidNameError(kind, value, "must be well-formed Unicode (no lone surrogates)");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_NAME_BYTES) {
    throw new InvalidNameError(kind, value, `is ${bytes} UTF-8 bytes, over the limit of ${MAX_NAME_BYTES}`);
  }
}

/** Checks a namespace name (no `/`). */
export function validateNamespace(namespace: unknown): asserts namespace is string {
  validateName("namespace", namespace, false);
}

/** Checks an entity type name (no `/`). */
export function validateEntityType(entityType: unknown): asserts entityType is string {
  validateName("entityType", entityType, false);
}

/** Checks an entity id (`/` allowed). */
export function validateEntityId(entityId: unknown): asserts entityId is string {
  validateName("entityId", entityId, true);
}

/** JSON data as statelog stores it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Checks that `value` is JSON data that round-trips through
 * `JSON.stringify`/`JSON.parse` unchanged, and returns its JSON text.
 * Rejects BigInt, cycles, functions, symbols, `undefined`, non-finite
 * numbers, sparse arrays and objects that JSON would silently change
 * (Date, Map, Set, RegExp, typed arrays, anything with `toJSON`).
 * @param path where the value sits, for the error message (a function: built only on error)
 * @throws InvalidValueError
 */
export function toJson(value: unknown, path: string | (() => string) = "entity"): string {
  try {
    checkJson(value, new Walk(path));
    return JSON.stringify(value);
  } catch (error) {
    throw tooDeep(error, path);
  }
}

/**
 * `error` as thrown by a walk over a value: a `RangeError` (a value nested
 * so deeply that the walk or `JSON.stringify` ran out of stack) becomes an
 * `InvalidValueError` at `path`; anything else is returned as it is.
 */
function tooDeep(error: unknown, path: string | (() => string)): unknown {
  if (!(error instanceof RangeError)) return error;
  return new InvalidValueError(
    typeof path === "function" ? path() : path,
    `it is nested too deeply to be serialized as JSON (${error.message})`,
    { cause: error },
  );
}

/**
 * Like {@link toJson}, and also checks the UTF-8 size of the JSON text
 * against `maxBytes`.
 * @throws InvalidValueError | TooLargeError
 */
export function toJsonWithin(
  value: unknown,
  maxBytes: number,
  what: string | (() => string),
  path: string | (() => string) = "entity",
): string {
  const json = toJson(value, path);
  // A JS string's UTF-8 length is at most 3 bytes per UTF-16 unit; skip the count when it cannot exceed.
  if (json.length * 3 > maxBytes) {
    const size = Buffer.byteLength(json, "utf8");
    if (size > maxBytes) throw new TooLargeError(size, maxBytes, typeof what === "function" ? what() : what);
  }
  return json;
}

/**
 * Where the walk is. The path is only turned into a string when a value
 * is rejected, so that checking valid data costs no string building.
 */
/**
 * Depth from which the walk tracks the objects on its way. A cycle makes a
 * walk infinitely deep, so it is always caught past this depth (and named
 * at its second round).
 */
const CYCLE_CHECK_DEPTH = 64;

class Walk {
  /** Property names and array indexes from the root to the current value. */
  readonly keys: (string | number)[] = [];
  /** The objects and arrays on the way, kept only past {@link CYCLE_CHECK_DEPTH} to detect cycles. */
  readonly stack: object[] = [];
  constructor(readonly root: string | (() => string)) {}
  fail(reason: string): never {
    let path = typeof this.root === "function" ? this.root() : this.root;
    for (const k of this.keys) path += typeof k === "number" ? `[${k}]` : `.${k}`;
    throw new InvalidValueError(path, reason);
  }
}

/**
 * Internal (not exported by the package), never used: while one `Walk` is
 * alive, its shape is too. Otherwise a full garbage collection that finds
 * no walk under way drops the shape, and with it the optimised code of
 * `toJson`, `checkJson` and of every caller that inlined them (each
 * store's `save`), which then runs slower until it is optimised again.
 * Exported so that it lives as long as the module (an unexported constant
 * nothing reads is not kept).
 */
export const KEEP_WALK_SHAPE: unknown = new Walk("entity");

function checkJson(value: unknown, walk: Walk): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) walk.fail(`${value} is not a finite number`);
      return;
    case "bigint":
      walk.fail("BigInt is not JSON (store it as a string)");
      break;
    case "undefined":
      walk.fail("undefined is not JSON (omit the property or use null)");
      break;
    case "function":
      walk.fail("a function is not JSON");
      break;
    case "symbol":
      walk.fail("a symbol is not JSON");
  }
  if (value === null) return;
  const obj = value as object;
  // Real data is shallow: only deep walks can be cycles, so only they pay for the check.
  const deep = walk.keys.length >= CYCLE_CHECK_DEPTH;
  if (deep) {
    if (walk.stack.includes(obj)) walk.fail("circular reference");
    walk.stack.push(obj);
  }
  if (Array.isArray(obj)) {
    if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
      walk.fail("an array with a toJSON method does not round-trip through JSON (store a plain array)");
    }
    for (let i = 0; i < obj.length; i++) {
      walk.keys.push(i);
      if (!(i in obj)) walk.fail("sparse array hole is not JSON");
      checkJson(obj[i], walk);
      walk.keys.pop();
    }
  } else {
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) checkExotic(obj, proto, walk);
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      walk.keys.push(key);
      checkJson((obj as Record<string, unknown>)[key], walk);
      walk.keys.pop();
    }
  }
  if (deep) walk.stack.pop();
}

/** Rejects objects that JSON would silently change. */
function checkExotic(obj: object, proto: { constructor?: { name?: string } }, walk: Walk): void {
  const name = proto.constructor?.name ?? "object";
  if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
    walk.fail(`${name} does not round-trip through JSON (store a plain value, e.g. an ISO string)`);
  }
  if (
    obj instanceof Number ||
    obj instanceof String ||
    obj instanceof Boolean ||
    obj instanceof BigInt ||
    obj instanceof Symbol
  ) {
    walk.fail(`a boxed ${name} (new ${name}(…)) is not JSON data (store the primitive)`);
  }
  if (
    obj instanceof Map ||
    obj instanceof Set ||
    obj instanceof RegExp ||
    ArrayBuffer.isView(obj) ||
    obj instanceof ArrayBuffer ||
    obj instanceof WeakMap ||
    obj instanceof WeakSet ||
    obj instanceof Promise
  ) {
    walk.fail(`${name} does not round-trip through JSON (store a plain object or array)`);
  }
}

/**
 * Like {@link toJsonWithin}, but returns a copy of `value` instead of its
 * JSON text: the value `JSON.parse(toJsonWithin(value, …))` would give,
 * made without the text for the common case of plain objects, arrays and
 * primitives (a store that keeps values in memory then holds data nobody
 * else holds, and pays neither the text nor its parse). The UTF-8 size of
 * the JSON text is bounded while copying; only a value whose bound exceeds
 * `maxBytes` has its text measured. Anything else (class instances, deep
 * values, invalid data) takes the path of {@link toJsonWithin}, with its
 * errors.
 * @throws InvalidValueError | TooLargeError
 */
export function copyJsonWithin(
  value: unknown,
  maxBytes: number,
  what: string | (() => string),
  path: string | (() => string) = "entity",
): unknown {
  let copy: unknown;
  copyBound = 0;
  try {
    copy = copyPlain(value, 0);
  } catch (error) {
    if (error !== NOT_PLAIN) throw tooDeep(error, path);
    return JSON.parse(toJsonWithin(value, maxBytes, what, path));
  }
  if (copyBound > maxBytes) {
    const size = Buffer.byteLength(JSON.stringify(copy), "utf8");
    if (size > maxBytes) throw new TooLargeError(size, maxBytes, typeof what === "function" ? what() : what);
  }
  return copy;
}

/**
 * A copy of a value that is already JSON data nobody can change (a stored
 * copy from {@link copyJsonWithin}): what a store hands out on a read.
 */
export function copyJsonData<T>(value: T): T {
  try {
    return copyPlain(value, 0) as T;
  } catch (error) {
    if (error !== NOT_PLAIN) throw error;
    return JSON.parse(JSON.stringify(value)) as T;
  }
}

const hasOwn = Object.prototype.hasOwnProperty;
/** Thrown by {@link copyPlain} for what it leaves to the complete check. */
const NOT_PLAIN: unique symbol = Symbol("not plain JSON data");
/** Depth from which {@link copyPlain} leaves a value to the complete check (which detects cycles). */
const PLAIN_COPY_DEPTH = 64;
/** Upper bound of the UTF-8 size of the JSON text of what {@link copyPlain} copied (reset per copy). */
let copyBound = 0;

/**
 * A copy of plain JSON data (plain or null-prototype objects, dense
 * arrays, strings, finite numbers, booleans, null), as `JSON.parse` of its
 * text would build it (-0 becomes 0, an own `__proto__` key stays a key);
 * adds an upper bound of its UTF-8 JSON size to {@link copyBound} (a
 * UTF-16 unit takes at most 6 bytes, escaped; a number at most 25).
 * @throws NOT_PLAIN for anything else
 */
function copyPlain(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case "string":
      copyBound += 6 * value.length + 2;
      return value;
    case "number":
      if (!Number.isFinite(value)) throw NOT_PLAIN;
      copyBound += 25;
      return value + 0;
    case "boolean":
      copyBound += 5;
      return value;
    case "object":
      break;
    default:
      throw NOT_PLAIN;
  }
  if (value === null) {
    copyBound += 4;
    return null;
  }
  if (depth >= PLAIN_COPY_DEPTH) throw NOT_PLAIN;
  if (Array.isArray(value)) {
    // An array of another prototype (or with its own toJSON) is left to the complete check.
    if (Object.getPrototypeOf(value) !== Array.prototype || hasOwn.call(value, "toJSON")) throw NOT_PLAIN;
    const n = value.length;
    const out: unknown[] = new Array(n);
    copyBound += 2 + n;
    for (let i = 0; i < n; i++) {
      if (!(i in value)) throw NOT_PLAIN;
      out[i] = copyPlain(value[i], depth + 1);
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
  const out: Record<string, unknown> = {};
  copyBound += 2;
  // `for…in` visits the own enumerable keys in the order of `Object.keys`, without building their array;
  // an inherited enumerable key (a changed Object.prototype) is left to the complete check.
  for (const key in value) {
    if (!hasOwn.call(value, key)) throw NOT_PLAIN;
    copyBound += 6 * key.length + 4;
    const v = copyPlain((value as Record<string, unknown>)[key], depth + 1);
    if (key === "__proto__")
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out;
}
