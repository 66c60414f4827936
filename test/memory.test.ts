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
