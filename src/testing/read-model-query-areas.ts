/**
 * The query and durability areas of the ReadModelStore suite: queries by
 * example (each operator, nested paths, several sort keys, missing values,
 * offset and cursor pages, with and without indexes), the model-based test
 * against a plain array, and what survives a reopen.
 */
import { ErrorCode } from "../index.js";
import { QueryBuilder } from "../read-models/index.js";
import { expectCode } from "./assert.js";
import { uniqueName } from "./fixtures.js";
import {
  type ReadModelStoreContractOptions,
  type ReadModelStoreFactory,
  readModelMetadata,
  statusRecord,
} from "./read-model-fixtures.js";
import { describeReadModelQueryModel } from "./read-model-query-model.js";
import { describe, expect, it } from "./vitest.js";

type Factory = ReadModelStoreFactory;
const status = statusRecord;

const orders = [
  { id: "o1", customer: { id: "c1", tier: "gold" }, total: 120, status: "open" },
  { id: "o2", customer: { id: "c2" }, total: 80, status: "paid" },
  { id: "o3", customer: { id: "c1" }, total: 80, status: "paid" },
  { id: "o4", customer: { id: "c3", tier: "silver" }, status: "open" },
  { id: "o5", customer: { id: "c1", tier: "gold" }, total: 300, status: "cancelled" },
  { id: "o6", customer: { id: "c2" }, total: null, status: "open" },
];

export function describeQueries(fresh: Factory, options: ReadModelStoreContractOptions): void {
  describe("queries", () => {
    for (const indexes of [[], ["customer.id", "total", "status"]]) {
      const label = indexes.length ? "with indexes" : "without indexes";
      it(`filters on nested paths, sorts by several keys, pages by offset and by cursor (${label})`, async () => {
        const store = await fresh({ indexes });
        const type = uniqueName("Order");
        for (const o of orders) await store.save(o, readModelMetadata(type, o.id));
        const ids = async (b: QueryBuilder) =>
          (await store.query<{ id: string }>(b.build())).items.map((i) => i.model.id);
        const q = () => new QueryBuilder(type);
        expect(await ids(q().filter("customer.id", "c1").sortBy("total", "desc"))).toEqual(["o5", "o1", "o3"]);
        expect(await ids(q().ne("customer.id", "c1"))).toEqual(["o2", "o4", "o6"]);
        expect(await ids(q().gt("total", 80))).toEqual(["o1", "o5"]);
        expect(await ids(q().gte("total", 80).sortBy("total"))).toEqual(["o2", "o3", "o1", "o5"]);
        expect(await ids(q().lt("total", 120))).toEqual(["o2", "o3"]);
        expect(await ids(q().lte("total", 120).sortBy("total", "desc"))).toEqual(["o1", "o2", "o3"]);
        expect(await ids(q().in("status", ["paid", "cancelled"]))).toEqual(["o2", "o3", "o5"]);
        expect(await ids(q().prefix("customer.tier", "g"))).toEqual(["o1", "o5"]);
        expect(await ids(q().exists("customer.tier", false))).toEqual(["o2", "o3", "o6"]);
        expect(await ids(q().exists("total"))).toEqual(["o1", "o2", "o3", "o5", "o6"]);
        expect(await ids(q().filter("total", null))).toEqual(["o6"]);
        // Missing last ascending, first descending; null before numbers; ties by id.
        expect(await ids(q().sortBy("total"))).toEqual(["o6", "o2", "o3", "o1", "o5", "o4"]);
        expect(await ids(q().sortBy("total", "desc"))).toEqual(["o4", "o5", "o1", "o2", "o3", "o6"]);
        expect(await ids(q().sortBy("customer.id", "desc").sortBy("total", "asc"))).toEqual([
          "o4",
          "o6",
          "o2",
          "o3",
          "o1",
          "o5",
        ]);
        const page = await store.query(q().sortBy("total").offset(2).limit(2).build());
        expect(page.items.map((i) => i.metadata.id)).toEqual(["o3", "o1"]);
        expect(page.total).toBe(6);
        expect(page.next).toBeDefined();
        const rest = await store.query(q().sortBy("total").after(page.next).limit(10).build());
        expect(rest.items.map((i) => i.metadata.id)).toEqual(["o5", "o4"]);
        expect(rest.total).toBe(6);
        expect(rest.next).toBeUndefined();
        const empty = await store.query(q().filter("customer.id", "nobody").build());
        expect(empty).toEqual({ items: [], total: 0, next: undefined });
      });

      it(`sees every write: saves, replacements and deletes (${label})`, async () => {
        const store = await fresh({ indexes });
        const type = uniqueName("Order");
        for (const o of orders) await store.save(o, readModelMetadata(type, o.id));
        const byTotal = async () =>
          (await store.query<{ id: string }>(new QueryBuilder(type).exists("total").sortBy("total").build())).items.map(
            (i) => i.model.id,
          );
        expect(await byTotal()).toEqual(["o6", "o2", "o3", "o1", "o5"]);
        await store.save({ ...orders[4], total: 1 }, readModelMetadata(type, "o5"));
        await store.delete(type, "o2");
        await store.save({ id: "o7", customer: { id: "c9" }, total: 90 }, readModelMetadata(type, "o7"));
        expect(await byTotal()).toEqual(["o6", "o5", "o3", "o7", "o1"]);
      });
    }

    it("refuses an invalid query with a typed error", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      await expectCode(
        store.query({ modelType: type, filters: [{ path: "", op: "eq", value: 1 }], sort: [] }),
        ErrorCode.Validation,
      );
      await expectCode(
        store.query({ modelType: type, filters: [{ path: "a", op: "like" as never, value: 1 }], sort: [] }),
        ErrorCode.Validation,
      );
      await expectCode(
        store.query({ modelType: type, filters: [{ path: "a", op: "in", value: 1 }], sort: [] }),
        ErrorCode.Validation,
      );
      await expectCode(
        store.query({ modelType: type, filters: [], sort: [{ path: "a", direction: "up" as never }] }),
        ErrorCode.Validation,
      );
      await expectCode(store.query({ modelType: type, filters: [], sort: [], limit: -1 }), ErrorCode.Validation);
      await expectCode(
        store.query({ modelType: type, filters: [], sort: [], after: "not a cursor" }),
        ErrorCode.Validation,
      );
      await expectCode(store.query({ modelType: "a/b", filters: [], sort: [] }), ErrorCode.InvalidName);
    });

    describeReadModelQueryModel(() => fresh({ indexes: ["n", "nested.x", "s"] }), {
      runs: options.queryRuns ?? 40,
      timeout: Math.max(options.timeoutMs ?? 30_000, 120_000),
    });
    describeReadModelQueryModel(() => fresh({ indexes: [] }), {
      runs: Math.ceil((options.queryRuns ?? 40) / 2),
      timeout: Math.max(options.timeoutMs ?? 30_000, 120_000),
    });
  });
}

export function describeDurability(fresh: Factory, reopen: NonNullable<ReadModelStoreContractOptions["reopen"]>): void {
  describe("durability", () => {
    it("models, revisions, deletes and statuses survive a reopen; revisions keep increasing", async () => {
      const config = { indexes: ["total"] };
      const store = await fresh(config);
      expect(store.capabilities.durable).toBe(true);
      const type = uniqueName("T");
      const name = uniqueName("proj");
      for (const o of orders) await store.save(o, readModelMetadata(type, o.id));
      await store.delete(type, "o2");
      const last = await store.save({ id: "o9", total: 5 }, readModelMetadata(type, "o9"));
      await store.delete(type, "o9");
      await store.updateProjectionStatus(status(name, 9));
      const removed = uniqueName("removed");
      if (store.deleteProjectionStatus) {
        await store.updateProjectionStatus(status(removed, 1));
        await store.deleteProjectionStatus(removed);
      }
      const before = await store.query(new QueryBuilder(type).sortBy("total").build());
      const again = await reopen(store, config);
      try {
        expect(await again.query(new QueryBuilder(type).sortBy("total").build())).toEqual(before);
        expect(await again.getProjectionStatus(name)).toEqual(status(name, 9));
        expect(await again.getProjectionStatus(removed)).toBeUndefined();
        expect(await again.save({ id: "o9" }, readModelMetadata(type, "o9"))).toBeGreaterThan(last);
      } finally {
        await again.close();
      }
    });
  });
}
