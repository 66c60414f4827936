/**
 * Projections over an event store whose retention removed events: a new
 * projection, or a rebuild, over a store whose every event expired is
 * caught up at the head; a restart or a resume after retention removed the
 * event at the checkpoint (which a store without an atomic checkpoint
 * would have delivered again) goes on after it, as nothing after it is
 * missing; one that did miss events fails at its checkpoint.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createEvent, type EventStore, isBehindRetentionError } from "../../src/events/index.js";
import { FileEventStore, FileReadModelStore } from "../../src/file/index.js";
import { isClosedError, isCorruptionError } from "../../src/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import { type Projection, Projector, type ReadModelStore } from "../../src/read-models/index.js";
import { counter, MapReadModelStore } from "./test-stores.js";

const base = await mkdtemp(path.join(os.tmpdir(), "statelog-projector-retention-"));
let dirs = 0;
afterAll(() => rm(base, { recursive: true, force: true }));

/** An event store with a retention of one second on a clock the test moves. */
interface Expiring {
  events: EventStore;
  hit(k: string): Promise<void>;
  /** Moves the clock past every event, applies retention; `reopen`: then closes the store and opens it again. */
  expireAll(reopen: boolean): Promise<EventStore>;
}

const EVENT_STORES: Record<string, () => Promise<Expiring>> = {
  MemoryEventStore: async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const events = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: () => new Date(now) });
    return {
      events,
      hit: async (k) => void (await events.append("s", [createEvent("hit", { k }, { timestamp: new Date(now) })])),
      expireAll: async () => {
        now += 10_000;
        await events.applyRetention();
        return events;
      },
    };
  },
  "FileEventStore (segments of one event)": async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const directory = path.join(base, `events-${++dirs}`);
    // Retention deletes whole segments: tiny ones hold one event each.
    const open = () =>
      FileEventStore.open({ directory, retentionDurationMs: 1000, clock: () => new Date(now), segmentBytes: 200 });
    const store: Expiring = {
      events: await open(),
      hit: async (k) =>
        void (await store.events.append("s", [createEvent("hit", { k }, { timestamp: new Date(now) })])),
      expireAll: async (reopen) => {
        now += 10_000;
        await store.events.applyRetention?.();
        if (reopen) {
          await store.events.close();
          store.events = await open();
        }
        return store.events;
      },
    };
    return store;
  },
};

const READ_MODEL_STORES: Record<string, () => Promise<ReadModelStore>> = {
  MemoryReadModelStore: () => MemoryReadModelStore.open(),
  FileReadModelStore: () => FileReadModelStore.open({ directory: path.join(base, `rm-${++dirs}`), sync: "none" }),
  "a store without atomic checkpoint": async () => new MapReadModelStore(false),
};

for (const [eventStoreName, expiring] of Object.entries(EVENT_STORES)) {
  for (const [storeName, makeStore] of Object.entries(READ_MODEL_STORES)) {
    describe(`Projector over ${eventStoreName} whose every event expired, into ${storeName}`, () => {
      it("a new projection is caught up at the head: the barrier resolves, the checkpoint is the head", async () => {
        const source = await expiring();
        for (let i = 0; i < 5; i++) await source.hit("a");
        const events = await source.expireAll(true);
        expect(events.stats()).toMatchObject({ totalEvents: 0, globalPosition: 5 });
        await using readModels = await makeStore();
        await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
        await projector.waitForCatchUp({ timeoutMs: 5000 });
        expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 5, lagEvents: 0 });
        expect(await readModels.getProjectionStatus("counter")).toMatchObject({ status: "up_to_date", checkpoint: 5 });
        await source.hit("a");
        await projector.waitForCatchUp({ timeoutMs: 5000 });
        expect((await projector.models.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 1 });
        await events.close();
      });

      it("a rebuild completes at the head, with no models left to fold", async () => {
        const source = await expiring();
        await using readModels = await makeStore();
        await using projector = await Projector.open({ eventStore: source.events, readModels, projections: [counter] });
        for (let i = 0; i < 5; i++) await source.hit("a");
        await projector.waitForCatchUp({ timeoutMs: 5000 });
        const events = await source.expireAll(false);
        await projector.rebuild("counter");
        await projector.waitForCatchUp({ timeoutMs: 5000 });
        expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 5 });
        expect(await projector.models.list("Counter")).toEqual([]);
        await source.hit("b");
        await projector.waitForCatchUp({ timeoutMs: 5000 });
        expect(await projector.models.list("Counter")).toEqual(["b"]);
        await projector.close();
        await events.close();
      });
    });
  }
}

for (const atomic of [false, true]) {
  describe(`Projector restarted after retention, into a store ${atomic ? "with" : "without"} atomic checkpoint`, () => {
    /** A projection caught up at checkpoint 5 and closed; then retention removes events 1 to `expired`. */
    async function closedAt5(expired: number) {
      let now = Date.parse("2026-01-01T00:00:00Z");
      const events = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: () => new Date(now) });
      const readModels = new MapReadModelStore(atomic);
      const hit = async (k: string, at = now) =>
        void (await events.append("s", [createEvent("hit", { k }, { timestamp: new Date(at) })]));
      const first = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      for (let i = 0; i < 5; i++) await hit("a");
      await first.waitForCatchUp({ timeoutMs: 5000 });
      await first.close();
      // Events 6 and 7 are newer, appended while the projector was down; retention removes up to `expired`.
      await hit("a", now + (expired >= 6 ? 0 : 5000));
      await hit("b", now + (expired >= 7 ? 0 : 5000));
      now += 2000;
      expect(await events.applyRetention()).toBe(expired);
      return { events, readModels };
    }

    it("goes on after the checkpoint when the event at it was removed and nothing after it", async () => {
      const { events, readModels } = await closedAt5(5);
      await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect((await readModels.load<{ n: number }>("Counter", "a"))?.model).toEqual({ n: 6 });
      expect((await readModels.load<{ n: number }>("Counter", "b"))?.model).toEqual({ n: 1 });
      expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 7 });
    });

    it("resume() of a failed projection goes on after the checkpoint when the event at it was removed", async () => {
      let now = Date.parse("2026-01-01T00:00:00Z");
      const events = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: () => new Date(now) });
      const readModels = new MapReadModelStore(atomic);
      let broken = true;
      const fragile: Projection<{ n: number }, { k: string }> = {
        ...counter,
        evolve: (m, e) => {
          if (broken && e.data.k === "b") throw new Error("not yet");
          return counter.evolve(m, e);
        },
      };
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [fragile],
        retry: false,
      });
      for (let i = 0; i < 5; i++)
        await events.append("s", [createEvent("hit", { k: "a" }, { timestamp: new Date(now) })]);
      await events.append("s", [createEvent("hit", { k: "b" }, { timestamp: new Date(now + 5000) })]);
      await expect(projector.waitForCatchUp({ timeoutMs: 5000 })).rejects.toThrow();
      expect(projector.status("counter")).toMatchObject({ status: "failed", checkpoint: 5, failedPosition: 6 });
      // While it is failed, retention removes what it handled; the event it failed on stays.
      now += 2000;
      expect(await events.applyRetention()).toBe(5);
      broken = false;
      await projector.resume("counter");
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect((await readModels.load<{ n: number }>("Counter", "b"))?.model).toEqual({ n: 1 });
      expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 6 });
    });

    it("fails with a BehindRetentionError at its checkpoint when events after it were removed too, until a rebuild", async () => {
      const { events, readModels } = await closedAt5(6);
      await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
      const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(isBehindRetentionError(error)).toBe(true);
      expect(error).toMatchObject({ position: 5, firstAvailable: 7 });
      expect(projector.status("counter")).toMatchObject({ status: "failed", checkpoint: 5 });
      expect(await readModels.getProjectionStatus("counter")).toMatchObject({ status: "failed", checkpoint: 5 });
      // A rebuild accepts the loss: it folds what is stored.
      await projector.rebuild("counter");
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect(projector.status("counter")).toMatchObject({ status: "up_to_date", checkpoint: 7 });
      expect((await projector.models.load<{ n: number }>("Counter", "b"))?.model).toEqual({ n: 1 });
      expect(await projector.models.list("Counter")).toEqual(["b"]);
    });
  });
}

describe("Projector whose checkpoint is past the event store's last position", () => {
  it("fails with a CorruptionError naming both instead of waiting for the events to reach it; a rebuild starts over", async () => {
    const readModels = new MapReadModelStore(true);
    const before = await MemoryEventStore.open();
    const first = await Projector.open({ eventStore: before, readModels, projections: [counter] });
    for (let i = 0; i < 5; i++) await before.append("s", [createEvent("hit", { k: "a" })]);
    await first.waitForCatchUp({ timeoutMs: 5000 });
    await first.close();
    // The events are gone (another, empty store: lost, replaced, or numbered anew); three new ones come.
    const events = await MemoryEventStore.open();
    for (let i = 0; i < 3; i++) await events.append("s", [createEvent("hit", { k: "b" })]);
    await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isCorruptionError(error)).toBe(true);
    expect(String(error)).toContain("checkpoint is global position 5, past the event store's last one (3)");
    expect(projector.status("counter")).toMatchObject({ status: "failed", checkpoint: 5 });
    await projector.rebuild("counter");
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    expect(await projector.models.list("Counter")).toEqual(["b"]);
    expect((await projector.models.load<{ n: number }>("Counter", "b"))?.model).toEqual({ n: 3 });
  });
});

describe("Projector without atomic checkpoint restarted at checkpoint 1 after retention", () => {
  it("fails with a BehindRetentionError when events after the checkpoint were removed too (a start from 0 would pass over them)", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const events = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: () => new Date(now) });
    const readModels = new MapReadModelStore(false);
    const hit = async (k: string, at: number) =>
      void (await events.append("s", [createEvent("hit", { k }, { timestamp: new Date(at) })]));
    const first = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    await hit("a", now);
    await first.waitForCatchUp({ timeoutMs: 5000 });
    await first.close();
    await hit("a", now); // 2: expires with 1, never projected
    await hit("b", now + 5000); // 3: stays
    now += 2000;
    expect(await events.applyRetention()).toBe(2);
    await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isBehindRetentionError(error)).toBe(true);
    expect(error).toMatchObject({ position: 1, firstAvailable: 3 });
    expect(projector.status("counter")).toMatchObject({ status: "failed", checkpoint: 1 });
  });
});

describe("Projector without atomic checkpoint restarted at checkpoint 1 after retention removed every event", () => {
  it("fails with a BehindRetentionError instead of taking the head for its checkpoint", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const events = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: () => new Date(now) });
    const readModels = new MapReadModelStore(false);
    const hit = async (k: string) =>
      void (await events.append("s", [createEvent("hit", { k }, { timestamp: new Date(now) })]));
    const first = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    await hit("a");
    await first.waitForCatchUp({ timeoutMs: 5000 });
    await first.close();
    await hit("b"); // 2 and 3: never projected, then removed with 1
    await hit("c");
    now += 2000;
    expect(await events.applyRetention()).toBe(3);
    await using projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isBehindRetentionError(error), String(error)).toBe(true);
    expect(error).toMatchObject({ position: 1, firstAvailable: 4 });
    expect(projector.status("counter")).toMatchObject({ status: "failed", checkpoint: 1 });
  });
});

describe("Projector over an event store whose catchUp() does not answer (a server away)", () => {
  it("open and close do not wait for it: the check of a checkpoint is aborted by close", async () => {
    let aborted = 0;
    /** A memory store whose catchUp() waits until its signal aborts, as a NATS store's does while its server is away. */
    class SilentCatchUp extends MemoryEventStore {
      catchUp(options?: { signal?: AbortSignal }): Promise<void> {
        return new Promise<void>((_, reject) =>
          options?.signal?.addEventListener("abort", () => {
            aborted++;
            reject(options.signal?.reason);
          }),
        );
      }
    }
    const events = new SilentCatchUp();
    const readModels = new MapReadModelStore(true);
    const first = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    await events.append("s", [createEvent("hit", { k: "a" })]);
    await first.waitForCatchUp({ timeoutMs: 5000 });
    await first.close();
    expect(aborted).toBe(0); // a new projection (checkpoint 0) has nothing to check
    const projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    expect(projector.status("counter")).toMatchObject({ checkpoint: 1 });
    await projector.close();
    expect(aborted).toBe(1);
  });
});

describe("Projector start and stop racing, and a subscription that cannot be made", () => {
  it("a close while a rebuild's shadow reads its checkpoint leaves nothing projecting after it", async () => {
    const events = await MemoryEventStore.open();
    let release: (() => void) | undefined;
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => {
      reached = resolve;
    });
    /** A store whose read of the shadow generation's status waits until released. */
    class SlowShadowStatus extends MapReadModelStore {
      override async getProjectionStatus(name: string) {
        if (name !== "counter") {
          reached();
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        }
        return super.getProjectionStatus(name);
      }
    }
    const readModels = new SlowShadowStatus(true);
    const projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    await events.append("s", [createEvent("hit", { k: "a" })]);
    await projector.waitForCatchUp({ timeoutMs: 5000 });
    const rebuild = projector.rebuild("counter").catch((e: unknown) => e);
    await atGate;
    const closing = projector.close();
    release?.();
    await closing;
    await rebuild;
    expect(events.stats().subscriptionsActive).toBe(0);
    const before = [...readModels.models.keys()];
    await events.append("s", [createEvent("hit", { k: "b" })]);
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect([...readModels.models.keys()]).toEqual(before);
  });

  it("an event store that refuses the subscription (closed) fails the projection; close() still resolves", async () => {
    const events = await MemoryEventStore.open();
    const readModels = new MapReadModelStore(true);
    const first = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    await events.append("s", [createEvent("hit", { k: "a" })]);
    await first.waitForCatchUp({ timeoutMs: 5000 });
    await first.close();
    await events.close();
    const projector = await Projector.open({ eventStore: events, readModels, projections: [counter] });
    const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(isClosedError(error), String(error)).toBe(true);
    expect(projector.status("counter")).toMatchObject({ status: "failed", checkpoint: 1 });
    await projector.close();
  });
});
