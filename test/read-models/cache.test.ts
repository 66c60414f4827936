/**
 * CachedReadModelStore: its bounds (entries and bytes, least recently used
 * first), its hit counts, no stale read after a write through it (even with
 * a load of the old value in flight), saveWithCheckpoint passed through,
 * and a projector writing through it (writes, deletes, a rebuild) reading
 * exactly what the store behind holds.
 */
import { describe, expect, it, vi } from "vitest";
import { createEvent, type RecordedEvent } from "../../src/events/index.js";
import { isAbortError, isClosedError, isConfigurationError, isUnsupportedError } from "../../src/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../../src/memory/index.js";
import {
  CACHED_READ_MODEL_STORE_DEFAULTS,
  CachedReadModelStore,
  hasAtomicCheckpoint,
  type Projection,
  Projector,
  type ReadModelMetadata,
  type StoredReadModel,
} from "../../src/read-models/index.js";
import { MapReadModelStore } from "./test-stores.js";

const meta = (id: string, modelType = "Doc", lastEventPosition = 0): ReadModelMetadata => ({
  id,
  modelType,
  schemaVersion: 1,
  lastUpdated: new Date(0),
  lastEventPosition,
  metadata: {},
});

const tick = () => new Promise((r) => setImmediate(r));

describe("CachedReadModelStore", () => {
  it("opens with its defaults and refuses bad options with a ConfigurationError", async () => {
    const store = new MapReadModelStore();
    const cache = await CachedReadModelStore.open({ store });
    expect(cache.maxEntries).toBe(CACHED_READ_MODEL_STORE_DEFAULTS.maxEntries);
    expect(cache.maxBytes).toBe(CACHED_READ_MODEL_STORE_DEFAULTS.maxBytes);
    const bad: unknown[] = [
      undefined,
      {},
      { store: {} },
      { store, maxEntries: 0 },
      { store, maxEntries: 1.5 },
      { store, maxBytes: -1 },
      { store, maxBytes: "1mb" },
      { store, size: 10 },
    ];
    for (const options of bad) {
      const error = await CachedReadModelStore.open(options as never).catch((e: unknown) => e);
      expect(isConfigurationError(error), `${JSON.stringify(options)}: ${String(error)}`).toBe(true);
    }
    expect((await CachedReadModelStore.open({ store, maxEntries: Infinity })).maxEntries).toBe(Infinity);
  });

  it("counts hits: a saved or loaded model is served without asking the store again", async () => {
    const store = new MapReadModelStore();
    await using cache = await CachedReadModelStore.open({ store });
    await store.save({ n: 1 }, meta("a"));
    expect((await cache.load("Doc", "a"))?.model).toEqual({ n: 1 });
    expect((await cache.load("Doc", "a"))?.model).toEqual({ n: 1 });
    expect(await cache.load("Doc", "none")).toBeUndefined();
    expect(await cache.load("Doc", "none")).toBeUndefined(); // an absence is remembered too
    await cache.save({ n: 2 }, meta("b"));
    expect((await cache.load("Doc", "b"))?.model).toEqual({ n: 2 });
    expect(store.calls.loads).toBe(2);
    expect(cache.stats()).toMatchObject({ hits: 3, misses: 2, entries: 3 });
  });

  it("returns copies: mutating a loaded or saved model does not change what is cached", async () => {
    const store = new MapReadModelStore();
    await using cache = await CachedReadModelStore.open({ store });
    const model = { list: [1] };
    await cache.save(model, meta("a"));
    model.list.push(2);
    const loaded = (await cache.load<{ list: number[] }>("Doc", "a")) as StoredReadModel<{ list: number[] }>;
    expect(loaded.model.list).toEqual([1]);
    loaded.model.list.push(3);
    expect((await cache.load<{ list: number[] }>("Doc", "a"))?.model.list).toEqual([1]);
  });

  it("holds at most maxEntries, evicting the least recently used", async () => {
    const store = new MapReadModelStore();
    await using cache = await CachedReadModelStore.open({ store, maxEntries: 3 });
    for (const id of ["a", "b", "c"]) await cache.save({ id }, meta(id));
    await cache.load("Doc", "a"); // a is now the most recently used: b goes first
    await cache.save({ id: "d" }, meta("d"));
    expect(cache.stats()).toMatchObject({ entries: 3, evictions: 1 });
    const before = store.calls.loads;
    await cache.load("Doc", "a");
    await cache.load("Doc", "c");
    await cache.load("Doc", "d");
    expect(store.calls.loads).toBe(before);
    expect((await cache.load("Doc", "b"))?.model).toEqual({ id: "b" });
    expect(store.calls.loads).toBe(before + 1);
    for (let i = 0; i < 50; i++) {
      await cache.save({ i }, meta(`m${i}`));
      expect(cache.stats().entries).toBeLessThanOrEqual(3);
    }
  });

  it("holds at most maxBytes; a model larger than maxBytes is not cached", async () => {
    const store = new MapReadModelStore();
    const maxBytes = 2000;
    await using cache = await CachedReadModelStore.open({ store, maxBytes });
    for (let i = 0; i < 40; i++) {
      await cache.save({ text: "x".repeat(100 + ((i * 37) % 300)) }, meta(`m${i}`));
      await cache.load("Doc", `m${(i * 7) % 40}`);
      expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    }
    const { entries, evictions } = cache.stats();
    expect(entries).toBeGreaterThan(2);
    expect(entries).toBeLessThan(40);
    expect(evictions).toBeGreaterThan(0);
    await cache.save({ text: "y".repeat(5000) }, meta("big"));
    const loads = store.calls.loads;
    expect((await cache.load<{ text: string }>("Doc", "big"))?.model.text).toHaveLength(5000);
    expect((await cache.load<{ text: string }>("Doc", "big"))?.model.text).toHaveLength(5000);
    expect(store.calls.loads).toBe(loads + 2);
    expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
  });

  it("a delete through the cache is seen by the next load; a failed conditional write leaves no stale entry", async () => {
    const store = new MapReadModelStore();
    await using cache = await CachedReadModelStore.open({ store });
    await cache.save({ n: 1 }, meta("a"));
    expect(await cache.delete("Doc", "a")).toBe(true);
    expect(await cache.load("Doc", "a")).toBeUndefined();
    expect(await cache.delete("Doc", "a")).toBe(false);
    await cache.save({ n: 1 }, meta("b"));
    await store.save({ n: 99 }, meta("b")); // behind the cache's back: revision 2
    await expect(cache.save({ n: 2 }, meta("b"), { expectedRevision: 1 })).rejects.toMatchObject({
      code: "STATELOG_VERSION_CONFLICT",
    });
    expect(await cache.load("Doc", "b")).toMatchObject({ model: { n: 99 }, revision: 2 });
    await store.save({ n: 100 }, meta("b"));
    cache.invalidate("Doc", "b");
    expect((await cache.load("Doc", "b"))?.model).toEqual({ n: 100 });
  });

  it("never serves a stale model after a write through it, even when a load of the old one was in flight", async () => {
    const store = new MapReadModelStore();
    const gates: (() => void)[] = [];
    const slowLoad = store.load.bind(store);
    // The store reads the value when called but answers later: a load that raced a write.
    store.load = async <M>(modelType: string, id: string) => {
      const read = await slowLoad<M>(modelType, id);
      await new Promise<void>((r) => gates.push(r));
      return read;
    };
    await using cache = await CachedReadModelStore.open({ store });
    await store.save({ v: 1 }, meta("a"));
    const racing = cache.load<{ v: number }>("Doc", "a");
    await tick();
    await cache.save({ v: 2 }, meta("a"), { expectedRevision: 1 });
    for (const g of gates.splice(0)) g();
    expect((await racing)?.model.v).toBe(1); // it began before the write
    const after = cache.load<{ v: number }>("Doc", "a");
    await tick();
    for (const g of gates.splice(0)) g();
    expect((await after)?.model.v).toBe(2);
    expect((await cache.load<{ v: number }>("Doc", "a"))?.model.v).toBe(2);

    // The same at random: each load that starts after a write resolved sees it (or a later one).
    const pump = setInterval(() => {
      for (const g of gates.splice(0)) g();
    }, 1);
    try {
      let acknowledged = 2;
      const work: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        if (i % 3 === 0) {
          const v = 3 + i;
          work.push(
            cache.save({ v }, meta("a")).then(() => {
              acknowledged = Math.max(acknowledged, v);
            }),
          );
        } else {
          const floor = acknowledged;
          work.push(
            cache.load<{ v: number }>("Doc", "a").then((m) => {
              expect(m?.model.v).toBeGreaterThanOrEqual(floor);
            }),
          );
        }
        if (i % 5 === 0) await tick();
      }
      await Promise.all(work);
      const final = await slowLoad<{ v: number }>("Doc", "a");
      expect((await cache.load<{ v: number }>("Doc", "a"))?.model).toEqual(final?.model);
    } finally {
      clearInterval(pump);
    }
  });

  it("caches what the store stored: a copy taken at the call, metadata as the store fills it in", async () => {
    const store = new MemoryReadModelStore();
    await using cache = await CachedReadModelStore.open({ store });
    const model = { n: 1, z: -0 };
    // Without schemaVersion and free metadata: the store fills them in (1, {}).
    const metadata = { id: "a", modelType: "Doc", lastUpdated: new Date(0), lastEventPosition: 5 } as ReadModelMetadata;
    const saving = cache.save(model, metadata);
    model.n = 2; // changed while the write is in flight
    (metadata as { lastEventPosition: number }).lastEventPosition = 99;
    await saving;
    const cached = await cache.load<{ n: number; z: number }>("Doc", "a");
    expect(cache.stats().hits).toBe(1);
    const inStore = await store.load<{ n: number; z: number }>("Doc", "a");
    expect(cached?.model).toEqual(inStore?.model);
    expect(Object.is(cached?.model.z, inStore?.model.z)).toBe(true);
    expect(cached?.metadata).toEqual(inStore?.metadata);
    expect(cached?.metadata).toMatchObject({ schemaVersion: 1, lastEventPosition: 5, metadata: {} });
  });

  it("invalidate() also keeps a load in flight from caching the value it read", async () => {
    const store = new MapReadModelStore();
    await store.save({ v: "old" }, meta("c"));
    const gates: (() => void)[] = [];
    const load = store.load.bind(store);
    store.load = async <M>(modelType: string, id: string) => {
      const read = await load<M>(modelType, id);
      await new Promise<void>((r) => gates.push(r));
      return read;
    };
    await using cache = await CachedReadModelStore.open({ store });
    const racing = cache.load("Doc", "c");
    await tick();
    await store.save({ v: "new" }, meta("c"), { expectedRevision: 1 }); // another writer, not through the cache
    cache.invalidate("Doc", "c");
    for (const g of gates.splice(0)) g();
    await racing;
    const next = cache.load<{ v: string }>("Doc", "c");
    await tick();
    for (const g of gates.splice(0)) g();
    expect((await next)?.model.v).toBe("new");
  });

  it("passes listProjectionStatuses and deleteProjectionStatus through when the store has them; bad input is the store's ValidationError", async () => {
    const store = new MapReadModelStore(true);
    (store as unknown as { listProjectionStatuses: () => Promise<unknown[]> }).listProjectionStatuses = async () => [
      ...store.statuses.values(),
    ];
    await using cache = await CachedReadModelStore.open({ store });
    await cache.updateProjectionStatus({ name: "p", status: "up_to_date", checkpoint: 3, updatedAt: new Date() });
    expect((await cache.listProjectionStatuses?.())?.map((r) => r.name)).toEqual(["p"]);
    expect(await cache.deleteProjectionStatus?.("p")).toBe(true);
    expect(store.statuses.has("p")).toBe(false);
    const without = new MapReadModelStore();
    Object.defineProperty(without, "deleteProjectionStatus", { value: undefined });
    await using plain = await CachedReadModelStore.open({ store: without });
    expect(plain.listProjectionStatuses).toBeUndefined();
    expect(plain.deleteProjectionStatus).toBeUndefined();
    const validation = (e: unknown) => (e as { code?: string }).code === "STATELOG_VALIDATION";
    await expect(cache.save({}, null as unknown as ReadModelMetadata)).rejects.toSatisfy(validation);
    await expect(
      cache.saveWithCheckpoint?.([null as never], {
        name: "p",
        status: "up_to_date",
        checkpoint: 3,
        updatedAt: new Date(),
      }),
    ).rejects.toSatisfy(validation);
  });

  it("passes saveWithCheckpoint through to a store that has it, and refuses it otherwise", async () => {
    const atomic = new MapReadModelStore(true);
    await using cache = await CachedReadModelStore.open({ store: atomic });
    expect(hasAtomicCheckpoint(cache)).toBe(true);
    await cache.save({ n: 1 }, meta("gone"));
    await cache.load("Doc", "a"); // remembered absent
    const status = { name: "p", status: "up_to_date" as const, checkpoint: 7, updatedAt: new Date() };
    const revisions = await cache.saveWithCheckpoint(
      [
        { type: "save", model: { n: 2 }, metadata: meta("a", "Doc", 7), expectedRevision: 0 },
        { type: "delete", modelType: "Doc", id: "gone", expectedRevision: 1 },
      ],
      status,
    );
    expect(revisions[0]).toBe(1);
    expect(await cache.load("Doc", "a")).toMatchObject({ model: { n: 2 }, revision: 1 });
    expect(await cache.load("Doc", "gone")).toBeUndefined();
    expect(atomic.statuses.get("p")?.checkpoint).toBe(7);

    const plain = await CachedReadModelStore.open({ store: new MapReadModelStore(false) });
    expect(hasAtomicCheckpoint(plain)).toBe(false);
    expect(plain.capabilities.atomicCheckpoint).toBe(false);
    expect(plain.saveWithCheckpoint).toBeUndefined(); // present exactly when the capability is
    const error = await CachedReadModelStore.prototype.saveWithCheckpoint
      .call(plain, [], status)
      .catch((e: unknown) => e);
    expect(isUnsupportedError(error)).toBe(true);
    await plain.close();
  });

  it("close() closes the store behind it, is idempotent, and later calls fail with a ClosedError; an aborted load is an AbortError", async () => {
    const store = new MapReadModelStore();
    const cache = await CachedReadModelStore.open({ store });
    await cache.save({ n: 1 }, meta("a"));
    await cache.close();
    await cache.close();
    expect(store.closed).toBe(true);
    expect(cache.stats().entries).toBe(0);
    expect(isClosedError(await cache.load("Doc", "a").catch((e: unknown) => e))).toBe(true);
    const open = await CachedReadModelStore.open({ store: new MapReadModelStore() });
    const aborted = await open.load("Doc", "a", { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isAbortError(aborted)).toBe(true);
    await open.close();
    expect(() => cache.list("Doc")).toThrow(/closed/);
  });
});

interface Balance {
  account: string;
  sum: number;
  positions: number[];
}
type Moved = { account: string; amount: number };

const balances: Projection<Balance, Moved> = {
  name: "balances",
  modelType: "Balance",
  handles: ["deposited", "closed"],
  id: (e) => e.data.account,
  evolve: (m, e) =>
    e.type === "closed"
      ? null
      : {
          account: e.data.account,
          sum: (m?.sum ?? 0) + e.data.amount,
          positions: [...(m?.positions ?? []), e.globalPosition],
        },
};

function fold(events: readonly RecordedEvent[]): Map<string, Balance> {
  const out = new Map<string, Balance>();
  for (const e of events) {
    const d = e.data as Moved;
    if (e.type === "closed") out.delete(d.account);
    else {
      const m = out.get(d.account);
      out.set(d.account, {
        account: d.account,
        sum: (m?.sum ?? 0) + d.amount,
        positions: [...(m?.positions ?? []), e.globalPosition],
      });
    }
  }
  return out;
}

describe.each([
  ["without", false],
  ["with", true],
])("a Projector writing through a CachedReadModelStore (store %s atomic checkpoint)", (_, atomic) => {
  it("models read through the cache equal the fold and the store behind, across deletes, restarts and a rebuild", async () => {
    const events = new MemoryEventStore();
    const store = new MapReadModelStore(atomic);
    const cache = await CachedReadModelStore.open({ store, maxEntries: 8 });
    let k = 0;
    const append = async (n: number) => {
      for (let i = 0; i < n; i++) {
        k++;
        const account = `acc-${(k * 7) % 13}`;
        const event =
          k % 11 === 0 ? createEvent("closed", { account }) : createEvent("deposited", { account, amount: k % 5 });
        await events.append(`s-${k % 4}`, [event]);
      }
    };
    const check = async (projector: Projector) => {
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      const all: RecordedEvent[] = [];
      for (const s of await events.getStreams()) all.push(...(await events.readStream(s.streamId)));
      const expected = fold(all.sort((a, b) => a.globalPosition - b.globalPosition));
      expect(await projector.models.list("Balance")).toEqual([...expected.keys()].sort());
      for (let a = 0; a < 13; a++) {
        const id = `acc-${a}`;
        expect((await projector.models.load<Balance>("Balance", id))?.model, id).toEqual(expected.get(id));
        // Whatever generation: the cache answers what the store behind holds.
        for (const type of ["Balance", "Balance~1"]) {
          const cached = await cache.load(type, id);
          const stored = await store.load(type, id);
          expect(cached && { model: cached.model, revision: cached.revision }).toEqual(
            stored && { model: stored.model, revision: stored.revision },
          );
        }
      }
    };
    let projector = await Projector.open({
      eventStore: events,
      readModels: cache,
      projections: [balances],
      batchSize: 3,
    });
    await append(60);
    await check(projector);
    await append(30);
    await check(projector);
    await projector.close();
    await append(25); // while stopped
    projector = await Projector.open({ eventStore: events, readModels: cache, projections: [balances], batchSize: 3 });
    await check(projector);
    const rebuilt = projector.rebuild("balances");
    await append(20);
    await rebuilt;
    // The retired generation's models are removed in the background (a turn of the event loop now and then): compared
    // with the store behind while that runs, a model may go between the two loads. Compared once it is done.
    await vi.waitFor(async () => expect(await store.list("Balance")).toEqual([]), { timeout: 5000 });
    await check(projector);
    expect(projector.status("balances").status).toBe("up_to_date");
    expect(cache.stats().hits).toBeGreaterThan(0);
    expect(cache.stats().entries).toBeLessThanOrEqual(8);
    await projector.close();
    await cache.close();
  });
});
