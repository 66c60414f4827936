/**
 * When the projector writes its checkpoints during catch-up
 * (`checkpointIntervalMs`): a batch that holds `batchSize` models keeps
 * growing until the interval passed (and ten times what the last
 * checkpoint took to write), or until it holds more than
 * `maxCachedModels` models; at the head it is written at once. And the
 * models it folds in memory are never the objects the store holds or hands out.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { FileReadModelStore } from "../../src/file/index.js";
import { isConfigurationError } from "../../src/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import {
  type PreparedWrite,
  type Projection,
  type ProjectionStatusRecord,
  Projector,
  type ProjectorOptions,
  type ReadModelStore,
  type ReadModelWrite,
} from "../../src/read-models/index.js";

type Change = { id: string; amount: number };
interface Balance {
  total: number;
  events: number;
}

const balances: Projection<Balance, Change> = {
  name: "balances",
  modelType: "Balance",
  handles: ["changed"],
  id: (e) => e.data.id,
  evolve: (m, e) => ({ total: (m?.total ?? 0) + e.data.amount, events: (m?.events ?? 0) + 1 }),
};

/** One atomic write of the store: how many models, which checkpoint, when it started and ended. */
interface Write {
  readonly models: number;
  readonly checkpoint: number | undefined;
  readonly started: number;
  readonly ended: number;
}

/** A memory store that records each write it makes durable (and can take `delayMs` to make it). */
class RecordingStore extends MemoryReadModelStore {
  readonly writes: Write[] = [];
  delayMs = 0;

  protected override async persist(
    writes: readonly PreparedWrite[],
    _revisions: readonly number[],
    status: ProjectionStatusRecord | undefined,
  ): Promise<void> {
    const started = performance.now();
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    this.writes.push({ models: writes.length, checkpoint: status?.checkpoint, started, ended: performance.now() });
  }

  /** The writes of the projection's models (not the projector's own status-only records). */
  modelWrites(): Write[] {
    return this.writes.filter((w) => w.models > 0);
  }
}

/** `count` events over `ids` ids, each id in turn. */
async function history(events: MemoryEventStore, count: number, ids: number): Promise<void> {
  for (let i = 0; i < count; i += 100) {
    await events.append(
      `s${i}`,
      Array.from({ length: Math.min(100, count - i) }, (_, j) =>
        createEvent("changed", { id: `a${(i + j) % ids}`, amount: i + j }),
      ),
    );
  }
}

function fold(count: number, ids: number): Map<string, Balance> {
  const out = new Map<string, Balance>();
  for (let i = 0; i < count; i++) {
    const id = `a${i % ids}`;
    const m = out.get(id);
    out.set(id, { total: (m?.total ?? 0) + i, events: (m?.events ?? 0) + 1 });
  }
  return out;
}

/** A projector of `projections` from `events` into `readModels`, once it caught up (within `timeoutMs`). */
async function caughtUp(
  events: MemoryEventStore,
  readModels: ReadModelStore,
  projections: ProjectorOptions["projections"],
  options: Partial<ProjectorOptions>,
  timeoutMs: number,
): Promise<Projector> {
  const projector = await Projector.open({ eventStore: events, readModels, projections, ...options });
  await projector.waitForCatchUp({ timeoutMs });
  return projector;
}

async function expectFolded(readModels: MemoryReadModelStore, count: number, ids: number): Promise<void> {
  const expected = fold(count, ids);
  expect((await readModels.list("Balance")).sort()).toEqual([...expected.keys()].sort());
  for (const [id, m] of expected) expect((await readModels.load<Balance>("Balance", id))?.model).toEqual(m);
}

describe("Projector checkpoints during catch-up", () => {
  it("lets a batch grow past batchSize until checkpointIntervalMs passed: each model written once, at the head", async () => {
    const events = new MemoryEventStore();
    await history(events, 2000, 20);
    const readModels = new RecordingStore();
    await using projector = await caughtUp(
      events,
      readModels,
      [balances],
      { batchSize: 2, checkpointIntervalMs: 60_000 },
      10_000,
    );
    expect(readModels.modelWrites()).toEqual([expect.objectContaining({ models: 20, checkpoint: 2000 })]);
    await expectFolded(readModels, 2000, 20);
    expect(projector.status("balances")).toMatchObject({ status: "up_to_date", checkpoint: 2000, lagEvents: 0 });
  });

  it("writes every batchSize models with checkpointIntervalMs 0", async () => {
    const events = new MemoryEventStore();
    await history(events, 200, 20);
    const readModels = new RecordingStore();
    await using _projector = await caughtUp(
      events,
      readModels,
      [balances],
      { batchSize: 4, checkpointIntervalMs: 0 },
      10_000,
    );
    const writes = readModels.modelWrites();
    expect(writes).toHaveLength(50);
    for (const w of writes) expect(w.models).toBe(4);
    expect(writes.map((w) => w.checkpoint)).toEqual(Array.from({ length: 50 }, (_, i) => 4 * (i + 1)));
    await expectFolded(readModels, 200, 20);
  });

  it("writes a batch that holds more than maxCachedModels models, whatever the interval", async () => {
    const events = new MemoryEventStore();
    await history(events, 300, 30);
    const readModels = new RecordingStore();
    await using _projector = await caughtUp(
      events,
      readModels,
      [balances],
      { batchSize: 1, maxCachedModels: 5, checkpointIntervalMs: 60_000 },
      10_000,
    );
    const writes = readModels.modelWrites();
    for (const w of writes) expect(w.models).toBeLessThanOrEqual(6);
    expect(writes.length).toBeGreaterThanOrEqual(50);
    expect(writes.at(-1)?.checkpoint).toBe(300);
    await expectFolded(readModels, 300, 30);
  });

  it("after a slow checkpoint, waits ten times as long as it took before the next one", async () => {
    const events = new MemoryEventStore();
    await history(events, 6000, 50);
    const readModels = new RecordingStore();
    readModels.delayMs = 10;
    const slow: Projection<Balance, Change> = {
      ...balances,
      evolve: (m, e) => {
        const until = performance.now() + 0.1;
        while (performance.now() < until);
        return balances.evolve(m, e) as Balance;
      },
    };
    await using _projector = await caughtUp(
      events,
      readModels,
      [slow],
      { batchSize: 1, checkpointIntervalMs: 1 },
      30_000,
    );
    const writes = readModels.modelWrites();
    // The last write comes at the head, as soon as it is reached; before it, the time after each
    // write is at least ten times its own.
    expect(writes.length).toBeGreaterThanOrEqual(3);
    for (let i = 0; i + 2 < writes.length; i++) {
      const w = writes[i] as Write;
      const next = writes[i + 1] as Write;
      expect(next.started - w.ended, `after write ${i + 1}`).toBeGreaterThanOrEqual(10 * (w.ended - w.started));
    }
    await expectFolded(readModels, 6000, 50);
  });

  it("folds exactly across a close during catch-up (the batch in hand is lost, not half written)", async () => {
    const events = new MemoryEventStore();
    await history(events, 30_000, 30);
    const readModels = new RecordingStore();
    const first = await Projector.open({
      eventStore: events,
      readModels,
      projections: [balances],
      batchSize: 1,
      maxCachedModels: 10,
      checkpointIntervalMs: 60_000,
    });
    while (readModels.modelWrites().length < 3) await new Promise((r) => setTimeout(r, 1));
    await first.close();
    await history(events, 30_000, 30);
    await using second = await Projector.open({
      eventStore: events,
      readModels,
      projections: [balances],
      batchSize: 1,
      maxCachedModels: 10,
      checkpointIntervalMs: 60_000,
    });
    await second.waitForCatchUp({ timeoutMs: 10_000 });
    const expected = fold(30_000, 30);
    for (const [id, m] of expected) {
      const stored = await readModels.load<Balance>("Balance", id);
      // The second history repeats the first: each model got its events twice over, each applied once.
      expect(stored?.model).toEqual({ total: 2 * m.total, events: 2 * m.events });
    }
  });

  for (const [option, refused] of [
    ["checkpointIntervalMs", [-1, 1.5, "10", Number.NaN, Number.POSITIVE_INFINITY]],
    ["maxCachedModels", [-1, 1.5, "10", Number.NaN]],
  ] as const) {
    it(`refuses a ${option} that is not an integer >= 0`, async () => {
      const eventStore = new MemoryEventStore();
      for (const value of refused) {
        const error = await Projector.open({
          eventStore,
          readModels: new MemoryReadModelStore(),
          projections: [balances],
          [option]: value as number,
        }).catch((e: unknown) => e);
        expect(isConfigurationError(error), String(error)).toBe(true);
        expect(String(error)).toContain(option);
      }
    });
  }
});

describe("Projector event filters", () => {
  it("skips the types a projection does not handle, with or without a stream filter, and its checkpoint still reaches the head", async () => {
    const events = new MemoryEventStore();
    const all = new Map<string, Balance>();
    const inS1 = new Map<string, Balance>();
    for (let i = 0; i < 120; i++) {
      const stream = `s${i % 3}`;
      const id = `a${i % 4}`;
      const handled = i % 5 !== 0;
      await events.append(stream, [createEvent(handled ? "changed" : "other", { id, amount: i })]);
      if (!handled) continue;
      for (const map of stream === "s1" ? [all, inS1] : [all]) {
        const m = map.get(id);
        map.set(id, { total: (m?.total ?? 0) + i, events: (m?.events ?? 0) + 1 });
      }
    }
    await events.append("s2", [createEvent("other", { id: "a0", amount: 0 })]);
    const readModels = new MemoryReadModelStore();
    const s1: Projection<Balance, Change> = { ...balances, name: "s1", modelType: "S1Balance", stream: "s1" };
    await using projector = await caughtUp(
      events,
      readModels,
      [balances, s1],
      { batchSize: 2, checkpointIntervalMs: 0 },
      10_000,
    );
    for (const [type, expected] of [
      ["Balance", all],
      ["S1Balance", inS1],
    ] as const) {
      expect((await readModels.list(type)).sort()).toEqual([...expected.keys()].sort());
      for (const [id, m] of expected) expect((await readModels.load<Balance>(type, id))?.model).toEqual(m);
    }
    for (const name of ["balances", "s1"]) {
      expect(projector.status(name)).toMatchObject({ status: "up_to_date", checkpoint: 121, lagEvents: 0 });
      expect((await readModels.getProjectionStatus(name))?.checkpoint).toBe(121);
    }
  });
});

describe("Projector models in memory", () => {
  /** `noop` events leave the model as it is: evolve returns the object it got. */
  type Event = { id: string; amount: number };
  const seen = new Set<unknown>();
  const tracked: Projection<Balance, Event> = {
    name: "tracked",
    modelType: "Balance",
    handles: ["changed", "noop"],
    id: (e) => e.data.id,
    evolve: (m, e) => {
      if (m) seen.add(m);
      if (e.type === "noop" && m) return m;
      return { total: (m?.total ?? 0) + e.data.amount, events: (m?.events ?? 0) + 1 };
    },
  };

  it("never hands evolve an object the store holds or handed out; an evolve that returns its input works", async () => {
    const events = new MemoryEventStore();
    const readModels = new MemoryReadModelStore();
    await using projector = await Projector.open({
      eventStore: events,
      readModels,
      projections: [tracked],
      batchSize: 1,
    });
    const append = async (round: number) => {
      for (let i = 0; i < 10; i++) {
        await events.append(`s${i}`, [
          createEvent("changed", { id: `a${i % 3}`, amount: round + i }),
          createEvent("noop", { id: `a${i % 3}`, amount: 1000 }),
        ]);
      }
      await projector.waitForCatchUp({ timeoutMs: 10_000 });
    };
    await append(0);
    const handedOut = await readModels.load<Balance>("Balance", "a0");
    const queried = await projector.models.load<Balance>("Balance", "a1");
    expect(seen.has(handedOut?.model)).toBe(false);
    expect(seen.has(queried?.model)).toBe(false);
    // A caller changing what it got changes nothing stored nor what the projector folds next.
    (handedOut?.model as Balance).total = -1;
    (queried?.model as Balance).events = -1;
    await append(100);
    const expected = new Map<string, Balance>();
    for (const round of [0, 100]) {
      for (let i = 0; i < 10; i++) {
        const id = `a${i % 3}`;
        const m = expected.get(id);
        expected.set(id, { total: (m?.total ?? 0) + round + i, events: (m?.events ?? 0) + 1 });
      }
    }
    for (const [id, m] of expected) expect((await readModels.load<Balance>("Balance", id))?.model).toEqual(m);
    const stored = await readModels.load<Balance>("Balance", "a0");
    expect(seen.has(stored?.model)).toBe(false);
  });
});

describe("FileReadModelStore large checkpoints", () => {
  it("writes 150,000 models with their checkpoint in one step, and reads them back after a reopen", async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), "statelog-large-checkpoint-"));
    try {
      const store = await FileReadModelStore.open({ directory, sync: "none" });
      const lastUpdated = new Date();
      const writes: ReadModelWrite[] = Array.from({ length: 150_000 }, (_, i) => ({
        type: "save",
        model: { n: i },
        metadata: {
          id: `m${i}`,
          modelType: "Big",
          schemaVersion: 1,
          lastUpdated,
          lastEventPosition: i + 1,
          metadata: {},
        },
      }));
      const revisions = await store.saveWithCheckpoint(writes, {
        name: "big",
        status: "up_to_date",
        checkpoint: 150_000,
        updatedAt: lastUpdated,
      });
      expect(revisions).toHaveLength(150_000);
      await store.close();
      await using reopened = await FileReadModelStore.open({ directory, sync: "none" });
      expect((await reopened.getProjectionStatus("big"))?.checkpoint).toBe(150_000);
      expect((await reopened.list("Big")).length).toBe(150_000);
      expect((await reopened.load<{ n: number }>("Big", "m149999"))?.model).toEqual({ n: 149_999 });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
    // About 2 s alone; the crash test's children, run beside it, can make it many times slower.
  }, 180_000);
});
