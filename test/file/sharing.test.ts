import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";

describe("several stores of one process on one directory", () => {
  it("share the namespace locks: concurrent saves on many namespaces all land, each save whole", async () => {
    const dir = tempDir();
    const stores = await Promise.all(
      Array.from({ length: 3 }, () => FileStore.open({ directory: dir, autoCompact: { minLines: 20, ratio: 1.5 } })),
    );
    const namespaces = Array.from({ length: 8 }, (_, i) => `ns${i}`);
    const saves: Promise<void>[] = [];
    for (let round = 0; round < 15; round++) {
      for (const [s, store] of stores.entries()) {
        for (const ns of namespaces) {
          const changes: ChangeInput[] = Array.from({ length: 4 }, (_, i) => ({
            namespace: ns,
            changeType: "set",
            entityType: "item",
            entityId: `s${s}-r${round}-i${i}`,
            entity: { s, round, i },
          }));
          saves.push(store.save(changes));
          if (round % 3 === 0) saves.push(store.compact(ns));
        }
      }
    }
    await Promise.all(saves);
    for (const ns of namespaces) {
      const ids = (await stores[0]!.load(ns)).map((c) => c.entityId);
      expect(ids).toHaveLength(3 * 15 * 4);
      for (let k = 0; k < ids.length; k += 4) {
        const prefix = ids[k]!.replace(/-i0$/, "");
        expect(ids.slice(k, k + 4)).toEqual([0, 1, 2, 3].map((i) => `${prefix}-i${i}`));
      }
    }
    await Promise.all(stores.map((s) => s.close()));
  });
});
