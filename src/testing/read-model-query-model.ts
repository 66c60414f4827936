/**
 * The model-based test of the read-model query engine: random models,
 * random queries; every store must give the same answer as a plain array
 * filter / sort / slice written here independently of the engine, and a
 * walk through pages by cursor must give the same models as one big page.
 */
import type { Arbitrary } from "fast-check";
import type { Query, QueryFilter, QuerySort, ReadModelMetadata, ReadModelStore } from "../read-models/index.js";
import { uniqueName } from "./fixtures.js";
import { loadFastCheck } from "./peers.js";
import { expect, it } from "./vitest.js";

/** The paths the random models have (some nested), and so the paths queries use. */
export const MODEL_PATHS = ["n", "s", "b", "nested.x", "nested.deep.y"] as const;

type Model = Record<string, unknown>;

const pathValue = (model: unknown, path: string): unknown => {
  let v: unknown = model;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
};

/** Type order of the reference: null, boolean, number, string, then anything else. */
const typeOrder = (v: unknown): number =>
  v === null ? 0 : typeof v === "boolean" ? 1 : typeof v === "number" ? 2 : typeof v === "string" ? 3 : 4;

function refCompare(a: unknown, b: unknown): number {
  if (typeOrder(a) !== typeOrder(b)) return typeOrder(a) - typeOrder(b);
  if (a === b || a === null) return 0;
  return (a as number) < (b as number) ? -1 : 1;
}

function refMatches(model: Model, f: QueryFilter): boolean {
  const v = pathValue(model, f.path);
  const present = v !== undefined;
  switch (f.op) {
    case "eq":
      return present && refCompare(v, f.value) === 0;
    case "ne":
      return !present || refCompare(v, f.value) !== 0;
    case "in":
      return present && (f.value as unknown[]).some((x) => refCompare(v, x) === 0);
    case "prefix":
      return typeof v === "string" && v.slice(0, (f.value as string).length) === f.value;
    case "exists":
      return present === f.value;
    default: {
      if (!present || typeof v !== typeof f.value) return false;
      const c = refCompare(v, f.value);
      return f.op === "gt" ? c > 0 : f.op === "gte" ? c >= 0 : f.op === "lt" ? c < 0 : c <= 0;
    }
  }
}

/** The reference answer: ids in order, and how many match. */
export function referenceQuery(
  models: readonly { id: string; model: Model }[],
  q: Query,
): { ids: string[]; total: number } {
  const matched = models.filter((m) => q.filters.every((f) => refMatches(m.model, f)));
  const sorted = [...matched].sort((a, b) => {
    for (const s of q.sort) {
      const va = pathValue(a.model, s.path);
      const vb = pathValue(b.model, s.path);
      let c: number;
      if (va === undefined || vb === undefined) c = va === vb ? 0 : va === undefined ? 1 : -1;
      else c = refCompare(va, vb);
      if (s.direction === "desc") c = -c;
      if (c !== 0) return c;
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const offset = q.offset ?? 0;
  const end = q.limit === undefined ? undefined : offset + q.limit;
  return { ids: sorted.slice(offset, end).map((m) => m.id), total: matched.length };
}

function arbitraries(fc: Awaited<ReturnType<typeof loadFastCheck>>) {
  const scalar: Arbitrary<unknown> = fc.oneof(
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom(0.5, -1.5, 2.25),
    fc.constantFrom("", "a", "ab", "abc", "b", "B", "ba", "é", "1"),
    fc.boolean(),
    fc.constant(null),
  );
  const maybe = (a: Arbitrary<unknown>) => fc.option(a, { nil: undefined, freq: 4 });
  const model: Arbitrary<Model> = fc
    .record({
      n: maybe(fc.oneof(fc.integer({ min: -3, max: 3 }), scalar)),
      s: maybe(fc.oneof(fc.constantFrom("", "a", "ab", "abc", "b", "ba", "bb"), scalar)),
      b: maybe(fc.boolean()),
      nested: maybe(fc.record({ x: maybe(scalar), deep: maybe(fc.record({ y: maybe(scalar) })) })),
    })
    .map((m) => JSON.parse(JSON.stringify(m)) as Model);
  const models = fc.uniqueArray(
    fc.record({
      id: fc.constantFrom(
        ..."abcdefghijklmnopqrstuvwxyz0123456789".split("").map((c, i) => `${c}${i % 3 === 0 ? "-x" : ""}`),
      ),
      model,
    }),
    {
      maxLength: 24,
      selector: (m) => m.id,
    },
  );
  const path = fc.constantFrom(...MODEL_PATHS);
  const filter: Arbitrary<QueryFilter> = fc.oneof(
    fc.record({ path, op: fc.constantFrom("eq" as const, "ne" as const), value: scalar }),
    fc.record({
      path,
      op: fc.constantFrom("gt" as const, "gte" as const, "lt" as const, "lte" as const),
      value: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom("a", "ab", "b"), fc.boolean()),
    }),
    fc.record({ path, op: fc.constant("in" as const), value: fc.array(scalar, { maxLength: 3 }) }),
    fc.record({ path, op: fc.constant("prefix" as const), value: fc.constantFrom("", "a", "ab", "b") }),
    fc.record({ path, op: fc.constant("exists" as const), value: fc.boolean() }),
  );
  const sort: Arbitrary<QuerySort> = fc.record({ path, direction: fc.constantFrom("asc" as const, "desc" as const) });
  const query = fc.record({
    filters: fc.array(filter, { maxLength: 3 }),
    sort: fc.array(sort, { maxLength: 3 }),
    limit: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
    offset: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
  });
  return { models, query };
}

const meta = (modelType: string, id: string): ReadModelMetadata => ({
  id,
  modelType,
  schemaVersion: 1,
  lastUpdated: new Date(0),
  lastEventPosition: 0,
  metadata: {},
});

/**
 * Registers the model-based query test: `runs` random model sets, each
 * queried by several random queries and walked by cursor.
 */
export function describeReadModelQueryModel(
  open: () => Promise<ReadModelStore>,
  options: { runs: number; timeout: number },
): void {
  it(`queries: ${options.runs} random model sets and queries give the plain array's answer`, {
    timeout: options.timeout,
  }, async () => {
    const fc = await loadFastCheck();
    const { models, query } = arbitraries(fc);
    const store = await open();
    try {
      await fc.assert(
        fc.asyncProperty(models, fc.array(query, { minLength: 1, maxLength: 6 }), async (set, queries) => {
          const modelType = uniqueName("qm");
          for (const { id, model } of set) await store.save(model, meta(modelType, id));
          for (const q of queries) {
            const full: Query = { modelType, ...q };
            const expected = referenceQuery(set, full);
            const got = await store.query<Model>(full);
            expect(got.items.map((i) => i.metadata.id)).toEqual(expected.ids);
            expect(got.total).toBe(expected.total);
            const byId = new Map(set.map((m) => [m.id, m.model]));
            for (const item of got.items) expect(item.model).toEqual(byId.get(item.metadata.id));
            const end = (q.offset ?? 0) + expected.ids.length;
            expect(got.next !== undefined).toBe(expected.ids.length > 0 && end < expected.total);
            // The same order page by page through cursors.
            const pageSize = Math.max(1, q.limit ?? 3);
            const all = referenceQuery(set, { ...full, limit: undefined, offset: undefined }).ids;
            const walked: string[] = [];
            let after: string | undefined;
            for (let pages = 0; pages <= all.length; pages++) {
              const page = await store.query<Model>({
                modelType,
                filters: q.filters,
                sort: q.sort,
                limit: pageSize,
                after,
              });
              walked.push(...page.items.map((i) => i.metadata.id));
              if (!page.next) break;
              after = page.next;
            }
            expect(walked).toEqual(all);
          }
        }),
        { numRuns: options.runs },
      );
    } finally {
      await store.close();
    }
  });
}
