/**
 * Projector faults found by a bug hunt: a close while a rebuild runs; on a
 * store without atomic checkpoints, a delete that fails, and a crash
 * between a delete's checkpoint and the delete.
 */
import { describe, expect, it } from "vitest";
import { createEvent, type RecordedEvent } from "../../src/events/index.js";
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

  /**
   * A counter deleted when it reaches 0, on a store without atomic
   * checkpoints whose process "dies" at its first delete: that delete and
   * every write after it fail, as if nothing after the crash reached the
   * store. Returns the store as the crash left it.
   */
  async function crashAtDelete(before: string[], batch: string[]) {
    const counter: Projection<{ n: number }, { id: string }> = {
      name: "counter",
      modelType: "Counter",
      handles: ["in", "out"],
      id: (e) => e.data.id,
      evolve: (m, e) => {
        const n = (m?.n ?? 0) + (e.type === "in" ? 1 : -1);
        return n === 0 ? null : { n };
      },
    };
    const events = new MemoryEventStore();
    const readModels = new MapReadModelStore(false);
    const retry = { maxAttempts: 1, backoffMs: 1, maxBackoffMs: 1 };
    const first = await Projector.open({ eventStore: events, readModels, projections: [counter], retry });
    await events.append(
      "k",
      before.map((type) => createEvent(type, { id: "k" })),
    );
    await first.waitForCatchUp();
    const crashed = { delete: readModels.delete, save: readModels.save, status: readModels.updateProjectionStatus };
    let dead = false;
    const die = async (): Promise<never> => {
      dead = true;
      throw new Error("the process died");
    };
    readModels.delete = die;
    readModels.save = async (...args: Parameters<typeof crashed.save>) =>
      dead ? die() : crashed.save.apply(readModels, args);
    readModels.updateProjectionStatus = async (...args: Parameters<typeof crashed.status>) =>
      dead ? die() : crashed.status.apply(readModels, args);
    await events.append(
      "k",
      batch.map((type) => createEvent(type, { id: "k" })),
    );
    await expect(first.waitForCatchUp()).rejects.toThrow();
    await first.close();
    expect(dead).toBe(true);
    readModels.delete = crashed.delete;
    readModels.save = crashed.save;
    readModels.updateProjectionStatus = crashed.status;
    const stored = await readModels.getProjectionStatus("counter");
    return { events, readModels, counter, retry, checkpoint: stored?.checkpoint };
  }

  it("a crash between a delete's checkpoint and the delete keeps the batch's changes before it", async () => {
    // 2, then in one append: out (1), out (0: deleted). Without the batch's first out, the replayed
    // delete event would make 2 into 1 and keep the model.
    const { events, readModels, counter, retry, checkpoint } = await crashAtDelete(["in", "in"], ["out", "out"]);
    expect(checkpoint).toBe(4); // written before the delete, which never came
    const again = await Projector.open({ eventStore: events, readModels, projections: [counter], retry });
    await again.waitForCatchUp();
    expect(await readModels.load("Counter", "k")).toBeUndefined();
    await events.append("k", [createEvent("in", { id: "k" })]);
    await again.waitForCatchUp();
    expect((await readModels.load<{ n: number }>("Counter", "k"))?.model).toEqual({ n: 1 });
    await again.close();
  });

  it("after such a crash, the caught-up barrier and the status wait for the replayed delete", async () => {
    const { events, readModels, counter, retry, checkpoint } = await crashAtDelete(["in"], ["out"]);
    expect(checkpoint).toBe(2);
    expect(await readModels.load("Counter", "k")).toBeDefined();
    // Every load is slow: the replayed delete event is not handled yet when the projector opens.
    const load = readModels.load.bind(readModels);
    readModels.load = async (...args: Parameters<typeof load>) => {
      await new Promise((r) => setTimeout(r, 50));
      return load(...args);
    };
    const again = await Projector.open({ eventStore: events, readModels, projections: [counter], retry });
    expect(again.status("counter")).toMatchObject({ status: "catching_up", checkpoint: 1 });
    await again.waitForCatchUp();
    expect(readModels.models.size).toBe(0); // the model is deleted once the barrier resolves
    expect(again.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 2 });
    await again.close();
  });

  it("a projection failed on the replayed delete shows the stored checkpoint, where resume() starts", async () => {
    const { events, readModels, counter, retry, checkpoint } = await crashAtDelete(["in"], ["out"]);
    expect(checkpoint).toBe(2);
    let broken = true;
    const fragile = {
      ...counter,
      evolve: (m: { n: number } | undefined, e: RecordedEvent<{ id: string }>) => {
        if (broken) throw new Error("evolve is broken");
        return counter.evolve(m, e);
      },
    };
    const again = await Projector.open({ eventStore: events, readModels, projections: [fragile], retry });
    await expect(again.waitForCatchUp()).rejects.toThrow();
    expect(again.status("counter")).toMatchObject({ status: "failed", checkpoint: 2, failedPosition: 2 });
    expect(await readModels.getProjectionStatus("counter")).toMatchObject({ status: "failed", checkpoint: 2 });
    broken = false;
    await again.resume("counter");
    await again.waitForCatchUp();
    expect(readModels.models.size).toBe(0);
    await again.close();
  });
});
