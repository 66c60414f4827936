/**
 * The switch of a rebuild: the write of the pointer that makes the rebuilt
 * generation the active one, after the old one was stopped. The caught-up
 * barrier follows the switch; a switch write the store refuses is retried,
 * and one it keeps refusing leaves the old generation serving (or failed,
 * when the store refuses to start it again), never stopped and silent.
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

/** Fast retries: three attempts. */
const retry = { maxAttempts: 3, backoffMs: 1, maxBackoffMs: 1 };

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

const pointer = async (store: ReadModelStore) =>
  (await store.load<{ active: number; rebuilding?: number }>(POINTER, "counter"))?.model;

/** A projector of `counter` over two "hit" events of key a, caught up (its event store and read models with it). */
async function caughtUp(readModels: ReadModelStore, withRetry: boolean) {
  const events = new MemoryEventStore();
  await events.append("s", [createEvent("hit", { k: "a" }), createEvent("hit", { k: "a" })]);
  const projector = await Projector.open({
    eventStore: events,
    readModels,
    projections: [counter],
    ...(withRetry ? { retry } : {}),
  });
  await projector.waitForCatchUp({ timeoutMs: 5000 });
  return { events, readModels, projector };
}

for (const [name, makeStore] of Object.entries(STORES)) {
  describe(`Projector rebuild switch on ${name}`, () => {
    it("waitForCatchUp called while the switch is written resolves at the switch", async () => {
      const { events, readModels, projector } = await caughtUp(makeStore(), false);
      await using _ = projector;
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

    it("a switch write that fails once is retried: the rebuild switches", async () => {
      const { events, readModels, projector } = await caughtUp(makeStore(), true);
      await using _ = projector;
      let failures = 1;
      onSwitch(readModels, async () => {
        if (failures-- > 0) throw new Error("transient store error");
      });
      await projector.rebuild("counter");
      expect(failures).toBe(-1); // failed once, then written
      expect(await pointer(readModels)).toMatchObject({ active: 1 });
      await events.append("s", [createEvent("hit", { k: "a" })]);
      await projector.waitForCatchUp({ timeoutMs: 2000 });
      expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 3 });
      expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 3 });
      expect(await readModels.load("Counter~1", "a")).toBeDefined();
    });

    it("the status written after the switch is retried; one the store keeps refusing does not undo the switch", async () => {
      for (const refusals of [1, Number.POSITIVE_INFINITY]) {
        const { readModels, projector } = await caughtUp(makeStore(), true);
        await using _ = projector;
        let switched = false;
        let refused = 0;
        onSwitch(readModels, async () => {
          switched = true;
        });
        const update = readModels.updateProjectionStatus.bind(readModels);
        readModels.updateProjectionStatus = async (record) => {
          if (switched && record.name === "counter" && refused < refusals) {
            refused++;
            throw new Error("status write refused");
          }
          return update(record);
        };
        await projector.rebuild("counter");
        expect(await pointer(readModels)).toMatchObject({ active: 1 });
        expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 2 });
        const stored = await readModels.getProjectionStatus("counter");
        if (refusals === 1) expect(stored).toMatchObject({ status: "up_to_date", checkpoint: 2 });
        else expect(refused).toBe(retry.maxAttempts); // tried under the retry policy, then left to the next checkpoint
      }
    });

    it("a switch write the store keeps refusing rejects the rebuild; the old generation serves on, and a later rebuild switches", async () => {
      const { events, readModels, projector } = await caughtUp(makeStore(), true);
      await using _ = projector;
      let broken = true;
      let attempts = 0;
      onSwitch(readModels, async () => {
        attempts++;
        if (broken) throw new Error("store refuses the switch");
      });
      await expect(projector.rebuild("counter")).rejects.toThrow("store refuses the switch");
      expect(attempts).toBe(3);
      expect(await pointer(readModels)).toEqual({ active: 0, rebuilding: 1 });
      // The old generation was started again: it follows new events, and the barrier sees them.
      await events.append("s", [createEvent("hit", { k: "a" })]);
      await projector.waitForCatchUp({ timeoutMs: 2000 });
      expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 3 });
      // A rebuild is still pending (the new generation keeps following events too).
      expect(projector.status("counter")).toMatchObject({ status: "rebuilding", checkpoint: 3, lagEvents: 0 });
      broken = false;
      await projector.rebuild("counter");
      expect(await pointer(readModels)).toMatchObject({ active: 1 });
      await events.append("s", [createEvent("hit", { k: "a" })]);
      await projector.waitForCatchUp({ timeoutMs: 2000 });
      expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 4 });
      expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 4 });
      expect((await readModels.load<{ n: number }>("Counter~1", "a"))?.model).toEqual({ n: 4 });
    });

    it("when the store refuses to start the old generation again too, it is failed: the barrier rejects, resume() goes on", async () => {
      const { events, readModels, projector } = await caughtUp(makeStore(), true);
      await using _ = projector;
      let broken = true;
      const readStatus = readModels.getProjectionStatus.bind(readModels);
      readModels.getProjectionStatus = async (name) => {
        if (broken && name === "counter") throw new Error("store unreachable");
        return readStatus(name);
      };
      onSwitch(readModels, async () => {
        if (broken) throw new Error("store unreachable");
      });
      await expect(projector.rebuild("counter")).rejects.toThrow("store unreachable");
      await events.append("s", [createEvent("hit", { k: "a" })]);
      await expect(projector.waitForCatchUp({ timeoutMs: 2000 })).rejects.toThrow("store unreachable");
      expect(projector.status("counter")).toMatchObject({ status: "failed", lastError: "store unreachable" });
      broken = false;
      await projector.resume("counter"); // starts the old generation, and tries the switch again
      await projector.rebuild("counter");
      expect(await pointer(readModels)).toMatchObject({ active: 1 });
      await projector.waitForCatchUp({ timeoutMs: 2000 });
      expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 3 });
      expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 3 });
    });
  });
}
