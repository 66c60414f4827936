/**
 * The statuses of a projection's generations across rebuilds: once a
 * rebuild switched, the projection's own record and its active
 * generation's show the status (not `rebuilding`), and the records of the
 * retired generations are removed with their models — by the next open
 * when the clean-up was interrupted.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { FileReadModelStore } from "../../src/file/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import { Projector, type ReadModelStore } from "../../src/read-models/index.js";
import { counter, MapReadModelStore } from "./test-stores.js";

const base = await mkdtemp(path.join(os.tmpdir(), "statelog-generations-"));
let dirs = 0;
afterAll(() => rm(base, { recursive: true, force: true }));

/** Opens a store; `reopen` closes it and opens it again on the same data. */
interface StoreKind {
  open(): Promise<ReadModelStore>;
  reopen(store: ReadModelStore): Promise<ReadModelStore>;
}

const STORES: Record<string, () => StoreKind> = {
  MemoryReadModelStore: () => ({ open: () => MemoryReadModelStore.open(), reopen: async (store) => store }),
  FileReadModelStore: () => {
    const directory = path.join(base, `rm-${++dirs}`);
    return {
      open: () => FileReadModelStore.open({ directory, sync: "none" }),
      reopen: async (store) => {
        await store.close();
        return FileReadModelStore.open({ directory, sync: "none" });
      },
    };
  },
  "a store without atomic checkpoint": () => ({
    open: async () => new MapReadModelStore(false),
    reopen: async (s) => s,
  }),
};

const NAMES = ["counter", "counter~1", "counter~2", "counter~3"];

/** The statuses stored under `NAMES`, as `name:status`. */
async function statuses(store: ReadModelStore): Promise<string[]> {
  const out: string[] = [];
  for (const name of NAMES) {
    const record = await store.getProjectionStatus(name);
    if (record) out.push(`${name}:${record.status}`);
  }
  return out;
}

/** Waits (turns of the event loop, no clock) until the pointer names no retired generation. */
async function retired(store: ReadModelStore): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    const pointer = await store.load<{ retired?: number[] }>("statelog.projection", "counter");
    if (!pointer?.model.retired) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error("the retired generations were never cleaned up");
}

for (const [name, kind] of Object.entries(STORES)) {
  describe(`Projector generations' statuses on ${name}`, () => {
    it("after rebuilds, only the projection's record and its active generation's remain, neither rebuilding", async () => {
      const events = new MemoryEventStore();
      const readModels = await kind().open();
      await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      for (let round = 0; round < 3; round++) {
        await events.append("s", [createEvent("hit", { k: `k${round}` })]);
        await projector.rebuild("counter");
        await retired(readModels);
      }
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect(await statuses(readModels)).toEqual(["counter:up_to_date", "counter~3:up_to_date"]);
      const listed = await readModels.listProjectionStatuses?.();
      if (listed) expect(listed.map((r) => r.name)).toEqual(["counter", "counter~3"]);
      expect(await readModels.getProjectionStatus("counter~3")).toMatchObject({ checkpoint: 3, lagEvents: 0 });
      await projector.close();
      await readModels.close();
    });

    it("a clean-up interrupted after the switch is finished by the next open", async () => {
      const events = new MemoryEventStore();
      const store = kind();
      let readModels = await store.open();
      const first = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      await events.append("s", [createEvent("hit", { k: "a" })]);
      await first.rebuild("counter");
      await retired(readModels);
      // The second rebuild's clean-up fails when it removes the retired generation's status (a crash there).
      const remove = readModels.deleteProjectionStatus?.bind(readModels);
      let failed = false;
      readModels.deleteProjectionStatus = async () => {
        failed = true;
        throw new Error("the process died");
      };
      await first.rebuild("counter");
      for (let i = 0; i < 10_000 && !failed; i++) await new Promise((r) => setImmediate(r));
      await first.close();
      expect(failed).toBe(true);
      readModels.deleteProjectionStatus = remove;
      readModels = await store.reopen(readModels);
      expect(await statuses(readModels)).toEqual([
        "counter:up_to_date",
        "counter~1:up_to_date",
        "counter~2:up_to_date",
      ]);
      await using again = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      await retired(readModels);
      expect(await statuses(readModels)).toEqual(["counter:up_to_date", "counter~2:up_to_date"]);
      expect(await again.models.list("Counter")).toEqual(["a"]);
      expect(await readModels.list("Counter~1")).toEqual([]);
      await again.close();
      await readModels.close();
    });
  });
}

describe("Projector generations: a clean-up ending while a second rebuild switched", () => {
  it("keeps the generation the second rebuild retired in the pointer until its own clean-up removed it", async () => {
    const events = new MemoryEventStore();
    const readModels = new MapReadModelStore(true);
    const projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    await events.append("s", [createEvent("hit", { k: "a" })]);
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    // Removals of a generation's models wait until it is released: both clean-ups are under way at once.
    const gates = new Map<string, { open: Promise<void>; release: () => void }>();
    for (const type of ["Counter", "Counter~1"]) {
      let release!: () => void;
      const open = new Promise<void>((resolve) => {
        release = resolve;
      });
      gates.set(type, { open, release });
    }
    const remove = readModels.delete.bind(readModels);
    readModels.delete = async (type, id, options) => {
      await gates.get(type)?.open;
      return remove(type, id, options);
    };
    try {
      await projector.rebuild("counter"); // generation 1; generation 0's clean-up waits
      await projector.rebuild("counter"); // generation 2; generations 0 and 1 retired
      const pointer = async () =>
        (await readModels.load<{ active: number; retired?: number[] }>("statelog.projection", "counter"))?.model;
      expect(await pointer()).toEqual({ active: 2, retired: [0, 1] });
      gates.get("Counter")?.release();
      for (let i = 0; i < 10_000 && (await pointer())?.retired?.includes(0); i++) {
        await new Promise((r) => setImmediate(r));
      }
      // Generation 0 is gone; generation 1's models are not: the pointer still names it (a crash now leaves it to the next open).
      expect(await pointer()).toEqual({ active: 2, retired: [1] });
      expect(await readModels.list("Counter~1")).toEqual(["a"]);
      gates.get("Counter~1")?.release();
      await retired(readModels);
      expect(await pointer()).toEqual({ active: 2 });
      expect(await readModels.list("Counter~1")).toEqual([]);
      expect(await projector.models.list("Counter")).toEqual(["a"]);
    } finally {
      // A failed expectation must not leave a clean-up waiting: close() waits for it.
      for (const gate of gates.values()) gate.release();
      await projector.close();
    }
  });
});
