/**
 * Projector faults found by a bug hunt: a close while a rebuild runs, and a
 * delete that fails on a store without atomic checkpoints.
 */
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import { type Projection, Projector } from "../../src/read-models/index.js";
import { MapReadModelStore } from "./test-stores.js";

describe("Projector faults", () => {
  it("close() while a rebuild runs ends the rebuild (ClosedError) and resolves", async () => {
    const counts: Projection<{ n: number }, { id: string }> = {
      name: "counts",
      modelType: "Count",
      handles: ["hit"],
      id: (e) => e.data.id,
      // Slow enough that the rebuild is still catching up when close() comes.
      evolve: async (m) => {
        await new Promise((r) => setTimeout(r, 1));
        return { n: (m?.n ?? 0) + 1 };
      },
    };
    const events = new MemoryEventStore();
    for (let i = 0; i < 300; i++) await events.append(`s${i % 5}`, [createEvent("hit", { id: `m${i % 5}` })]);
    const projector = await Projector.open({
      eventStore: events,
      readModels: new MemoryReadModelStore(),
      projections: [counts],
    });
    await projector.waitForCatchUp();
    const rebuild = projector.rebuild("counts").then(
      () => "rebuilt",
      (error: unknown) => (error as Error).name,
    );
    await new Promise((r) => setTimeout(r, 20));
    const closed = await Promise.race([
      projector.close().then(() => "closed"),
      new Promise((r) => setTimeout(() => r("hung"), 5_000)),
    ]);
    expect(closed).toBe("closed");
    expect(await rebuild).toBe("ClosedError");
  });

  it("a delete that fails on a store without atomic checkpoints is retried: the model does not come back", async () => {
    const carts: Projection<{ items: number }, { id: string }> = {
      name: "carts",
      modelType: "Cart",
      handles: ["added", "closed"],
      id: (e) => e.data.id,
      evolve: (m, e) => (e.type === "closed" ? null : { items: (m?.items ?? 0) + 1 }),
    };
    const events = new MemoryEventStore();
    const readModels = new MapReadModelStore(false);
    const projector = await Projector.open({ eventStore: events, readModels, projections: [carts] });
    await events.append("c1", [createEvent("added", { id: "c1" }), createEvent("added", { id: "c1" })]);
    await projector.waitForCatchUp();
    const original = readModels.delete.bind(readModels);
    let failures = 1;
    readModels.delete = async (...args: Parameters<typeof original>) => {
      if (failures-- > 0) throw new Error("timeout");
      return original(...args);
    };
    await events.append("c1", [createEvent("closed", { id: "c1" })]);
    await projector.waitForCatchUp();
    expect(failures).toBe(-1); // the failing delete was tried again
    expect(await readModels.load("Cart", "c1")).toBeUndefined();
    await events.append("c1", [createEvent("added", { id: "c1" })]);
    await projector.waitForCatchUp();
    expect((await readModels.load<{ items: number }>("Cart", "c1"))?.model).toEqual({ items: 1 });
    await projector.close();
  });
});
