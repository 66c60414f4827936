/**
 * Validation of names and values, shared by every backend (SEMANTICS.md,
 * "Names and values"). Backends call these before they write anything.
 */
import { InvalidNameError, InvalidValueError, type NameKind, TooLargeError } from "./errors.js";

/** Longest valid name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;
/** Default size limit of one change or event: 1 MiB of JSON, like NATS's payload and Kafka's message size. */
export const DEFAULT_MAX_CHANGE_BYTES = 1024 * 1024;

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
 * @param path where the value sits, for the error message
 * @throws InvalidValueError
 */
export function toJson(value: unknown, path = "entity"): string {
  checkJson(value, path, []);
  return JSON.stringify(value);
}

/**
 * Like {@link toJson}, and also checks the UTF-8 size of the JSON text
 * against `maxBytes`.
 * @throws InvalidValueError | TooLargeError
 */
export function toJsonWithin(value: unknown, maxBytes: number, what: string, path = "entity"): string {
  const json = toJson(value, path);
  // A JS string's UTF-8 length is at most 3 bytes per UTF-16 unit; skip the count when it cannot exceed.
  if (json.length * 3 > maxBytes) {
    const size = Buffer.byteLength(json, "utf8");
    if (size > maxBytes) throw new TooLargeError(size, maxBytes, what);
  }
  return json;
}

function checkJson(value: unknown, path: string, stack: object[]): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new InvalidValueError(path, `${value} is not a finite number`);
      return;
    case "bigint":
      throw new InvalidValueError(path, "BigInt is not JSON (store it as a string)");
    case "undefined":
      throw new InvalidValueError(path, "undefined is not JSON (omit the property or use null)");
    case "function":
      throw new InvalidValueError(path, "a function is not JSON");
    case "symbol":
      throw new InvalidValueError(path, "a symbol is not JSON");
  }
  if (value === null) return;
  const obj = value as object;
  if (stack.includes(obj)) throw new InvalidValueError(path, "circular reference");
  if (Array.isArray(obj)) {
    stack.push(obj);
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) throw new InvalidValueError(`${path}[${i}]`, "sparse array hole is not JSON");
      checkJson(obj[i], `${path}[${i}]`, stack);
    }
    stack.pop();
    return;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    const name = (proto?.constructor as { name?: string } | undefined)?.name ?? "object";
    if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
      throw new InvalidValueError(
        path,
        `${name} does not round-trip through JSON (store a plain value, e.g. an ISO string)`,
      );
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
      throw new InvalidValueError(path, `${name} does not round-trip through JSON (store a plain object or array)`);
    }
  }
  stack.push(obj);
  for (const key in obj) {
    if (!Object.hasOwn(obj, key)) continue;
    checkJson((obj as Record<string, unknown>)[key], `${path}.${key}`, stack);
  }
  stack.pop();
}
