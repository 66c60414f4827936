/**
 * The query engine every read-model store runs, so that every backend
 * returns the same results for the same query:
 *
 * - a filter reads the value at a dotted path of the model (`"customer.id"`,
 *   `"lines.0.sku"`); a path through a missing or non-object value is missing;
 * - values are ordered `null` < booleans < numbers < strings < arrays <
 *   objects; within a type by value (strings by UTF-16 code units, not by
 *   locale); arrays and objects by their JSON text;
 * - `eq` (equal under that order), `ne` (not `eq`; a missing value is not
 *   equal), `in` (`eq` to one of a list); `gt`, `gte`, `lt`, `lte` compare a
 *   number with a number, a string with a string, a boolean with a boolean,
 *   and are false across types and for missing values; `prefix` matches
 *   strings; `exists: true` matches every present value (`null` included);
 * - the sort is stable: by each key in order, then by model id (ascending);
 *   a missing value sorts as greater than every value: last ascending,
 *   first descending;
 * - then `offset` and `limit`, or `after`: a keyset cursor (opaque text
 *   holding the sort values and id of the last model of the previous page).
 */
import { ValidationError, validateEntityType } from "../index.js";
import { FilterOperator, type Query, type QueryFilter, type QuerySort, SortDirection } from "./types.js";

/** What the engine needs of a stored model: its id and its (parsed) model. */
export interface QueryEntry {
  readonly id: string;
  readonly value: unknown;
}

/** A page of entries, as the engine cuts it. */
export interface QueryPage<E> {
  readonly items: E[];
  readonly total: number;
  readonly next?: string | undefined;
}

/** The value at a dotted `path` of `model`, or `undefined` when it is missing. */
export function valueAt(model: unknown, path: string): unknown {
  let current = model;
  let start = 0;
  for (;;) {
    if (current === null || typeof current !== "object") return undefined;
    const dot = path.indexOf(".", start);
    const key = dot < 0 ? path.slice(start) : path.slice(start, dot);
    if (!Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
    if (dot < 0) return current;
    start = dot + 1;
  }
}

/** The rank of a present value's type in the order: null 0, boolean 1, number 2, string 3, array 4, object 5. */
export function rankOf(v: unknown): number {
  if (v === null) return 0;
  switch (typeof v) {
    case "boolean":
      return 1;
    case "number":
      return 2;
    case "string":
      return 3;
    default:
      return Array.isArray(v) ? 4 : 5;
  }
}

/** The total order of present values (see the module's comment): negative, 0 or positive. */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rankOf(a);
  const rb = rankOf(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  if (ra >= 4) {
    const ja = JSON.stringify(a);
    const jb = JSON.stringify(b);
    return ja < jb ? -1 : ja > jb ? 1 : 0;
  }
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** Compares two sort values in `direction`, a missing value being greater than every value. */
export function compareSortValues(a: unknown, b: unknown, descending: boolean): number {
  if (a === undefined) return b === undefined ? 0 : descending ? -1 : 1;
  if (b === undefined) return descending ? 1 : -1;
  const c = compareValues(a, b);
  return descending ? -c : c;
}

const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Whether `v` (the value at the filter's path, `undefined` when missing) passes `filter`. */
export function matchesFilter(v: unknown, filter: QueryFilter): boolean {
  const x = filter.value;
  switch (filter.op) {
    case FilterOperator.Eq:
      return v !== undefined && compareValues(v, x) === 0;
    case FilterOperator.Ne:
      return v === undefined || compareValues(v, x) !== 0;
    case FilterOperator.In:
      return v !== undefined && (x as readonly unknown[]).some((y) => compareValues(v, y) === 0);
    case FilterOperator.Prefix:
      return typeof v === "string" && v.startsWith(x as string);
    case FilterOperator.Exists:
      return (v !== undefined) === x;
    default: {
      if (typeof v !== typeof x || v === undefined) return false;
      const c = compareValues(v, x);
      if (filter.op === FilterOperator.Gt) return c > 0;
      if (filter.op === FilterOperator.Gte) return c >= 0;
      if (filter.op === FilterOperator.Lt) return c < 0;
      return c <= 0;
    }
  }
}

/** The value at the path split in `keys` (a path compiled once per query), or `undefined`. */
function valueAtKeys(model: unknown, keys: readonly string[]): unknown {
  let current = model;
  for (let i = 0; i < keys.length; i++) {
    if (current === null || typeof current !== "object") return undefined;
    const key = keys[i] as string;
    if (!Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** A compiled path: a function from a model to the value at `path`. */
export function pathReader(path: string): (model: unknown) => unknown {
  if (!path.includes(".")) {
    return (model) =>
      model !== null && typeof model === "object" && Object.hasOwn(model, path)
        ? (model as Record<string, unknown>)[path]
        : undefined;
  }
  const keys = path.split(".");
  return (model) => valueAtKeys(model, keys);
}

/** A compiled filter list: a predicate that says whether a model passes every filter. */
export function compileFilters(filters: readonly QueryFilter[]): (model: unknown) => boolean {
  const compiled = filters.map((f) => ({ read: pathReader(f.path), filter: f }));
  if (compiled.length === 0) return () => true;
  return (model) => {
    for (const c of compiled) if (!matchesFilter(c.read(model), c.filter)) return false;
    return true;
  };
}

/** Whether `model` passes every filter. */
export function matchesAll(model: unknown, filters: readonly QueryFilter[]): boolean {
  for (const f of filters) if (!matchesFilter(valueAt(model, f.path), f)) return false;
  return true;
}

/** The comparator of the query's order: its sort keys, then the model id. */
export function entryComparator(sort: readonly QuerySort[]): (a: QueryEntry, b: QueryEntry) => number {
  const keys = sort.map((s) => ({ read: pathReader(s.path), descending: s.direction === SortDirection.Descending }));
  return (a, b) => {
    for (const k of keys) {
      const c = compareSortValues(k.read(a.value), k.read(b.value), k.descending);
      if (c !== 0) return c;
    }
    return compareIds(a.id, b.id);
  };
}

interface Cursor {
  readonly values: unknown[];
  readonly id: string;
}

/** The keyset cursor after `entry` under `sort`: base64url of `{"k":[[value] or [] per key],"i":id}`. */
export function cursorAfter(entry: QueryEntry, sort: readonly QuerySort[]): string {
  const k = sort.map((s) => {
    const v = valueAt(entry.value, s.path);
    return v === undefined ? [] : [v];
  });
  return Buffer.from(JSON.stringify({ k, i: entry.id }), "utf8").toString("base64url");
}

function decodeCursor(text: string, sort: readonly QuerySort[]): Cursor {
  const bad = () => new ValidationError("query.after", "must be the `next` cursor of a page of the same query's sort");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  const p = parsed as { k?: unknown; i?: unknown };
  if (
    p === null ||
    typeof p !== "object" ||
    typeof p.i !== "string" ||
    !Array.isArray(p.k) ||
    p.k.length !== sort.length ||
    !p.k.every((v) => Array.isArray(v) && v.length <= 1)
  ) {
    throw bad();
  }
  return { values: (p.k as unknown[][]).map((v) => (v.length === 0 ? undefined : v[0])), id: p.i };
}

/** Whether `entry` comes strictly after `cursor` in the query's order. */
function isAfter(entry: QueryEntry, cursor: Cursor, sort: readonly QuerySort[]): boolean {
  for (let i = 0; i < sort.length; i++) {
    const s = sort[i] as QuerySort;
    const c = compareSortValues(
      valueAt(entry.value, s.path),
      cursor.values[i],
      s.direction === SortDirection.Descending,
    );
    if (c !== 0) return c > 0;
  }
  return entry.id > cursor.id;
}

/**
 * Cuts the page out of `sorted` (the matching entries in the query's
 * order): `offset`/`limit`, or `after`/`limit`. `total` is `sorted.length`.
 */
export function pageOf<E extends QueryEntry>(sorted: readonly E[], query: Query): QueryPage<E> {
  let start = query.offset ?? 0;
  if (query.after !== undefined) {
    const cursor = decodeCursor(query.after, query.sort);
    // The first entry after the cursor: a binary search (sorted is in the query's order).
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (isAfter(sorted[mid] as E, cursor, query.sort)) hi = mid;
      else lo = mid + 1;
    }
    start = lo;
  }
  const end = query.limit === undefined ? sorted.length : Math.min(sorted.length, start + query.limit);
  const items = start >= end ? [] : sorted.slice(start, end);
  const last = items.at(-1);
  const next = last !== undefined && end < sorted.length ? cursorAfter(last, query.sort) : undefined;
  return { items, total: sorted.length, next };
}

/**
 * A page collector for entries that arrive in the query's order (an index
 * walk): counts every match, keeps only the page.
 */
export class PageCollector<E extends QueryEntry> {
  readonly #query: Query;
  readonly #cursor: Cursor | undefined;
  readonly #limit: number;
  #skip: number;
  #total = 0;
  /** Matches from the page's start on (the page, then at most one more). */
  readonly #items: E[] = [];
  #more = false;

  constructor(query: Query) {
    this.#query = query;
    this.#cursor = query.after === undefined ? undefined : decodeCursor(query.after, query.sort);
    this.#skip = query.offset ?? 0;
    this.#limit = query.limit ?? Number.POSITIVE_INFINITY;
  }

  /** Adds the next matching entry (in order). */
  add(entry: E): void {
    this.#total++;
    if (this.#cursor !== undefined) {
      if (!isAfter(entry, this.#cursor, this.#query.sort)) return;
    } else if (this.#skip > 0) {
      this.#skip--;
      return;
    }
    if (this.#items.length < this.#limit) this.#items.push(entry);
    else this.#more = true;
  }

  /** Whether the page is complete and a match after it was seen: later entries change nothing but `total`. */
  get full(): boolean {
    return this.#more;
  }

  /** The page; `total` counts the entries added. */
  result(): QueryPage<E> {
    const last = this.#items.at(-1);
    const next = this.#more && last !== undefined ? cursorAfter(last, this.#query.sort) : undefined;
    return { items: this.#items, total: this.#total, next };
  }
}

/** Runs `query` over `entries` (all of one model type): filter, sort, page. */
export function runQuery<E extends QueryEntry>(entries: Iterable<E>, query: Query): QueryPage<E> {
  const matched: E[] = [];
  const matches = compileFilters(query.filters);
  for (const e of entries) if (matches(e.value)) matched.push(e);
  matched.sort(entryComparator(query.sort));
  return pageOf(matched, query);
}

const OPERATORS = new Set<string>(Object.values(FilterOperator));
const DIRECTIONS = new Set<string>(Object.values(SortDirection));
const COMPARISONS = new Set<string>([FilterOperator.Gt, FilterOperator.Gte, FilterOperator.Lt, FilterOperator.Lte]);

function isJson(v: unknown, depth = 0): boolean {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (depth > 64 || typeof v !== "object") return false;
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return false;
  return Object.values(v).every((x) => isJson(x, depth + 1));
}

function checkPath(path: unknown, where: string): void {
  if (typeof path !== "string" || path.length === 0 || path.split(".").some((p) => p.length === 0)) {
    throw new ValidationError(where, `must be a dotted path of non-empty names, got ${JSON.stringify(path)}`);
  }
}

function checkCount(v: unknown, where: string): void {
  if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)) {
    throw new ValidationError(where, `must be an integer >= 0, got ${String(v)}`);
  }
}

/**
 * Checks a query before it runs (every store calls it).
 * @throws InvalidNameError for a bad model type; ValidationError for a bad
 *   filter, sort key, limit, offset or cursor (naming the field)
 */
export function checkQuery(query: Query): void {
  if (query === null || typeof query !== "object") throw new ValidationError("query", "must be a Query object");
  validateEntityType(query.modelType);
  if (!Array.isArray(query.filters)) throw new ValidationError("query.filters", "must be an array");
  if (!Array.isArray(query.sort)) throw new ValidationError("query.sort", "must be an array");
  // Indexed loops, not forEach: a hole in either array is checked (and refused) as the query runs would read it.
  for (let i = 0; i < query.filters.length; i++) {
    const f = query.filters[i] as QueryFilter;
    const where = `query.filters[${i}]`;
    checkPath(f?.path, `${where}.path`);
    if (!OPERATORS.has(f.op)) {
      throw new ValidationError(`${where}.op`, `must be one of ${[...OPERATORS].join(", ")}, got ${String(f.op)}`);
    }
    const v = f.value;
    const fail = (what: string) => new ValidationError(`${where}.value`, `${f.op} needs ${what}`);
    if (f.op === FilterOperator.In) {
      if (!Array.isArray(v) || !isJson(v)) throw fail("an array of JSON values");
    } else if (f.op === FilterOperator.Exists) {
      if (typeof v !== "boolean") throw fail("true or false");
    } else if (f.op === FilterOperator.Prefix) {
      if (typeof v !== "string") throw fail("a string");
    } else if (COMPARISONS.has(f.op)) {
      if (!(typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)))) {
        throw fail("a number, a string or a boolean");
      }
    } else if (v === undefined || !isJson(v)) {
      throw fail("a JSON value");
    }
  }
  for (let i = 0; i < query.sort.length; i++) {
    const s = query.sort[i] as QuerySort;
    checkPath(s?.path, `query.sort[${i}].path`);
    if (!DIRECTIONS.has(s.direction)) {
      throw new ValidationError(`query.sort[${i}].direction`, `must be "asc" or "desc", got ${String(s.direction)}`);
    }
  }
  checkCount(query.limit, "query.limit");
  checkCount(query.offset, "query.offset");
  if (query.after !== undefined) {
    if (typeof query.after !== "string") throw new ValidationError("query.after", "must be a cursor string");
    if ((query.offset ?? 0) > 0) throw new ValidationError("query.offset", "cannot be used with after (a cursor)");
    decodeCursor(query.after, query.sort);
  }
}
