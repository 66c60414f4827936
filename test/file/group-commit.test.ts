/**
 * Group commit of a FileStore namespace: concurrent writers, each waiting
 * for its save before making the next one, share one write and one fsync
 * per round, however long the chain of awaits between a writer's saves.
 */
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";

const set = (id: string, entity: unknown): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId: id,
  entity,
});

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
});
