/**
 * The switch of a rebuild: the write of the pointer that makes the rebuilt
 * generation the active one, after the old one was stopped. The caught-up
 * barrier follows the switch.
 */
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import { Projector, type ReadModelStore } from "../../src/read-models/index.js";
import { counter, MapReadModelStore } from "./test-stores.js";

const STORES: Record<string, () => ReadModelStore> = {
  MemoryReadModelStore: () => new MemoryReadModelStore(),
  "a store without atomic checkpoint": () => new MapReadModelStore(false),
};

const POINTER = "statelog.projection";

/** Whether `model` is a pointer write that switches to a generation > 0. */
const isSwitch = (model: unknown, modelType: string): boolean =>
  modelType === POINTER && ((model as { active?: number }).active ?? 0) > 0;

/** Makes `store.save` of a switch run `around` first (which may wait or throw). */
function onSwitch(store: ReadModelStore, around: () => Promise<void>): void {
  const save = store.save.bind(store);
  store.save = async (model, metadata, options) => {
    if (isSwitch(model, metadata.modelType)) await around();
    return save(model, metadata, options);
  };
}

for (const [name, makeStore] of Object.entries(STORES)) {
  describe(`Projector rebuild switch on ${name}`, () => {
    it("waitForCatchUp called while the switch is written resolves at the switch", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      await events.append("s", [createEvent("hit", { k: "a" }), createEvent("hit", { k: "a" })]);
      await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      let reached!: () => void;
      const switching = new Promise<void>((resolve) => {
        reached = resolve;
      });
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      onSwitch(readModels, () => {
        reached();
        return released;
      });
      const rebuilt = projector.rebuild("counter");
      await switching; // the old generation is stopped; the new one handles what comes now
      await events.append("s", [createEvent("hit", { k: "a" })]);
      const waited = projector.waitForCatchUp({ timeoutMs: 2000 }).then(
        () => "caught up",
        (error: unknown) => String(error),
      );
      // The new generation handles the event before the switch is written.
      for (let i = 0; i < 1000; i++) await new Promise((r) => setImmediate(r));
      release();
      await rebuilt;
      expect(await waited).toBe("caught up");
      expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 3 });
    });
  });
}
