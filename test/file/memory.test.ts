import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

describe("FileStore memory", () => {
  it("regression: loaded entity ids and types do not keep the file's text alive", async () => {
    const store = await FileStore.open(tempDir(), { unknownEntityTypes: "passthrough", autoCompact: false });
    const payload = "p".repeat(5000);
    for (let b = 0; b < 4; b++) {
      const batch: ChangeInput[] = Array.from({ length: 1000 }, (_, i) => ({
        namespace: "ws",
        changeType: "set",
        entityType: "a-rather-long-entity-type-name",
        entityId: `an-entity-id-long-enough-to-be-sliced-${b}-${i}`,
        entity: { payload },
      }));
      await store.save(batch);
    }
    const fileBytes = 4000 * 5100;
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = (await store.load("ws")).map((c) => [c.entityType, c.entityId, c.timestamp]);
    await new Promise((r) => setTimeout(r, 20));
    gc();
    gc();
    const retained = process.memoryUsage().heapUsed - before;
    expect(kept).toHaveLength(4000);
    // The ids, types and dates themselves take well under 1 MB; the file's text would be ~20 MB.
    expect(retained).toBeLessThan(fileBytes / 4);
    await store.close();
  });
});
