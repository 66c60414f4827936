import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileStore } from "../../src/file/index.js";
import {
  ChangeFeed,
  ErrorCode,
  type FeedCursor,
  isFeedBehindError,
  isUnsupportedError,
  ManagerBuilder,
  type Store,
} from "../../src/index.js";
import { MapEntityRepository, MemoryStore } from "../../src/memory/index.js";
import { barrierOf, recordSourceReads, silentSource } from "../helpers/feed.js";

const item = (entityId: string, entity: unknown) => ({
  namespace: "ws",
  changeType: "set" as const,
  entityType: "item",
  entityId,
  entity,
});

describe("Follower", () => {
  it("applies the current state, then every later change; reports lag and waits for positions", async () => {
    const store = new MemoryStore();
    await store.save([
      item("a", 1),
      item("b", 2),
      { namespace: "ws", changeType: "unset", entityType: "item", entityId: "b" },
    ]);
    const items = new MapEntityRepository<number>();
    const manager = new ManagerBuilder().withStore(store).registerRepository<number>("item", items).build();
    const follower = await manager.follow("ws");
    expect([...items.entities]).toEqual([["a", 1]]);
    expect(follower.position).toEqual({ position: 3, epoch: "" });
    expect(follower.lag).toBe(0);
    const reached = follower.waitFor(5);
    let done = false;
    reached.then(() => {
      done = true;
    });
    await store.save([item("c", 3)]);
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    await store.save([item("a", 10)]);
    await reached;
    expect([...items.entities].sort()).toEqual([
      ["a", 10],
      ["c", 3],
    ]);
    // The initial state (a, and b's tombstone), then c and a.
    expect(follower.applied).toBe(4);
    await follower.waitFor({ position: 4, epoch: "" });
    await expect(follower.waitFor(-1)).rejects.toMatchObject({ code: ErrorCode.Validation });
    const controller = new AbortController();
    const aborted = follower.waitFor(100, { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: ErrorCode.Aborted });
    await follower.close();
    expect(follower.running).toBe(false);
    await expect(follower.waitFor(100)).rejects.toMatchObject({ code: ErrorCode.Closed });
    await follower.done;
  });

  it("stops with FeedBehindError when the store dropped what it had not applied", async () => {
    const store = new MemoryStore();
    const manager = new ManagerBuilder().withStore(store).registerRepository("item", new MapEntityRepository()).build();
    const follower = await manager.follow("ws");
    const pending = follower.waitFor(50);
    store.clear("ws");
    await expect(follower.done).rejects.toSatisfy(isFeedBehindError);
    await expect(pending).rejects.toSatisfy(isFeedBehindError);
  });

  it("started from a position, of several changes of one key it keeps the later save, whatever the timestamps", async () => {
    // A file store's feed from a position delivers every line after it (the memory store's only the latest per key).
    const directory = await mkdtemp(path.join(tmpdir(), "statelog-follower-"));
    try {
      await using store = await FileStore.open({ directory });
      await store.save([item("x", 0)]);
      let from: FeedCursor | undefined;
      for await (const event of store.watch("ws")) {
        if (event.type === "caught-up") {
          from = { position: event.position, epoch: event.epoch };
          break;
        }
      }
      await store.save([{ ...item("a", "newer timestamp, older save"), timestamp: new Date(2_000_000) }]);
      await store.save([{ ...item("a", "older timestamp, later save"), timestamp: new Date(1_000_000) }]);
      const items = new MapEntityRepository<string>();
      const manager = new ManagerBuilder().withStore(store).registerRepository<string>("item", items).build();
      const follower = await manager.follow("ws", { from });
      expect(items.entities.get("a")).toBe("older timestamp, later save");
      expect((await store.load("ws")).find((c) => c.entityId === "a")?.entity).toBe("older timestamp, later save");
      expect(follower.applied).toBe(1);
      await follower.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("started from a position, applies the changes after it as the feed reads them, batchSize at a time", async () => {
    const store = new MemoryStore();
    await store.save([item("a", 0)]);
    const from = await barrierOf(store, "ws");
    for (let i = 0; i < 20; i++) await store.save([item(`k${i}`, i)]);
    const end = await barrierOf(store, "ws");
    const reads = recordSourceReads(store);
    // Each entity set: how many pieces the feed had read by then.
    const readsAtSet = new Map<string, number>();
    const items = new MapEntityRepository<number>();
    const set = items.set.bind(items);
    items.set = (entity, change) => {
      readsAtSet.set(change.entityId, reads.length);
      return set(entity, change);
    };
    const manager = new ManagerBuilder().withStore(store).registerRepository<number>("item", items).build();
    const follower = await manager.follow("ws", { from, batchSize: 3 });
    // Seven pieces (3 × 6 + 2); the first three changes were applied after the first piece, not after the seventh.
    expect(reads.slice(0, 7).map((r) => r.items)).toEqual([3, 3, 3, 3, 3, 3, 2]);
    expect([readsAtSet.get("k0"), readsAtSet.get("k2"), readsAtSet.get("k3"), readsAtSet.get("k19")]).toEqual([
      1, 1, 2, 7,
    ]);
    expect([...items.entities.keys()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
    expect(follower.applied).toBe(20);
    expect(follower.position).toEqual(end);
    await follower.close();
  });

  it("aborted by its signal before its initial state is applied: an AbortError", async () => {
    const store = new MemoryStore();
    // A feed whose first read never comes back (a backend that does not answer) until the feed ends.
    const slow: Store = {
      capabilities: { ...store.capabilities, watch: true },
      save: (changes) => store.save(changes),
      load: (namespace) => store.load(namespace),
      close: () => store.close(),
      [Symbol.asyncDispose]: () => store.close(),
      watch: (namespace, options) => new ChangeFeed(namespace, silentSource(), options),
    };
    const manager = new ManagerBuilder().withStore(slow).registerRepository("item", new MapEntityRepository()).build();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const error = await manager.follow("ws", { signal: controller.signal }).catch((e: unknown) => e);
    expect((error as { code?: string }).code, String(error)).toBe(ErrorCode.Aborted);
  });

  it("refuses a store that cannot watch with an UnsupportedError", async () => {
    const inner = new MemoryStore();
    const plain: Store = {
      capabilities: { compact: false, listNamespaces: false, durable: false },
      save: (c) => inner.save(c),
      load: (ns) => inner.load(ns),
      close: () => inner.close(),
      [Symbol.asyncDispose]: () => inner.close(),
    };
    const manager = new ManagerBuilder().withStore(plain).build();
    await expect(manager.follow("ws")).rejects.toSatisfy(isUnsupportedError);
  });
});
