import { describe, expect, it } from "vitest";
import {
  type Change,
  ChangesBuilder,
  type CopyProgress,
  copyNamespace,
  ErrorCode,
  migrate,
  type ReadonlyStore,
} from "../../src/index.js";
import { MemoryStore } from "../../src/memory/index.js";

async function filled(): Promise<MemoryStore> {
  const store = new MemoryStore();
  const a = new ChangesBuilder("alpha");
  for (let i = 0; i < 2500; i++) a.set("item", `i${i}`, { i }, { timestamp: new Date(1_700_000_000_000 + i) });
  a.unset("item", "i7");
  await store.save(a.build());
  await store.save(new ChangesBuilder("beta").set("item", "x", { x: 1 }).unset("item", "gone").build());
  return store;
}

describe("copyNamespace / migrate", () => {
  it("copies the current state, tombstones and timestamps included, in batches with progress", async () => {
    const from = await filled();
    const to = new MemoryStore();
    await to.save(new ChangesBuilder("alpha").set("item", "i7", { stale: true }, { timestamp: new Date(0) }).build());
    const saves: number[] = [];
    const target = Object.assign(Object.create(to), {
      save: (changes: Change[]) => {
        saves.push(changes.length);
        return to.save(changes);
      },
    });
    const progress: CopyProgress[] = [];
    const result = await copyNamespace(from, target, "alpha", { batchSize: 1000, onProgress: (p) => progress.push(p) });
    expect(result).toEqual({ namespaces: 1, changes: 2500 });
    expect(saves).toEqual([1000, 1000, 500]);
    expect(progress.map((p) => p.copied)).toEqual([1000, 2000, 2500]);
    expect(progress.every((p) => p.total === 2500 && p.namespace === "alpha")).toBe(true);
    const copied = await to.load("alpha");
    const original = await from.load("alpha");
    expect(copied.map((c) => [c.entityId, c.changeType, c.entity, c.timestamp.getTime()]).sort()).toEqual(
      original.map((c) => [c.entityId, c.changeType, c.entity, c.timestamp.getTime()]).sort(),
    );
    expect(copied.find((c) => c.entityId === "i7")?.changeType).toBe("unset");
  });

  it("refuses a batchSize that is not an integer >= 1, copying nothing", async () => {
    const source = await filled();
    for (const batchSize of [Number.NaN, 0, 1.5, -3]) {
      const target = new MemoryStore();
      await expect(copyNamespace(source, target, "beta", { batchSize })).rejects.toMatchObject({
        code: ErrorCode.Configuration,
      });
      await expect(migrate(source, target, { batchSize })).rejects.toMatchObject({ code: ErrorCode.Configuration });
      expect(await target.load("beta")).toEqual([]);
    }
  });

  it("migrates every namespace", async () => {
    const from = await filled();
    const to = new MemoryStore();
    const seen: string[] = [];
    const result = await migrate(from, to, {
      onProgress: (p) => seen.push(`${p.namespace} ${p.namespacesDone}/${p.namespacesTotal}`),
    });
    expect(result).toEqual({ namespaces: 2, changes: 2502 });
    expect((await to.listNamespaces()).sort()).toEqual(["alpha", "beta"]);
    expect(seen.at(-1)).toBe("beta 1/2");
  });

  it("refuses a source that cannot list namespaces", async () => {
    const from: ReadonlyStore = {
      capabilities: { compact: false, listNamespaces: false, durable: false },
      load: async () => [],
      close: async () => {},
      [Symbol.asyncDispose]: async () => {},
    };
    await expect(migrate(from, new MemoryStore())).rejects.toMatchObject({ code: ErrorCode.Unsupported });
  });

  it("stops when aborted", async () => {
    const from = await filled();
    const controller = new AbortController();
    const to = new MemoryStore();
    const promise = copyNamespace(from, to, "alpha", {
      batchSize: 100,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await expect(promise).rejects.toMatchObject({ code: ErrorCode.Aborted });
    expect(to.entityCount("alpha")).toBe(100);
  });
});
