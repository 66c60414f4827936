import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { ChangeInput } from "../../src/core/change.js";
import { defineEntityType } from "../../src/core/change.js";
import { ErrorCode } from "../../src/core/errors.js";
import { ManagerBuilder } from "../../src/core/manager.js";
import { FILE_STORE_DEFAULTS, FileStore, type FileStoreOptions } from "../../src/file/index.js";
import { MapEntityRepository } from "../../src/memory/index.js";
import { expectCode } from "../../src/testing/assert.js";
import { tempDir } from "./helpers.js";

const set = (entityType: string, id: string, entity: unknown, namespace = "ws"): ChangeInput => ({
  namespace,
  changeType: "set",
  entityType,
  entityId: id,
  entity,
});
const unset = (id: string, timestamp?: Date): ChangeInput => ({
  namespace: "ws",
  changeType: "unset",
  entityType: "item",
  entityId: id,
  ...(timestamp ? { timestamp } : {}),
});

function lineCount(file: string): number {
  return readFileSync(file, "utf8").split("\n").length - 1;
}

const Item = defineEntityType("item", {
  schema: z.object({ id: z.string(), n: z.number().default(0) }),
});

describe("entity type registration", () => {
  it("an unregistered type round-trips by default, as plain JSON", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir });
    store.registerEntityType(Item);
    await store.save([set("mystery", "m", { any: ["json"] }), set("item", "a", { id: "a" })]);
    await store.close();
    const reopened = await FileStore.open({ directory: dir });
    expect((await reopened.load("ws")).map((c) => [c.entityType, c.entity])).toEqual([
      ["mystery", { any: ["json"] }],
      ["item", { id: "a" }],
    ]);
    await reopened.close();
  });

  it('with unknownEntityTypes: "reject", an unregistered type is an UnknownEntityTypeError on save, before anything is written', async () => {
    const store = await FileStore.open({ directory: tempDir(), unknownEntityTypes: "reject" });
    store.registerEntityType(Item);
    await expectCode(store.save([set("item", "a", { id: "a" }), set("other", "x", {})]), ErrorCode.UnknownEntityType);
    expect(existsSync(store.fileOf("ws"))).toBe(false);
    await store.save([set("item", "a", { id: "a", n: 1 })]);
    expect((await store.load("ws")).map((c) => c.entity)).toEqual([{ id: "a", n: 1 }]);
    await store.close();
  });

  it('with unknownEntityTypes: "reject", an unregistered type found on load is an UnknownEntityTypeError; by default it loads as JSON', async () => {
    const dir = tempDir();
    const writer = await FileStore.open({ directory: dir });
    await writer.save([set("mystery", "m", { any: ["json"] })]);
    await writer.close();
    const strict = await FileStore.open({ directory: dir, unknownEntityTypes: "reject" });
    strict.registerEntityType("item");
    await expectCode(strict.load("ws"), ErrorCode.UnknownEntityType);
    strict.registerEntityType("mystery");
    expect((await strict.load("ws")).map((c) => c.entity)).toEqual([{ any: ["json"] }]);
    await strict.close();
  });

  it("the schema validates on save (nothing written on failure); the entity is stored and loaded as given, and restored through the schema", async () => {
    const store = await FileStore.open({ directory: tempDir() });
    store.registerEntityType(Item);
    await expectCode(
      store.save([set("item", "ok", { id: "ok" }), set("item", "bad", { id: 5 })]),
      ErrorCode.Validation,
    );
    expect(existsSync(store.fileOf("ws"))).toBe(false);
    const input = { id: "a" };
    await store.save([set("item", "a", input)]);
    expect(input).toEqual({ id: "a" }); // not mutated by the schema's default
    // Stored and loaded as given; the Manager's restore applies the schema (its default).
    expect(JSON.parse(readFileSync(store.fileOf("ws"), "utf8")).entity).toEqual({ id: "a" });
    expect((await store.load("ws")).map((c) => c.entity)).toEqual([{ id: "a" }]);
    const items = new MapEntityRepository<{ id: string; n: number }>();
    await new ManagerBuilder().withStore(store).registerRepository(Item, items).build().restore("ws");
    expect(items.get("a")).toEqual({ id: "a", n: 0 });
    await store.close();
  });

  it("the store does not check what is loaded against the schema: the Manager's restore does, once per entity", async () => {
    const dir = tempDir();
    const writer = await FileStore.open({ directory: dir });
    await writer.save([set("item", "a", { id: 1 }), set("counted", "c1", { id: "c1" }), set("counted", "c2", {})]);
    await writer.close();
    let checks = 0;
    const Counted = defineEntityType("counted", {
      schema: z.object({ id: z.string().default("none") }).transform((v) => {
        checks++;
        return v;
      }),
    });
    const store = await FileStore.open({ directory: dir });
    store.registerEntityType(Item).registerEntityType(Counted);
    const loaded = await store.load("ws");
    expect(loaded.map((c) => c.entity)).toEqual([{ id: 1 }, { id: "c1" }, {}]);
    expect(checks).toBe(0);
    // Restoring with Item's schema: "a" ({ id: 1 }) fails it, and nothing is applied.
    const items = new MapEntityRepository();
    const failing = new ManagerBuilder()
      .withStore(store)
      .registerRepository(Item, items)
      .registerRepository(Counted, new MapEntityRepository())
      .build();
    await expectCode(failing.restore("ws"), ErrorCode.Validation);
    expect(items.size).toBe(0);
    checks = 0;
    const counted = new MapEntityRepository<{ id: string }>();
    await new ManagerBuilder()
      .withStore(store)
      .registerRepository(Counted, counted)
      .registerRepository("item", new MapEntityRepository())
      .build()
      .restore("ws");
    expect(checks).toBe(2);
    expect(counted.get("c2")).toEqual({ id: "none" });
    await store.close();
  });
});

describe("FileStore.open", () => {
  it("takes one options object with the directory; refuses a positional directory, a missing one and old spellings", async () => {
    const directory = tempDir();
    const store = await FileStore.open({ directory });
    expect(store.directory).toBe(realpathSync(directory));
    await store.close();
    const positional = await expectCode(
      FileStore.open(directory as unknown as FileStoreOptions),
      ErrorCode.Configuration,
    );
    expect((positional as Error).message).toContain("FileStore options must be an object");
    const missing = await expectCode(FileStore.open({} as FileStoreOptions), ErrorCode.Configuration);
    expect((missing as Error).message).toContain("FileStore option directory must be a non-empty string");
    const renamed = await expectCode(
      FileStore.open({ dir: directory } as unknown as FileStoreOptions),
      ErrorCode.Configuration,
    );
    expect((renamed as Error).message).toContain("no option dir; it is called directory");
    const fsync = await expectCode(
      FileStore.open({ directory, fsync: true } as unknown as FileStoreOptions),
      ErrorCode.Configuration,
    );
    expect((fsync as Error).message).toContain("it is called sync");
    const typo = await expectCode(
      FileStore.open({ directory, autoCompact: { minLine: 5 } } as unknown as FileStoreOptions),
      ErrorCode.Configuration,
    );
    expect((typo as Error).message).toContain("no option minLine");
  });

  it("creates a missing directory with its parents, and nothing when an option is invalid", async () => {
    const base = tempDir();
    const nested = path.join(base, "a", "b");
    await expectCode(FileStore.open({ directory: nested, sync: "never" as never }), ErrorCode.Configuration);
    expect(existsSync(nested)).toBe(false);
    const store = await FileStore.open({ directory: nested });
    expect(existsSync(nested)).toBe(true);
    await store.close();
  });

  it("FILE_STORE_DEFAULTS are the defaults", () => {
    expect(FILE_STORE_DEFAULTS).toMatchObject({
      sync: "fsync",
      onCorruption: "throw",
      unknownEntityTypes: "accept",
      autoCompact: { minLines: 10_000, ratio: 4 },
      tombstoneRetentionMs: Number.POSITIVE_INFINITY,
      integrity: true,
      maxOpenNamespaces: 256,
      compactionWorkerMinBytes: 16 * 1024 * 1024,
      maxValueBytes: 1024 * 1024,
    });
  });
});

describe("options", () => {
  it.each([
    { sync: "sometimes" },
    { unknownEntityTypes: "maybe" },
    { onCorruption: "ignore" },
    { autoCompact: { ratio: 0.5 } },
    { autoCompact: { minLines: -1 } },
    { tombstoneRetentionMs: -5 },
    { maxValueBytes: 0 },
    { autoCompact: "sometimes" },
    { integrity: "yes" },
    { maxOpenNamespaces: 0 },
    { compactionWorkerMinBytes: -1 },
    { onSkippedLines: "log" },
  ])("rejects the invalid option %j with a ConfigurationError", async (bad) => {
    await expectCode(FileStore.open({ directory: tempDir(), ...(bad as object) }), ErrorCode.Configuration);
  });

  it("group commit: concurrent saves share one write and one fsync; sequential saves get one each", async () => {
    const store = await FileStore.open({ directory: tempDir() });
    await Promise.all(Array.from({ length: 32 }, (_, i) => store.save([set("item", `c${i}`, { i })])));
    expect(store.stats()).toMatchObject({ saves: 32, groups: 1, fsyncs: 1 });
    for (let i = 0; i < 3; i++) await store.save([set("item", `s${i}`, { i })]);
    expect(store.stats()).toMatchObject({ saves: 35, groups: 4, fsyncs: 4 });
    // Saves arriving while a group is being written join the next group.
    const first = store.save([set("item", "x0", 0)]);
    await new Promise((r) => setImmediate(r));
    await Promise.all([first, ...Array.from({ length: 10 }, (_, i) => store.save([set("item", `y${i}`, i)]))]);
    expect(store.stats().groups).toBeLessThanOrEqual(6);
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual([
      ...Array.from({ length: 32 }, (_, i) => `c${i}`),
      "s0",
      "s1",
      "s2",
      "x0",
      ...Array.from({ length: 10 }, (_, i) => `y${i}`),
    ]);
    await store.close();
  });

  it('sync: "none" saves, group-commits and reloads', async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, sync: "none" });
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.save([set("item", `e${i}`, { i })])));
    expect(store.stats()).toMatchObject({ saves: 50, groups: 1, fsyncs: 0 });
    await store.close();
    const reopened = await FileStore.open({ directory: dir });
    expect((await reopened.load("ws")).map((c) => c.entityId)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    await reopened.close();
  });

  it("automatic compaction starts when the file holds more than max(minLines, ratio × keys) lines", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, autoCompact: { minLines: 50, ratio: 2 } });
    const file = store.fileOf("ws");
    // 10 keys; below 50 lines nothing happens.
    for (let round = 0; round < 4; round++) {
      await store.save(Array.from({ length: 10 }, (_, i) => set("item", `k${i}`, { round })));
    }
    await store.close(); // waits for background work
    expect(lineCount(file)).toBe(40);
    const store2 = await FileStore.open({ directory: dir, autoCompact: { minLines: 50, ratio: 2 } });
    for (let round = 4; round < 8; round++) {
      await store2.save(Array.from({ length: 10 }, (_, i) => set("item", `k${i}`, { round })));
    }
    await store2.close();
    // 80 lines > max(50, 2 × 10): compacted (to the 10 live keys, plus lines saved while it ran).
    expect(store2.stats().compactions).toBeGreaterThan(0);
    expect(lineCount(file)).toBeLessThan(50);
    const check = await FileStore.open({ directory: dir, autoCompact: false });
    const loaded = await check.load("ws");
    expect(loaded.map((c) => c.entity)).toEqual(Array.from({ length: 10 }, () => ({ round: 7 })));
    await check.close();
  });

  it("automatic compaction also follows a load that finds a file full of history", async () => {
    const dir = tempDir();
    const writer = await FileStore.open({ directory: dir, autoCompact: false });
    for (let round = 0; round < 30; round++) await writer.save([set("item", "only", { round })]);
    await writer.close();
    const file = writer.fileOf("ws");
    expect(lineCount(file)).toBe(30);
    const reader = await FileStore.open({ directory: dir, autoCompact: { minLines: 10, ratio: 4 } });
    expect((await reader.load("ws")).map((c) => c.entity)).toEqual([{ round: 29 }]);
    await reader.close();
    expect(lineCount(file)).toBe(1);
  });

  it("autoCompact: false never compacts", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, autoCompact: false });
    for (let round = 0; round < 30; round++) await store.save([set("item", "only", { round })]);
    await store.load("ws");
    await store.close();
    expect(lineCount(store.fileOf("ws"))).toBe(30);
  });

  it("tombstoneRetentionMs: compaction drops older tombstones and keeps newer ones and every set", async () => {
    const now = new Date("2025-06-01T00:00:00Z");
    const day = 24 * 3600 * 1000;
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, clock: () => now, tombstoneRetentionMs: 7 * day });
    await store.save([
      set("item", "old-deleted", 1),
      set("item", "kept", 1),
      set("item", "recent-deleted", 1),
      { ...set("item", "old-set", 1), timestamp: new Date(now.getTime() - 30 * day) },
    ]);
    await store.save([
      unset("old-deleted", new Date(now.getTime() - 8 * day)),
      unset("recent-deleted", new Date(now.getTime() - day)),
    ]);
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual([
      "kept",
      "old-set",
      "old-deleted",
      "recent-deleted",
    ]);
    await store.compact("ws");
    expect((await store.load("ws")).map((c) => [c.entityId, c.changeType])).toEqual([
      ["kept", "set"],
      ["old-set", "set"],
      ["recent-deleted", "unset"],
    ]);
    expect(lineCount(store.fileOf("ws"))).toBe(3);
    await store.close();
  });

  it("without tombstoneRetentionMs, tombstones stay forever", async () => {
    const store = await FileStore.open({ directory: tempDir() });
    await store.save([set("item", "a", 1), unset("a", new Date("2000-01-01T00:00:00Z"))]);
    await store.compact("ws");
    expect((await store.load("ws")).map((c) => [c.entityId, c.changeType])).toEqual([["a", "unset"]]);
    await store.close();
  });

  it("listNamespaces leaves out foreign files, lock files, temp files and empty files", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir });
    await store.save([set("item", "a", 1, "one"), set("item", "a", 1, "Two")]);
    writeFileSync(`${dir}/README.txt`, "hello");
    writeFileSync(`${dir}/NotOurs.jsonl`, "{}\n");
    writeFileSync(`${dir}/one.123.tmp`, "x");
    writeFileSync(`${dir}/empty.jsonl`, "");
    expect(await store.listNamespaces()).toEqual(["Two", "one"]);
    await store.close();
  });

  it("saves to several namespaces in one call land in each namespace's file", async () => {
    const store = await FileStore.open({ directory: tempDir() });
    await store.save([set("item", "a", 1, "n1"), set("item", "b", 2, "n2"), set("item", "c", 3, "n1")]);
    expect((await store.load("n1")).map((c) => c.entityId)).toEqual(["a", "c"]);
    expect((await store.load("n2")).map((c) => c.entityId)).toEqual(["b"]);
    expect(lineCount(store.fileOf("n1"))).toBe(2);
    await store.close();
  });
});
