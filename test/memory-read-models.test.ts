import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../src/index.js";
import { MEMORY_READ_MODEL_STORE_DEFAULTS, MemoryReadModelStore } from "../src/memory/index.js";
import { Pagination, QueryBuilder } from "../src/read-models/index.js";
import { describeReadModelStoreContract, readModelMetadata } from "../src/testing/index.js";

describeReadModelStoreContract("MemoryReadModelStore", (config) => MemoryReadModelStore.open(config), {
  queryRuns: 100,
});

describe("MemoryReadModelStore options", () => {
  it("opens with its defaults", async () => {
    const store = await MemoryReadModelStore.open();
    expect(store.indexes).toEqual(MEMORY_READ_MODEL_STORE_DEFAULTS.indexes);
    expect(store.maxValueBytes).toBe(MEMORY_READ_MODEL_STORE_DEFAULTS.maxValueBytes);
    expect(store.capabilities).toEqual({ atomicCheckpoint: true, indexes: true, durable: false });
  });

  it("refuses invalid and unknown options with a ConfigurationError naming the option", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ indexes: "total" }, /MemoryReadModelStore option indexes must be an array of dotted paths, got "total"/],
      [{ indexes: ["a..b"] }, /option indexes must be an array of dotted paths/],
      [{ maxValueBytes: 0 }, /MemoryReadModelStore option maxValueBytes must be an integer >= 1, got 0/],
      [{ directory: "x" }, /MemoryReadModelStore has no option directory/],
    ];
    for (const [options, message] of cases) {
      const error = await MemoryReadModelStore.open(options as never).catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.Configuration)).toBe(true);
      expect(String(error)).toMatch(message);
    }
  });

  it("maxValueBytes bounds a model", async () => {
    const store = await MemoryReadModelStore.open({ maxValueBytes: 20 });
    await store.save({ a: 1 }, readModelMetadata("T", "a"));
    const error = await store.save({ a: "x".repeat(20) }, readModelMetadata("T", "b")).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.TooLarge)).toBe(true);
    expect(store.count("T")).toBe(1);
  });

  it("an index answers large queries the same as a scan, across many writes", async () => {
    const indexed = await MemoryReadModelStore.open({ indexes: ["customer", "total"] });
    const plain = await MemoryReadModelStore.open();
    for (let i = 0; i < 3000; i++) {
      const model = { customer: `c${i % 17}`, total: (i * 7919) % 1000 };
      for (const s of [indexed, plain]) await s.save(model, readModelMetadata("O", `o${i}`));
      if (i % 5 === 0) for (const s of [indexed, plain]) await s.delete("O", `o${Math.floor(i / 2)}`);
      if (i % 700 === 699 || i === 2999) {
        for (const build of [
          () => new QueryBuilder("O").filter("customer", "c3").sortBy("total", "desc").limit(20),
          () => new QueryBuilder("O").gte("total", 500).lt("total", 510).sortBy("customer"),
          () => new QueryBuilder("O").sortBy("total").offset(100).limit(20),
          () => new QueryBuilder("O").prefix("customer", "c1").sortBy("total").limit(5),
        ]) {
          const [a, b] = await Promise.all([indexed.query(build().build()), plain.query(build().build())]);
          expect(a).toEqual(b);
          expect(a.total).toBeGreaterThan(0);
        }
      }
    }
  });
});

describe("QueryBuilder", () => {
  it("builds the query it was told", () => {
    const q = new QueryBuilder("Order")
      .filter("customer.id", "c1")
      .where("total", "gte", 10)
      .ne("a", 1)
      .gt("b", 2)
      .lt("c", 3)
      .lte("d", 4)
      .in("e", [1, 2])
      .prefix("f", "x")
      .exists("g")
      .sortBy("total", "desc")
      .sortBy("id")
      .limit(20)
      .offset(40)
      .build();
    expect(q).toEqual({
      modelType: "Order",
      filters: [
        { path: "customer.id", op: "eq", value: "c1" },
        { path: "total", op: "gte", value: 10 },
        { path: "a", op: "ne", value: 1 },
        { path: "b", op: "gt", value: 2 },
        { path: "c", op: "lt", value: 3 },
        { path: "d", op: "lte", value: 4 },
        { path: "e", op: "in", value: [1, 2] },
        { path: "f", op: "prefix", value: "x" },
        { path: "g", op: "exists", value: true },
      ],
      sort: [
        { path: "total", direction: "desc" },
        { path: "id", direction: "asc" },
      ],
      limit: 20,
      offset: 40,
    });
  });

  it("refuses an invalid query when built", () => {
    expect(() => new QueryBuilder("O").limit(-1).build()).toThrow(/query.limit: must be an integer >= 0/);
    expect(() => new QueryBuilder("O").gt("a", null as never).build()).toThrow(
      /gt needs a number, a string or a boolean/,
    );
    expect(() => new QueryBuilder("O").offset(3).after("x").build()).toThrow(/cannot be used with after/);
    expect(() => new QueryBuilder("a/b").build()).toThrow(/must not contain/);
    // `in` takes an array: a string is not spread into its characters, a number is no TypeError.
    for (const values of ["open", 5, undefined])
      expect(() => new QueryBuilder("O").in("status", values as never).build()).toThrow(
        expect.objectContaining({
          code: "STATELOG_VALIDATION",
          message: expect.stringMatching(/in needs an array of JSON values/),
        }),
      );
  });
});

describe("Pagination.fromQuery", () => {
  it("computes page, totalPages and hasMore", () => {
    expect(Pagination.fromQuery(10, 0, 25)).toEqual({ page: 1, perPage: 10, total: 25, totalPages: 3, hasMore: true });
    expect(Pagination.fromQuery(10, 10, 25)).toEqual({ page: 2, perPage: 10, total: 25, totalPages: 3, hasMore: true });
    expect(Pagination.fromQuery(10, 20, 25)).toEqual({
      page: 3,
      perPage: 10,
      total: 25,
      totalPages: 3,
      hasMore: false,
    });
    expect(Pagination.fromQuery(10, 20, 30)).toEqual({
      page: 3,
      perPage: 10,
      total: 30,
      totalPages: 3,
      hasMore: false,
    });
    expect(Pagination.fromQuery(10, 0, 0)).toEqual({ page: 1, perPage: 10, total: 0, totalPages: 0, hasMore: false });
    expect(Pagination.fromQuery(10, 15, 25).page).toBe(2);
    expect(Pagination.fromQuery(10, 40, 25).hasMore).toBe(false);
  });

  it("refuses a limit below 1 and negative counts", () => {
    expect(() => Pagination.fromQuery(0, 0, 1)).toThrow(/limit: must be an integer >= 1/);
    expect(() => Pagination.fromQuery(1, -1, 1)).toThrow(/offset: must be an integer >= 0/);
    expect(() => Pagination.fromQuery(1, 0, 1.5)).toThrow(/total: must be an integer >= 0/);
  });
});
