/**
 * Group commit of a FileStore namespace: concurrent writers, each waiting
 * for its save before making the next one, share one write and one fsync
 * per round, however long the chain of awaits between a writer's saves.
 */
import { mkdirSync, rmdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { FileStore, isWriteFailedError } from "../../src/file/index.js";
import { NamespaceLog } from "../../src/file/log.js";
import { itemSet as set, tempDir } from "./helpers.js";

/** `depth` promise hops, as a caller's own layers of `async` functions would add. */
async function hops(depth: number): Promise<void> {
  for (let i = 0; i < depth; i++) await null;
}

/** `writers` async writers doing `rounds` sequential saves each, writer `w` awaiting `depthOf(w)` extra hops between saves. */
async function run(store: FileStore, writers: number, rounds: number, depthOf: (w: number) => number): Promise<void> {
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let r = 0; r < rounds; r++) {
        await store.save([set(`w${w}-r${r}`, { w, r })]);
        await hops(depthOf(w));
      }
    }),
  );
}

describe("FileStore group commit", () => {
  it.each([0, 3, 25])(
    "32 sequential writers with %i awaits between their saves: one group and one fsync per round",
    async (depth) => {
      const store = await FileStore.open({ directory: tempDir() });
      try {
        await run(store, 32, 10, () => depth);
        expect(store.stats()).toMatchObject({ saves: 320, groups: 10, fsyncs: 10 });
        const ids = (await store.load("ws")).map((c) => c.entityId);
        // Round after round: each group holds every writer's save of that round.
        for (let r = 0; r < 10; r++) {
          expect(new Set(ids.slice(32 * r, 32 * (r + 1)))).toEqual(
            new Set(Array.from({ length: 32 }, (_, w) => `w${w}-r${r}`)),
          );
        }
      } finally {
        await store.close();
      }
    },
  );

  it("writers with different await chains still share one group per round, each in its own order", async () => {
    const store = await FileStore.open({ directory: tempDir() });
    try {
      await run(store, 16, 8, (w) => (w * 7) % 13);
      expect(store.stats()).toMatchObject({ saves: 128, groups: 8, fsyncs: 8 });
      const ids = (await store.load("ws")).map((c) => c.entityId);
      expect(ids).toHaveLength(128);
      for (let w = 0; w < 16; w++) {
        expect(ids.filter((id) => id.startsWith(`w${w}-`))).toEqual(Array.from({ length: 8 }, (_, r) => `w${w}-r${r}`));
      }
    } finally {
      await store.close();
    }
  });

  it("call order is write order within a group", async () => {
    const store = await FileStore.open({ directory: tempDir() });
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.save([set(`k${i}`, i)])));
      expect(store.stats()).toMatchObject({ saves: 40, groups: 1, fsyncs: 1 });
      expect((await store.load("ws")).map((c) => c.entityId)).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}`));
    } finally {
      await store.close();
    }
  });

  it('with sync: "none" the rounds are grouped alike, without fsyncs', async () => {
    const store = await FileStore.open({ directory: tempDir(), sync: "none" });
    try {
      await run(store, 8, 5, () => 4);
      expect(store.stats()).toMatchObject({ saves: 40, groups: 5, fsyncs: 0 });
    } finally {
      await store.close();
    }
  });

  it("a failed group write rejects every save of the group with the group's error; the next group writes", async () => {
    await using store = await FileStore.open({ directory: tempDir() });
    // A directory where the data file goes: the group cannot open it.
    mkdirSync(store.fileOf("ws"));
    const saves = Array.from({ length: 12 }, (_, i) => store.save([set(`k${i}`, i)]));
    // A promise per save (not the group's, shared): a failed save that nobody awaits is still an unhandled rejection.
    expect(new Set(saves).size).toBe(12);
    const outcomes = await Promise.allSettled(saves);
    const reasons = outcomes.map((o) => (o.status === "rejected" ? o.reason : undefined));
    expect(reasons.every((r) => isWriteFailedError(r))).toBe(true);
    expect(new Set(reasons).size).toBe(1);
    expect(store.stats()).toMatchObject({ saves: 0, groups: 0, fsyncs: 0 });
    rmdirSync(store.fileOf("ws"));
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.save([set(`n${i}`, i)])));
    expect(store.stats()).toMatchObject({ saves: 5, groups: 1, fsyncs: 1 });
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual(["n0", "n1", "n2", "n3", "n4"]);
  });

  it("saves queued while a group is written form the next group, in call order", async () => {
    await using store = await FileStore.open({ directory: tempDir() });
    const first = Array.from({ length: 6 }, (_, i) => store.save([set(`a${i}`, i)]));
    // Made after the first group was taken (its write is under way), before it resolved.
    await new Promise((resolve) => setImmediate(resolve));
    const second = Array.from({ length: 6 }, (_, i) => store.save([set(`b${i}`, i)]));
    await Promise.all([...first, ...second]);
    expect(store.stats()).toMatchObject({ saves: 12, groups: 2, fsyncs: 2 });
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual([
      ...Array.from({ length: 6 }, (_, i) => `a${i}`),
      ...Array.from({ length: 6 }, (_, i) => `b${i}`),
    ]);
  });

  it("a group whose only save failed to encode settles quietly when the lock cannot be taken", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const directory = tempDir();
      const log = new NamespaceLog("ws", directory, path.join(directory, "ws.jsonl"), false, false);
      vi.spyOn(log, "withLock").mockRejectedValue(new Error("lock failed"));
      expect(() =>
        log.append(() => {
          throw new Error("encoder failed");
        }),
      ).toThrow("encoder failed");
      await log.idle();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
      // A save that did encode fails with the lock's error.
      await expect(log.append(() => 0)).rejects.toThrow("lock failed");
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
