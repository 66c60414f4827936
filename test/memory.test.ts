import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory/index.js";
import { describeChangeFeedContract, describeStoreContract } from "../src/testing/index.js";

describeStoreContract("MemoryStore", () => new MemoryStore());
describeChangeFeedContract("MemoryStore", () => new MemoryStore(), {
  makeBehind: async (store, namespace, cursor) => {
    (store as MemoryStore).clear(namespace);
    return cursor;
  },
});
describeStoreContract("MemoryStore (small size limit)", () => new MemoryStore({ maxValueBytes: 4096 }), {
  maxValueBytes: 4096,
  propertyRuns: 10,
});

describe("MemoryStore extras", () => {
  it("refuses invalid and unknown options with a ConfigurationError naming the option", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ maxValueByte: 10 }, /MemoryStore has no option maxValueByte \(its options: clock, entityTypes, maxValueBytes/],
      [{ bucket: "x" }, /MemoryStore has no option bucket/],
      [{ maxValueBytes: 0 }, /MemoryStore option maxValueBytes must be an integer >= 1, got 0/],
    ];
    for (const [options, message] of cases) {
      expect(() => new MemoryStore(options)).toThrow(message);
      await expect(MemoryStore.open(options)).rejects.toMatchObject({ code: "STATELOG_CONFIGURATION" });
    }
    await MemoryStore.open({
      maxValueBytes: 10,
      unknownEntityTypes: "reject",
      entityTypes: [],
      clock: () => new Date(),
    });
  });

  it("refuses a missing namespace in load and compact with an InvalidNameError, as every store does", async () => {
    await using store = new MemoryStore();
    const bad = undefined as unknown as string;
    await expect(store.load(bad)).rejects.toMatchObject({ code: "STATELOG_INVALID_NAME", kind: "namespace" });
    await expect(store.compact(bad)).rejects.toMatchObject({ code: "STATELOG_INVALID_NAME", kind: "namespace" });
  });

  it("counts namespaces and entities and clears them", async () => {
    const store = new MemoryStore();
    await store.save([
      { namespace: "a", changeType: "set", entityType: "t", entityId: "1", entity: 1 },
      { namespace: "a", changeType: "unset", entityType: "t", entityId: "2" },
      { namespace: "b", changeType: "set", entityType: "t", entityId: "1", entity: 1 },
    ]);
    expect(store.namespaceCount).toBe(2);
    expect(store.entityCount("a")).toBe(2);
    expect(store.entityCount()).toBe(3);
    store.clear("a");
    expect(await store.load("a")).toEqual([]);
    expect(store.entityCount()).toBe(1);
    store.clear();
    expect(store.namespaceCount).toBe(0);
  });

  it("uses the configured clock for changes without a timestamp", async () => {
    const store = new MemoryStore({ clock: () => new Date("2024-02-03T04:05:06.789Z") });
    await store.save([{ namespace: "a", changeType: "set", entityType: "t", entityId: "1", entity: 1 }]);
    expect((await store.load("a"))[0]?.timestamp.toISOString()).toBe("2024-02-03T04:05:06.789Z");
  });
});

describe("MemoryStore updates of a key", () => {
  const ns = "n";
  const set = (entityId: string, entity: unknown) =>
    ({ namespace: ns, changeType: "set", entityType: "t", entityId, entity }) as const;

  it("an update's input, mutated after the save, does not reach the store", async () => {
    const store = new MemoryStore();
    await store.save([set("1", { v: 1, tags: ["a"], nested: { n: 1 } })]);
    const update = { v: 2, tags: ["b"], nested: { n: 2 } };
    await store.save([set("1", update)]);
    update.v = 99;
    update.tags.push("mutated");
    update.nested.n = 99;
    expect((await store.load(ns))[0]?.entity).toEqual({ v: 2, tags: ["b"], nested: { n: 2 } });
  });

  it("an entity loaded (or delivered by a feed) before an update does not change with it, nor change the store", async () => {
    const store = new MemoryStore();
    await store.save([set("1", { v: 1, nested: { n: 1 }, list: [1, 2] })]);
    const before = (await store.load(ns))[0]?.entity as { v: number; nested: { n: number }; list: number[] };
    const feed = store.watch(ns);
    const iterator = feed[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as { change: { entity: typeof before } };
    await store.save([set("1", { v: 2, nested: { n: 2 }, list: [3, 4] })]);
    expect(before).toEqual({ v: 1, nested: { n: 1 }, list: [1, 2] });
    expect(first.change.entity).toEqual({ v: 1, nested: { n: 1 }, list: [1, 2] });
    before.nested.n = 99;
    before.list.push(99);
    first.change.entity.nested.n = 98;
    const after = (await store.load(ns))[0]?.entity as typeof before;
    expect(after).toEqual({ v: 2, nested: { n: 2 }, list: [3, 4] });
    after.nested.n = 97;
    expect((await store.load(ns))[0]?.entity).toEqual({ v: 2, nested: { n: 2 }, list: [3, 4] });
    feed.close();
  });

  it("a save that fails on a later change leaves an earlier change's key as it was", async () => {
    const store = new MemoryStore();
    await store.save([set("1", { v: 1, nested: { n: 1 } })]);
    await expect(store.save([set("1", { v: 2, nested: { n: 2 } }), set("2", { bad: undefined })])).rejects.toThrow(
      /undefined is not JSON/,
    );
    expect((await store.load(ns)).map((c) => c.entity)).toEqual([{ v: 1, nested: { n: 1 } }]);
  });

  it("keeps the key order of the latest entity when an update has other keys, another order or other types", async () => {
    const store = new MemoryStore();
    const versions: unknown[] = [
      { a: 1, b: { c: [1, { d: 2 }] } },
      { b: { c: [1, { d: 3 }] }, a: 2 },
      { b: { c: [2] }, a: "x" },
      { b: null, a: [1, 2, 3] },
      { a: [4, 5] },
      [1, 2],
      [{ x: 1 }, 2],
      "text",
      { z: 1, y: { x: 1 } },
      { z: 2, y: { w: 1 } },
    ];
    for (const entity of versions) {
      await store.save([set("1", entity)]);
      const loaded = (await store.load(ns))[0]?.entity;
      expect(loaded).toEqual(entity);
      expect(JSON.stringify(loaded)).toBe(JSON.stringify(entity));
    }
  });

  it("keeps an own __proto__ key of an update as data", async () => {
    const store = new MemoryStore();
    const withProto = JSON.parse('{"__proto__": {"polluted": true}, "v": 1}') as unknown;
    await store.save([set("1", withProto)]);
    await store.save([set("1", JSON.parse('{"__proto__": {"polluted": false}, "v": 2}'))]);
    const loaded = (await store.load(ns))[0]?.entity as Record<string, unknown>;
    expect(Object.keys(loaded)).toEqual(["__proto__", "v"]);
    expect(Object.getPrototypeOf(loaded)).toBe(Object.prototype);
    expect(JSON.stringify(loaded)).toBe('{"__proto__":{"polluted":false},"v":2}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("keeps load order = write order when keys are updated, unset and set again", async () => {
    const store = new MemoryStore();
    await store.save([set("a", { v: 1 }), set("b", { v: 1 }), set("c", { v: 1 })]);
    await store.save([set("a", { v: 2 })]);
    await store.save([{ namespace: ns, changeType: "unset", entityType: "t", entityId: "b" }]);
    await store.save([set("c", { v: 2 }), set("c", { v: 3 }), set("b", { v: 2 })]);
    expect((await store.load(ns)).map((c) => [c.entityId, c.changeType, c.entity])).toEqual([
      ["a", "set", { v: 2 }],
      ["c", "set", { v: 3 }],
      ["b", "set", { v: 2 }],
    ]);
    const feed = store.watch(ns, { from: 4 });
    const seen: unknown[] = [];
    for await (const event of feed) {
      if (event.type === "caught-up") break;
      seen.push([event.change.entityId, event.position]);
    }
    expect(seen).toEqual([
      ["c", 7],
      ["b", 8],
    ]);
  });
});

describe("MemoryStore reads each change once", () => {
  it("stores the names it checked, even when an input's getters change their answer", async () => {
    const store = new MemoryStore();
    let reads = 0;
    const change = {
      get namespace() {
        reads++;
        return reads === 1 ? "a" : "not/valid";
      },
      changeType: "set" as const,
      entityType: "t",
      entityId: "1",
      entity: { v: 1 },
    };
    await store.save([change]);
    expect(reads).toBe(1);
    expect(await store.listNamespaces()).toEqual(["a"]);
    expect((await store.load("a")).map((c) => [c.namespace, c.entityId, c.entity])).toEqual([["a", "1", { v: 1 }]]);
  });
});
