/**
 * `ReadModelTable`: read models, their revisions and projection statuses in
 * process memory, with declared sorted indexes — the state behind the
 * memory store and the file store (which loads its log into one), public
 * for backend authors who keep their models in memory too.
 *
 * An index on a path keeps every model of a type sorted by the value at
 * that path (then by id). A query uses it two ways:
 * - a filter `eq`, `in`, `gt`, `gte`, `lt`, `lte`, `prefix` or `exists` on
 *   an indexed path narrows the candidates to a range found by binary
 *   search (the narrowest such range is taken); only they are filtered and
 *   sorted;
 * - otherwise, when the first sort key is indexed, one pass filters every
 *   model to count `total`, then the index is walked in order until the
 *   page is complete: nothing is sorted but ties.
 * Writes mark an index stale; the next query brings it up to date (a few
 * changes are moved into place, many trigger one re-sort).
 */
import { OwnedSave, type PreparedSave, type PreparedWrite, ProjectedEntry, revisionConflict } from "./prepare.js";
import {
  compareSortValues,
  compileFilters,
  entryComparator,
  PageCollector,
  type QueryEntry,
  type QueryPage,
  rankOf,
  runQuery,
  valueAt,
} from "./query.js";
import {
  FilterOperator,
  type ProjectionStatusRecord,
  type Query,
  type QueryFilter,
  type ReadModelMetadata,
  SortDirection,
} from "./types.js";

/** One stored model of a {@link ReadModelTable}. */
export interface TableEntry extends QueryEntry {
  readonly id: string;
  /** The parsed model, plain JSON data (never handed out: callers get copies). */
  readonly value: unknown;
  /** The model's JSON text. */
  readonly json: string;
  readonly metadata: ReadModelMetadata;
  /** The metadata as JSON text. */
  readonly metadataJson: string;
  readonly revision: number;
}

/** The entry of a save: its parsed value and metadata JSON come from the save, made when first read. */
class SavedEntry implements TableEntry {
  constructor(
    readonly save: PreparedSave,
    readonly revision: number,
  ) {}
  get id(): string {
    return this.save.id;
  }
  get value(): unknown {
    return this.save.value;
  }
  get json(): string {
    return this.save.json;
  }
  get metadata(): ReadModelMetadata {
    return this.save.metadata;
  }
  get metadataJson(): string {
    return this.save.metadataJson;
  }
}

interface IndexItem {
  readonly key: unknown;
  readonly entry: TableEntry;
}

const compareItems = (a: IndexItem, b: IndexItem): number =>
  compareSortValues(a.key, b.key, false) || (a.entry.id < b.entry.id ? -1 : a.entry.id > b.entry.id ? 1 : 0);

/** The first index in [lo, hi) where `atOrPast` holds (it holds from some point on), or hi. */
function firstWhere<T>(items: readonly T[], lo: number, hi: number, atOrPast: (item: T) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (atOrPast(items[mid] as T)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The models of one type sorted by the value at one path, then by id. */
class SortedIndex {
  #sorted: IndexItem[] = [];
  readonly #current = new Map<string, IndexItem>();
  readonly #pending = new Set<string>();
  #stale = true;

  constructor(readonly path: string) {}

  /** A model changed or went away. */
  touched(id: string): void {
    if (this.#stale) return;
    this.#pending.add(id);
    if (this.#pending.size > Math.max(256, this.#sorted.length >>> 4)) {
      this.#stale = true;
      this.#pending.clear();
    }
  }

  /** The items, up to date with `models`. */
  items(models: ReadonlyMap<string, TableEntry>): readonly IndexItem[] {
    if (this.#stale) {
      this.#current.clear();
      this.#sorted = [];
      for (const entry of models.values()) {
        const item = { key: valueAt(entry.value, this.path), entry };
        this.#sorted.push(item);
        this.#current.set(entry.id, item);
      }
      this.#sorted.sort(compareItems);
      this.#stale = false;
    } else {
      for (const id of this.#pending) {
        const old = this.#current.get(id);
        if (old) {
          const at = firstWhere(this.#sorted, 0, this.#sorted.length, (x) => compareItems(x, old) >= 0);
          this.#sorted.splice(at, 1);
          this.#current.delete(id);
        }
        const entry = models.get(id);
        if (entry) {
          const item = { key: valueAt(entry.value, this.path), entry };
          const at = firstWhere(this.#sorted, 0, this.#sorted.length, (x) => compareItems(x, item) > 0);
          this.#sorted.splice(at, 0, item);
          this.#current.set(id, item);
        }
      }
    }
    this.#pending.clear();
    return this.#sorted;
  }
}

/** The ranges [lo, hi) of `items` that a filter on the index's path can match, or undefined (`ne`). */
function rangesFor(items: readonly IndexItem[], f: QueryFilter): [number, number][] | undefined {
  const n = items.length;
  const cmp = (x: IndexItem, v: unknown) => compareSortValues(x.key, v, false);
  const eqRange = (v: unknown): [number, number] => [
    firstWhere(items, 0, n, (x) => cmp(x, v) >= 0),
    firstWhere(items, 0, n, (x) => cmp(x, v) > 0),
  ];
  const missingFrom = () => firstWhere(items, 0, n, (x) => x.key === undefined);
  switch (f.op) {
    case FilterOperator.Eq:
      return [eqRange(f.value)];
    case FilterOperator.In: {
      const values = [...(f.value as unknown[])].sort((a, b) => compareSortValues(a, b, false));
      const unique = values.filter((v, i) => i === 0 || compareSortValues(values[i - 1], v, false) !== 0);
      return unique.map(eqRange);
    }
    case FilterOperator.Exists:
      return f.value ? [[0, missingFrom()]] : [[missingFrom(), n]];
    case FilterOperator.Prefix: {
      const p = f.value as string;
      const lo = firstWhere(items, 0, n, (x) => cmp(x, p) >= 0);
      let hi = lo;
      for (let key = items[hi]?.key; typeof key === "string" && key.startsWith(p); key = items[hi]?.key) hi++;
      return [[lo, hi]];
    }
    case FilterOperator.Gt:
    case FilterOperator.Gte:
    case FilterOperator.Lt:
    case FilterOperator.Lte: {
      const r = rankOf(f.value);
      const typeLo = firstWhere(items, 0, n, (x) => x.key === undefined || rankOf(x.key) >= r);
      const typeHi = firstWhere(items, 0, n, (x) => x.key === undefined || rankOf(x.key) > r);
      const v = f.value;
      if (f.op === FilterOperator.Gt) return [[firstWhere(items, typeLo, typeHi, (x) => cmp(x, v) > 0), typeHi]];
      if (f.op === FilterOperator.Gte) return [[firstWhere(items, typeLo, typeHi, (x) => cmp(x, v) >= 0), typeHi]];
      if (f.op === FilterOperator.Lt) return [[typeLo, firstWhere(items, typeLo, typeHi, (x) => cmp(x, v) >= 0)]];
      return [[typeLo, firstWhere(items, typeLo, typeHi, (x) => cmp(x, v) > 0)]];
    }
    default:
      return undefined;
  }
}

class TypeTable {
  readonly indexes = new Map<string, SortedIndex>();
  constructor(
    paths: readonly string[],
    readonly models: Map<string, TableEntry> = new Map(),
  ) {
    for (const p of paths) this.indexes.set(p, new SortedIndex(p));
  }
}

/** Read models, revisions and projection statuses in memory, with declared indexes. */
export class ReadModelTable {
  readonly #types = new Map<string, TypeTable>();
  readonly #statuses = new Map<string, ProjectionStatusRecord>();
  readonly #indexPaths: readonly string[];
  /** The last revision given (revisions come from this one sequence). */
  sequence = 0;

  /** @param indexes dotted paths to keep a sorted index on, for every model type */
  constructor(indexes: readonly string[] = []) {
    this.#indexPaths = [...new Set(indexes)];
  }

  /** The declared index paths. */
  get indexes(): readonly string[] {
    return this.#indexPaths;
  }

  /** A stored model, or `undefined`. */
  get(modelType: string, id: string): TableEntry | undefined {
    return this.#types.get(modelType)?.models.get(id);
  }

  /** The ids of the models of `modelType`, sorted. */
  list(modelType: string): string[] {
    const t = this.#types.get(modelType);
    if (!t) return [];
    return [...t.models.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** The model types holding models. */
  modelTypes(): string[] {
    return [...this.#types.keys()];
  }

  /** Every stored model, type by type. */
  *entries(): IterableIterator<TableEntry> {
    for (const t of this.#types.values()) yield* t.models.values();
  }

  /** How many models are stored (of `modelType`, or of every type). */
  count(modelType?: string): number {
    if (modelType !== undefined) return this.#types.get(modelType)?.models.size ?? 0;
    let n = 0;
    for (const t of this.#types.values()) n += t.models.size;
    return n;
  }

  /**
   * Checks every expected revision of `writes` (each write sees those
   * before it) and returns the revision each would get (0 for a delete of a
   * missing model); changes nothing. `distinct`: the caller guarantees
   * that no model (type and id) is written twice in `writes`, so no write
   * needs to see another's revision.
   * @throws VersionConflictError
   */
  plan(writes: readonly PreparedWrite[], distinct = false): number[] {
    /**
     * Revisions given by earlier writes of the batch, by model type then id;
     * made only once the batch writes a second model type or an id twice.
     */
    let pending: Map<string, Map<string, number>> | undefined;
    let seq = this.sequence;
    const revisions = new Array<number>(writes.length);
    let lastType: string | undefined;
    let lastTable: TypeTable | undefined;
    /** Ids written so far in the batch, while every write was of `lastType` and no id came twice. */
    let ids: Set<string> | undefined = distinct ? undefined : new Set();
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i] as PreparedWrite;
      const modelType = w.modelType;
      const id = w.id;
      if (modelType !== lastType) {
        if (lastType !== undefined && ids !== undefined) {
          pending = this.#pendingOf(writes, revisions, i);
          ids = undefined;
        }
        lastType = modelType;
        lastTable = this.#types.get(modelType);
      }
      let planned: Map<string, number> | undefined;
      let actual: number | undefined;
      if (ids !== undefined) {
        if (ids.has(id)) {
          pending = this.#pendingOf(writes, revisions, i);
          ids = undefined;
        } else ids.add(id);
      }
      if (pending !== undefined) {
        planned = pending.get(modelType);
        if (!planned) {
          planned = new Map();
          pending.set(modelType, planned);
        }
        actual = planned.get(id);
      }
      actual ??= lastTable?.models.get(id)?.revision ?? 0;
      if (w.expectedRevision !== undefined && w.expectedRevision !== actual) {
        throw revisionConflict(modelType, id, w.expectedRevision, actual);
      }
      if (w.type === "delete" && actual === 0) {
        revisions[i] = 0;
        planned?.set(id, 0);
        continue;
      }
      const revision = ++seq;
      planned?.set(id, w.type === "delete" ? 0 : revision);
      revisions[i] = revision;
    }
    return revisions;
  }

  /** The revisions planned for `writes[0 .. end)`, by model type then id (each id once in them). */
  #pendingOf(
    writes: readonly PreparedWrite[],
    revisions: readonly number[],
    end: number,
  ): Map<string, Map<string, number>> {
    const pending = new Map<string, Map<string, number>>();
    for (let i = 0; i < end; i++) {
      const w = writes[i] as PreparedWrite;
      let planned = pending.get(w.modelType);
      if (!planned) {
        planned = new Map();
        pending.set(w.modelType, planned);
      }
      planned.set(w.id, w.type === "delete" ? 0 : (revisions[i] as number));
    }
    return pending;
  }

  /**
   * Applies `writes` with the revisions {@link plan} gave them.
   * `byId`: a map of exactly the saves of `writes` by id, when they are
   * the entries of one projector's batch given up by their holder (see
   * {@link ProjectedEntry}); when the table holds no model of their type,
   * it takes that map as its own (nobody else may use it afterwards).
   */
  apply(writes: readonly PreparedWrite[], revisions: readonly number[], byId?: Map<string, ProjectedEntry>): void {
    if (byId !== undefined && this.#adopt(writes, revisions, byId)) return;
    /** The table of the last projector's entry put, and its model type (a projector's batch is of one). */
    let projected: TypeTable | undefined;
    let projectedType: string | undefined;
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i] as PreparedWrite;
      const revision = revisions[i] as number;
      if (revision === 0) continue;
      if (w instanceof ProjectedEntry) {
        // A projector's entry becomes the table's, with its new revision (its holder gave it up).
        w.revision = revision;
        const modelType = w.modelType;
        if (projected === undefined || modelType !== projectedType) {
          this.put(w, modelType);
          projected = this.#types.get(modelType);
          projectedType = modelType;
        } else {
          projected.models.set(w.id, w);
          if (projected.indexes.size > 0) for (const index of projected.indexes.values()) index.touched(w.id);
        }
      } else if (w.type === "save") {
        // A save made by prepare.ts becomes the entry itself (once); others are wrapped.
        this.put(
          w instanceof OwnedSave && w.claim(revision) ? (w as PreparedSave & TableEntry) : new SavedEntry(w, revision),
        );
      } else {
        this.remove(w.modelType, w.id);
        projected = undefined; // the last model of a type removed takes its table with it
      }
      if (revision > this.sequence) this.sequence = revision;
    }
  }

  /**
   * Applies a projector's batch of saves only, of a type the table holds
   * none of, by taking `byId` (the same entries by id) as the type's map;
   * false (nothing done) when the batch is not such a one.
   */
  #adopt(writes: readonly PreparedWrite[], revisions: readonly number[], byId: Map<string, ProjectedEntry>): boolean {
    const first = writes[0];
    if (!(first instanceof ProjectedEntry) || byId.size !== writes.length) return false;
    const modelType = first.modelType;
    if (this.#types.has(modelType)) return false;
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i];
      if (!(w instanceof ProjectedEntry) || w.batch !== first.batch || revisions[i] === 0) return false;
    }
    for (let i = 0; i < writes.length; i++) {
      const revision = revisions[i] as number;
      (writes[i] as ProjectedEntry).revision = revision;
      if (revision > this.sequence) this.sequence = revision;
    }
    this.#types.set(modelType, new TypeTable(this.#indexPaths, byId));
    return true;
  }

  /** {@link plan} then {@link apply}: returns the revisions. */
  commit(writes: readonly PreparedWrite[]): number[] {
    const revisions = this.plan(writes);
    this.apply(writes, revisions);
    return revisions;
  }

  /** Stores an entry as is (loading a log: its revision is the one recorded); `modelType` is its metadata's. */
  put(entry: TableEntry, modelType: string = entry.metadata.modelType): void {
    let t = this.#types.get(modelType);
    if (!t) {
      t = new TypeTable(this.#indexPaths);
      this.#types.set(modelType, t);
    }
    t.models.set(entry.id, entry);
    if (t.indexes.size > 0) for (const index of t.indexes.values()) index.touched(entry.id);
    if (entry.revision > this.sequence) this.sequence = entry.revision;
  }

  /** Removes a model; returns whether it existed. */
  remove(modelType: string, id: string): boolean {
    const t = this.#types.get(modelType);
    if (!t?.models.delete(id)) return false;
    for (const index of t.indexes.values()) index.touched(id);
    if (t.models.size === 0) this.#types.delete(modelType);
    return true;
  }

  /** A projection's status. */
  getStatus(name: string): ProjectionStatusRecord | undefined {
    return this.#statuses.get(name);
  }

  /** Sets a projection's status (a checked, frozen record). */
  setStatus(record: ProjectionStatusRecord): void {
    this.#statuses.set(record.name, record);
  }

  /** Removes a projection's status; whether there was one. */
  deleteStatus(name: string): boolean {
    return this.#statuses.delete(name);
  }

  /** Every projection status. */
  statuses(): IterableIterator<ProjectionStatusRecord> {
    return this.#statuses.values();
  }

  /** Empties the table. */
  clear(): void {
    this.#types.clear();
    this.#statuses.clear();
  }

  /** Runs a checked query (see the module's comment for how indexes serve it). */
  query(query: Query): QueryPage<TableEntry> {
    const t = this.#types.get(query.modelType);
    if (!t) return runQuery([], query);
    let best: { items: readonly IndexItem[]; ranges: [number, number][]; size: number } | undefined;
    for (const f of query.filters) {
      const index = t.indexes.get(f.path);
      if (!index) continue;
      const items = index.items(t.models);
      const ranges = rangesFor(items, f);
      if (!ranges) continue;
      const size = ranges.reduce((n, [lo, hi]) => n + Math.max(0, hi - lo), 0);
      if (!best || size < best.size) best = { items, ranges, size };
    }
    if (best) {
      const candidates: TableEntry[] = [];
      for (const [lo, hi] of best.ranges)
        for (let i = lo; i < hi; i++) candidates.push((best.items[i] as IndexItem).entry);
      return runQuery(candidates, query);
    }
    const first = query.sort[0];
    const index = first && t.indexes.get(first.path);
    if (!first || !index) return runQuery(t.models.values(), query);
    return this.#walk(t, index.items(t.models), query, first.direction === SortDirection.Descending);
  }

  /**
   * Walks an index on the first sort key, group of equal keys by group,
   * until the page is complete; `total` comes from one pass over the
   * models in storage order (cheaper than the index's order in memory).
   */
  #walk(t: TypeTable, items: readonly IndexItem[], query: Query, descending: boolean): QueryPage<TableEntry> {
    const matches = compileFilters(query.filters);
    let total = 0;
    if (query.filters.length === 0) total = t.models.size;
    else for (const e of t.models.values()) if (matches(e.value)) total++;
    const collector = new PageCollector<TableEntry>(query);
    const cmp = entryComparator(query.sort);
    const group: TableEntry[] = [];
    const flush = () => {
      if (group.length > 1) group.sort(cmp);
      for (const e of group) collector.add(e);
      group.length = 0;
    };
    const n = items.length;
    let groupKey: unknown;
    for (let k = 0; k < n; k++) {
      const item = items[descending ? n - 1 - k : k] as IndexItem;
      if (k > 0 && item.key !== groupKey && compareSortValues(item.key, groupKey, false) !== 0) {
        flush();
        if (collector.full) break;
      }
      groupKey = item.key;
      if (matches(item.entry.value)) group.push(item.entry);
    }
    flush();
    const page = collector.result();
    return { items: page.items, total, next: page.next };
  }
}
