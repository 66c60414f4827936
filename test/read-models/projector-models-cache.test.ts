/**
 * The projector keeps the models it wrote in memory across batches
 * (`maxCachedModels`): an event for a model it holds needs no load, and
 * the folds stay exact whatever the bound (evictions, deletes, restarts).
 */
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import { type Projection, Projector } from "../../src/read-models/index.js";
import { MapReadModelStore } from "./test-stores.js";

type Change = { id: string; amount: number };
interface Balance {
  total: number;
  events: number;
}

const balances: Projection<Balance, Change> = {
  name: "balances",
  modelType: "Balance",
  handles: ["changed", "closed"],
  id: (e) => e.data.id,
  evolve: (m, e) =>
    e.type === "closed" ? null : { total: (m?.total ?? 0) + e.data.amount, events: (m?.events ?? 0) + 1 },
};

/** 300 events over 12 ids (every 50th closes its account), and their fold by plain code. */
async function history(events: MemoryEventStore, from = 0): Promise<void> {
  for (let i = from; i < from + 300; i++) {
    const id = `a${(i * 7) % 12}`;
    await events.append(`s${i % 3}`, [
      i % 50 === 49 ? createEvent("closed", { id, amount: 0 }) : createEvent("changed", { id, amount: i }),
    ]);
  }
}

function fold(count: number): Map<string, Balance> {
  const out = new Map<string, Balance>();
  for (let i = 0; i < count; i++) {
    const id = `a${(i * 7) % 12}`;
    if (i % 50 === 49) out.delete(id);
    else {
      const m = out.get(id);
      out.set(id, { total: (m?.total ?? 0) + i, events: (m?.events ?? 0) + 1 });
    }
  }
  return out;
}

describe("Projector maxCachedModels", () => {
  for (const maxCachedModels of [0, 3, 100_000, Number.POSITIVE_INFINITY]) {
    for (const [name, make] of [
      ["MemoryReadModelStore", () => new MemoryReadModelStore()],
      ["a store without atomic checkpoint", () => new MapReadModelStore(false)],
    ] as const) {
      it(`folds exactly with maxCachedModels ${maxCachedModels} on ${name}, across a restart`, async () => {
        const events = new MemoryEventStore();
        const readModels = make();
        await history(events);
        const first = await Projector.open({
          eventStore: events,
          readModels,
          projections: [balances],
          batchSize: 4,
          maxCachedModels,
        });
        await first.waitForCatchUp({ timeoutMs: 5000 });
        await history(events, 300);
        await first.waitForCatchUp({ timeoutMs: 5000 });
        await first.close();
        await history(events, 600);
        await using second = await Projector.open({
          eventStore: events,
          readModels,
          projections: [balances],
          batchSize: 4,
          maxCachedModels,
        });
        await second.waitForCatchUp({ timeoutMs: 5000 });
        const expected = fold(900);
        expect((await second.models.list("Balance")).sort()).toEqual([...expected.keys()].sort());
        for (const [id, m] of expected) expect((await second.models.load<Balance>("Balance", id))?.model).toEqual(m);
      });
    }
  }

  it("loads a model it holds only once", async () => {
    const events = new MemoryEventStore();
    const readModels = new MapReadModelStore(true);
    for (let i = 0; i < 40; i++) await events.append("s", [createEvent("changed", { id: `a${i % 2}`, amount: 1 })]);
    await using projector = await Projector.open({
      eventStore: events,
      readModels,
      projections: [balances],
      batchSize: 2,
    });
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    // The projection's generation pointer, then each model once (not once per batch of 2 events).
    expect(readModels.calls.loads).toBe(3);
    expect((await readModels.load<Balance>("Balance", "a0"))?.model).toEqual({ total: 20, events: 20 });
  });
});

describe("Projector over a store that keeps models in memory", () => {
  it("hands evolve a copy of a written model, never the object the store keeps", async () => {
    const events = new MemoryEventStore();
    const readModels = new MemoryReadModelStore();
    const returned: object[] = [];
    const given: (object | undefined)[] = [];
    const counting: Projection<{ n: number; tags: string[] }, { id: string }> = {
      name: "counting",
      modelType: "Counting",
      handles: ["changed"],
      id: (e) => e.data.id,
      evolve: (m, _e) => {
        given.push(m);
        const next = { n: (m?.n ?? 0) + 1, tags: [...(m?.tags ?? []), "t"] };
        returned.push(next);
        return next;
      },
    };
    await using projector = await Projector.open({ eventStore: events, readModels, projections: [counting] });
    await events.append("s", [createEvent("changed", { id: "a" })]);
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    await events.append("s", [createEvent("changed", { id: "a" })]);
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    // The second call got an equal model, but not the object the first returned (the store kept that one).
    expect(given[1]).toEqual(returned[0]);
    expect(given[1]).not.toBe(returned[0]);
    // What a reader loads is a copy too: changing it changes neither the store nor the next fold.
    const loaded = await projector.models.load<{ n: number; tags: string[] }>("Counting", "a");
    expect(loaded?.model).toEqual({ n: 2, tags: ["t", "t"] });
    loaded?.model.tags.push("changed by a reader");
    await events.append("s", [createEvent("changed", { id: "a" })]);
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    expect((await projector.models.load("Counting", "a"))?.model).toEqual({ n: 3, tags: ["t", "t", "t"] });
  });
});

describe("MemoryReadModelStore metadata copies", () => {
  it("keeps the free-form metadata each save was given, whatever the caller does to its objects after", async () => {
    const store = new MemoryReadModelStore();
    const meta = (id: string, free: Record<string, string>) => ({
      id,
      modelType: "Balance",
      schemaVersion: 1,
      lastUpdated: new Date(1000),
      lastEventPosition: 1,
      metadata: free,
    });
    const shared = Object.freeze({ projection: "p" });
    const mutable: Record<string, string> = { projection: "p" };
    await store.save({ n: 1 }, meta("a", shared));
    await store.save({ n: 2 }, meta("b", mutable));
    mutable.projection = "changed";
    await store.save({ n: 3 }, meta("c", mutable));
    await store.save({ n: 4 }, meta("d", shared));
    const date = new Date(1000);
    await store.save({ n: 5 }, { ...meta("e", {}), lastUpdated: date });
    date.setTime(2000);
    const free = async (id: string) => (await store.load("Balance", id))?.metadata.metadata;
    expect(await free("a")).toEqual({ projection: "p" });
    expect(await free("b")).toEqual({ projection: "p" });
    expect(await free("c")).toEqual({ projection: "changed" });
    expect(await free("d")).toEqual({ projection: "p" });
    expect((await store.load("Balance", "e"))?.metadata.lastUpdated.getTime()).toBe(1000);
    // What a load returns is the caller's to change.
    const loaded = await store.load("Balance", "a");
    (loaded?.metadata.metadata as Record<string, string>).projection = "mine";
    loaded?.metadata.lastUpdated.setTime(5);
    expect(await free("a")).toEqual({ projection: "p" });
    expect((await store.load("Balance", "d"))?.metadata.lastUpdated.getTime()).toBe(1000);
    await expect(store.save({}, meta("f", { projection: 1 } as never))).rejects.toMatchObject({
      code: "STATELOG_VALIDATION",
    });
  });
});
