/**
 * A long catch-up, rebuild or clean-up of a retired generation gives the
 * event loop turns: into a store that never waits for I/O, it would
 * otherwise hold timers and reads until it is done. Each event (or
 * delete) below takes a fixed time, so the work lasts several times the
 * runner's interval between turns on any machine.
 */
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import { type Projection, Projector, type ReadModelStore } from "../../src/read-models/index.js";
import { MapReadModelStore } from "./test-stores.js";

/** Works for `ms` without giving the event loop a turn. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Counts the turns the event loop gets (one `setImmediate` after another) until `stop()`. */
function turnCounter(): { readonly turns: number; stop(): void } {
  let turns = 0;
  let running = true;
  const tick = () => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    stop() {
      running = false;
    },
  };
}

const EVENTS = 600;

/** A counter projection whose evolve takes 0.05 ms; `onEvent` sees each event's position. */
function slowCounter(onEvent: (position: number) => void): Projection<{ n: number }, { k: string }> {
  return {
    name: "counter",
    modelType: "Counter",
    handles: ["hit"],
    id: (e) => e.data.k,
    evolve: (m, e) => {
      busy(0.05);
      onEvent(e.globalPosition);
      return { n: (m?.n ?? 0) + 1 };
    },
  };
}

async function history(): Promise<MemoryEventStore> {
  const events = new MemoryEventStore();
  for (let i = 0; i < EVENTS; i += 100)
    await events.append(
      `s${i}`,
      Array.from({ length: 100 }, (_, j) => createEvent("hit", { k: `k${(i + j) % 50}` })),
    );
  return events;
}

const STORES: Record<string, () => Promise<ReadModelStore>> = {
  MemoryReadModelStore: () => MemoryReadModelStore.open(),
  "a store without atomic checkpoint": async () => new MapReadModelStore(false),
};

for (const [name, makeStore] of Object.entries(STORES)) {
  describe(`Projector into ${name}: turns of the event loop`, () => {
    it("a catch-up lets a macrotask run before it handled the last event", async () => {
      const events = await history();
      const counter = turnCounter();
      let turnsAtLast = -1;
      await using readModels = await makeStore();
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [
          slowCounter((p) => {
            if (p === EVENTS) turnsAtLast = counter.turns;
          }),
        ],
      });
      await projector.waitForCatchUp({ timeoutMs: 10_000 });
      counter.stop();
      expect(turnsAtLast).toBeGreaterThan(0);
      expect((await projector.models.load<{ n: number }>("Counter", "k0"))?.model).toEqual({ n: EVENTS / 50 });
    });

    it("during a rebuild, reads of the serving generation are answered before the shadow handled the last event", async () => {
      const events = await history();
      let rebuilding = false;
      let readsAtLast = -1;
      let reads = 0;
      await using readModels = await makeStore();
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [
          slowCounter((p) => {
            if (rebuilding && p === EVENTS) readsAtLast = reads;
          }),
        ],
      });
      await projector.waitForCatchUp({ timeoutMs: 10_000 });
      let reading = true;
      const reader = (async () => {
        while (reading) {
          await new Promise((r) => setImmediate(r));
          if ((await projector.models.load<{ n: number }>("Counter", "k1"))?.model.n === EVENTS / 50) reads++;
        }
      })();
      rebuilding = true;
      await projector.rebuild("counter");
      reading = false;
      await reader;
      expect(readsAtLast).toBeGreaterThan(0);
    });
  });
}

describe("Projector: the clean-up of a retired generation", () => {
  it("lets a macrotask run between its deletes", async () => {
    const events = new MemoryEventStore();
    await events.append(
      "s",
      Array.from({ length: 300 }, (_, i) => createEvent("hit", { k: `k${i}` })),
    );
    const readModels = new MapReadModelStore(true);
    const remove = readModels.delete.bind(readModels);
    let counter: ReturnType<typeof turnCounter> | undefined;
    const turnsAtDeletes: number[] = [];
    readModels.delete = async (...args: Parameters<typeof remove>) => {
      busy(0.1);
      if (counter) turnsAtDeletes.push(counter.turns);
      return remove(...args);
    };
    const counterProjection: Projection<{ n: number }, { k: string }> = {
      name: "counter",
      modelType: "Counter",
      handles: ["hit"],
      id: (e) => e.data.k,
      evolve: (m) => ({ n: (m?.n ?? 0) + 1 }),
    };
    const projector = await Projector.open({ eventStore: events, readModels, projections: [counterProjection] });
    await projector.waitForCatchUp({ timeoutMs: 10_000 });
    counter = turnCounter();
    await projector.rebuild("counter");
    // The clean-up runs in the background (close() would stop it).
    for (let i = 0; i < 10_000 && turnsAtDeletes.length < 300; i++) await new Promise((r) => setImmediate(r));
    await projector.close();
    counter.stop();
    expect(turnsAtDeletes).toHaveLength(300);
    expect(turnsAtDeletes.at(-1)).toBeGreaterThan(turnsAtDeletes[0] as number);
    expect(await readModels.list("Counter")).toEqual([]);
  });
});
