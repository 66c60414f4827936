import { readFile } from "node:fs/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import type { Change, ChangeInput } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Lets pending callbacks run (and WeakRefs made in this job become collectable), then collects fully. */
async function settle(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  gc();
  gc();
}

/** The heap in use after a full collection, in bytes. */
async function heapAfterGc(): Promise<number> {
  await settle();
  return process.memoryUsage().heapUsed;
}

/**
 * Collects until `done()` holds or `ms` have passed (memory is released
 * asynchronously: closing a read, a pending callback); returns `done()`'s last answer.
 */
async function collectUntil(done: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    await settle();
    if (done() || Date.now() >= deadline) return done();
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("FileStore memory", () => {
  it("regression: loaded entity ids and types do not keep the file's text alive", async () => {
    const store = await FileStore.open({ directory: tempDir(), autoCompact: false });
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

    // Baseline, measured in this run: what keeping the file's text costs this heap.
    // It also proves the measurement sees a string of that size (so a pass is not vacuous).
    const textBefore = await heapAfterGc();
    let text: string | undefined = await readFile(store.fileOf("ws"), "utf8");
    const textCost = (await heapAfterGc()) - textBefore;
    expect(text.length).toBeGreaterThan(4000 * 5000);
    expect(textCost, "the heap measurement sees the file's text").toBeGreaterThan(text.length / 2);
    text = undefined;

    const before = await heapAfterGc();
    let loaded: Change[] | undefined = await store.load("ws");
    // Weak references to what load returned: once the test drops it, the store must not hold on to it.
    const changes = loaded.map((c) => new WeakRef(c));
    const entities = loaded.map((c) => new WeakRef((c as { entity: object }).entity));
    const kept = loaded.map((c) => [c.entityType, c.entityId, c.timestamp] as const);
    loaded = undefined;
    expect(kept).toHaveLength(4000);
    expect(new Set(kept.map(([, id]) => id)).size).toBe(4000);

    const released = () =>
      changes.every((w) => w.deref() === undefined) && entities.every((w) => w.deref() === undefined);
    expect(await collectUntil(released), "loaded changes and entities are released once dropped").toBe(true);

    // Strings cannot be weakly referenced: measure what the kept ids, types and dates hold.
    // They take well under 1 MB; the file's text (20 MB) is textCost. A quarter of it is a
    // generous margin, and memory is released asynchronously: measure until it is below, or a deadline.
    let retained = Number.POSITIVE_INFINITY;
    const small = await collectUntil(() => {
      retained = process.memoryUsage().heapUsed - before;
      return retained < textCost / 4;
    });
    expect(small, `retained ${retained} bytes, the file's text costs ${textCost}`).toBe(true);
    expect(kept.every(([type, id, at]) => type.length > 0 && id.length > 0 && at instanceof Date)).toBe(true);
    await store.close();
  });
});
