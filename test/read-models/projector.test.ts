/**
 * The projector against any ReadModelStore (a parameter: the Map test
 * doubles here, with and without an atomic checkpoint; the real stores
 * later): exactly-once folds, status and lag, retry / failed / resume,
 * rebuilds with an atomic switch, the caught-up barrier.
 */
import { describe, expect, it } from "vitest";
import { createEvent, type RecordedEvent } from "../../src/events/index.js";
import { isApplyError, isConfigurationError, isValidationError } from "../../src/index.js";
import { MemoryEventStore } from "../../src/memory/index.js";
import { CachedReadModelStore, type Projection, Projector, type ReadModelStore } from "../../src/read-models/index.js";
import { MapReadModelStore } from "./test-stores.js";

interface Summary {
  customer: string;
  orders: number;
  total: number;
  positions: number[];
}

type Placed = { customer: string; amount: number };

function summaries(overrides: Partial<Projection<Summary, Placed>> = {}): Projection<Summary, Placed> {
  return {
    name: "summaries",
    modelType: "Summary",
    handles: ["order.placed", "customer.removed"],
    streamPrefix: "order-",
    id: (e) => e.data.customer,
    evolve: (m, e) =>
      e.type === "customer.removed"
        ? null
        : {
            customer: e.data.customer,
            orders: (m?.orders ?? 0) + 1,
            total: (m?.total ?? 0) + e.data.amount,
            positions: [...(m?.positions ?? []), e.globalPosition],
          },
    ...overrides,
  } as Projection<Summary, Placed>;
}

const place = (customer: string, amount: number) => createEvent("order.placed", { customer, amount });

/** The fold of the events, by plain code: what every model must equal. */
function fold(events: readonly RecordedEvent[]): Map<string, Summary> {
  const out = new Map<string, Summary>();
  for (const e of events) {
    if (!e.streamId.startsWith("order-")) continue;
    const d = e.data as Placed;
    if (e.type === "customer.removed") out.delete(d.customer);
    if (e.type !== "order.placed") continue;
    const m = out.get(d.customer);
    out.set(d.customer, {
      customer: d.customer,
      orders: (m?.orders ?? 0) + 1,
      total: (m?.total ?? 0) + d.amount,
      positions: [...(m?.positions ?? []), e.globalPosition],
    });
  }
  return out;
}

async function all(store: MemoryEventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (const s of await store.getStreams()) out.push(...(await store.readStream(s.streamId)));
  return out.sort((a, b) => a.globalPosition - b.globalPosition);
}

async function expectFolded(projector: Projector, events: MemoryEventStore): Promise<void> {
  const expected = fold(await all(events));
  expect((await projector.models.list("Summary")).sort()).toEqual([...expected.keys()].sort());
  for (const [id, m] of expected) expect((await projector.models.load<Summary>("Summary", id))?.model).toEqual(m);
}

/** A third-party wrapper: every call goes to `store`, which it names as `wrapped`. */
function passThrough(store: ReadModelStore): ReadModelStore {
  const methods = ["save", "load", "delete", "list", "query", "updateProjectionStatus", "getProjectionStatus"] as const;
  const optional = ["listProjectionStatuses", "deleteProjectionStatus", "saveWithCheckpoint"] as const;
  const out: Record<string | symbol, unknown> = { capabilities: store.capabilities, wrapped: store };
  for (const m of [...methods, ...optional]) {
    const f = store[m] as ((...args: unknown[]) => unknown) | undefined;
    if (typeof f === "function") out[m] = f.bind(store);
  }
  out.close = () => store.close();
  out[Symbol.asyncDispose] = () => store.close();
  return out as unknown as ReadModelStore;
}

export function describeProjector(name: string, makeStore: () => ReadModelStore): void {
  describe(`Projector on ${name}`, () => {
    it("folds history then live events into models, each event once; status up_to_date with no lag", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      await events.append("order-1", [place("ann", 10), place("bob", 5)]);
      await events.append("other", [place("ann", 1000)]);
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries()],
        batchSize: 2,
      });
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      await events.append("order-2", [place("ann", 7), createEvent("customer.removed", { customer: "bob" })]);
      await events.append("order-3", [place("cid", 1)]);
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      await expectFolded(projector, events);
      const status = projector.status("summaries");
      expect(status).toMatchObject({ status: "up_to_date", checkpoint: 6, lagEvents: 0, lagMs: 0 });
      expect(await readModels.getProjectionStatus("summaries")).toMatchObject({ status: "up_to_date", checkpoint: 6 });
      // The checkpoint advances over events the projection does not handle.
      await events.append("other", [place("zed", 1), place("zed", 2)]);
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect(projector.status("summaries").checkpoint).toBe(8);
      expect((await readModels.getProjectionStatus("summaries"))?.checkpoint).toBe(8);
    });

    it("restarting resumes from the checkpoint: nothing applied twice, nothing missed", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      for (let i = 0; i < 20; i++) await events.append(`order-${i % 3}`, [place(`c${i % 4}`, i)]);
      const first = await Projector.open({ eventStore: events, readModels, projections: [summaries()], batchSize: 3 });
      await first.waitForCatchUp({ timeoutMs: 5000 });
      await first.close();
      await events.append("order-x", [place("c1", 100), createEvent("customer.removed", { customer: "c2" })]);
      await using second = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries()],
        batchSize: 3,
      });
      await second.waitForCatchUp({ timeoutMs: 5000 });
      await expectFolded(second, events);
    });

    it("a failing evolve is retried, then only its projection is failed with error and position; resume continues", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      let broken = true;
      let calls = 0;
      const fragile = summaries({
        name: "fragile",
        modelType: "Fragile",
        evolve: (m, e) => {
          if (e.data.amount === 13) {
            calls++;
            if (broken) throw new Error("unlucky amount");
          }
          return summaries().evolve(m, e);
        },
      });
      await events.append("order-1", [place("ann", 1), place("ann", 13), place("ann", 2)]);
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries(), fragile],
        retry: { maxAttempts: 3, backoffMs: 1, maxBackoffMs: 2 },
      });
      const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(isApplyError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ entityType: "Fragile", entityId: "ann", message: /unlucky amount/ });
      await projector.waitForCatchUp({ projections: ["summaries"], timeoutMs: 5000 });
      expect(calls).toBe(3);
      const failed = projector.status("fragile");
      expect(failed).toMatchObject({ status: "failed", failedPosition: 2, checkpoint: 1 });
      expect(failed.lastError).toContain("unlucky amount");
      expect(await readModels.getProjectionStatus("fragile")).toMatchObject({ status: "failed", failedPosition: 2 });
      expect((await readModels.load<Summary>("Fragile", "ann"))?.model.total).toBe(1);
      expect(projector.status("summaries").status).toBe("up_to_date");
      broken = false;
      await projector.resume("fragile");
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect((await readModels.load<Summary>("Fragile", "ann"))?.model).toMatchObject({ orders: 3, total: 16 });
      expect(projector.status("fragile")).toMatchObject({ status: "up_to_date", checkpoint: 3 });
    });

    it("an evolve that returns undefined fails its projection at that event (only null deletes)", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      let calls = 0;
      // Forgot the customer.removed case: returns undefined for it.
      const forgetful = summaries({
        evolve: ((m: Summary | undefined, e: RecordedEvent<Placed>) => {
          if (e.type === "customer.removed") {
            calls++;
            return undefined;
          }
          return summaries().evolve(m, e);
        }) as Projection<Summary, Placed>["evolve"],
      });
      await events.append("order-1", [place("ann", 1), place("ann", 2)]);
      await events.append("order-1", [createEvent("customer.removed", { customer: "ann", amount: 0 })]);
      await events.append("order-1", [place("ann", 4)]);
      await using projector = await Projector.open({ eventStore: events, readModels, projections: [forgetful] });
      const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(isApplyError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ entityType: "Summary", entityId: "ann" });
      const cause = (error as Error).cause;
      expect(isValidationError(cause), String(cause)).toBe(true);
      expect(cause).toMatchObject({ field: "evolve" });
      expect((cause as Error).message).toContain(
        'returned undefined for the event "customer.removed" at global position 3',
      );
      expect(calls).toBe(1); // not retried: it would return undefined again
      expect(projector.status("summaries")).toMatchObject({ status: "failed", failedPosition: 3, checkpoint: 2 });
      // The model is not deleted: it holds the two orders before.
      expect((await readModels.load<Summary>("Summary", "ann"))?.model).toMatchObject({ orders: 2, total: 3 });
    });

    it("retry: false is one attempt: a failing evolve fails its projection at once", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      let calls = 0;
      const fragile = summaries({
        name: "fragile",
        modelType: "Fragile",
        evolve: () => {
          calls++;
          throw new Error("always");
        },
      });
      await events.append("order-1", [place("ann", 1)]);
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [fragile],
        retry: false,
      });
      await expect(projector.waitForCatchUp({ timeoutMs: 5000 })).rejects.toThrow(/always/);
      expect(calls).toBe(1);
      expect(projector.status("fragile").status).toBe("failed");
    });

    it("a write the store keeps refusing fails the projection: waitForCatchUp rejects with the store's error", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries()],
        retry: { maxAttempts: 2, backoffMs: 1, maxBackoffMs: 1 },
      });
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      const full = new Error("disk full");
      const refuse = async (): Promise<never> => {
        throw full;
      };
      readModels.save = refuse;
      readModels.updateProjectionStatus = refuse;
      if (readModels.saveWithCheckpoint) readModels.saveWithCheckpoint = refuse;
      await events.append("order-1", [place("ann", 1)]);
      // Not an ApplyError: the event was applied; the store refused what came of it.
      await expect(projector.waitForCatchUp({ timeoutMs: 5000 })).rejects.toBe(full);
      expect(projector.status("summaries")).toMatchObject({ status: "failed", checkpoint: 0, lastError: "disk full" });
    });

    it("reports catching_up with its lag while behind", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      await events.append("order-1", [place("ann", 1)], {});
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const slow = summaries({
        evolve: async (m, e) => {
          await gate;
          return summaries().evolve(m, e);
        },
      });
      await using projector = await Projector.open({ eventStore: events, readModels, projections: [slow] });
      await events.append("order-1", [place("ann", 2), place("ann", 3)]);
      const s = projector.status("summaries");
      expect(s.status).toBe("catching_up");
      expect(s.lagEvents).toBe(3);
      release();
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect(projector.status("summaries")).toMatchObject({ status: "up_to_date", lagEvents: 0 });
    });

    it("waitForCatchUp honours timeoutMs and its signal", async () => {
      const events = new MemoryEventStore();
      await events.append("order-1", [place("ann", 1)]);
      const stuck = summaries({ evolve: () => new Promise<never>(() => {}) });
      const projector = await Projector.open({ eventStore: events, readModels: makeStore(), projections: [stuck] });
      await expect(projector.waitForCatchUp({ timeoutMs: 20 })).rejects.toMatchObject({ code: "STATELOG_ABORTED" });
      const ac = new AbortController();
      const waiting = projector.waitForCatchUp({ signal: ac.signal });
      ac.abort();
      await expect(waiting).rejects.toMatchObject({ code: "STATELOG_ABORTED" });
      const timedOut = await projector.waitForCatchUp({ timeoutMs: 0 }).catch((e: unknown) => e);
      expect(timedOut).toMatchObject({ code: "STATELOG_ABORTED", cause: { name: "TimeoutError" } });
    });

    it("waitForCatchUp refuses a timeoutMs that is not a number >= 0, or a signal that is not a signal, with a ValidationError", async () => {
      const events = new MemoryEventStore();
      await using projector = await Projector.open({
        eventStore: events,
        readModels: makeStore(),
        projections: [summaries()],
      });
      for (const timeoutMs of [-1, Number.NaN, "5", null, -Infinity]) {
        const error = await projector.waitForCatchUp({ timeoutMs: timeoutMs as number }).catch((e: unknown) => e);
        expect(isValidationError(error), `${String(timeoutMs)}: ${String(error)}`).toBe(true);
        expect(error).toMatchObject({ field: "timeoutMs" });
      }
      const notSignal = await projector
        .waitForCatchUp({ signal: { aborted: false } as unknown as AbortSignal })
        .catch((e: unknown) => e);
      expect(notSignal).toMatchObject({ code: "STATELOG_VALIDATION", field: "signal" });
      // Infinity, or more than a timer takes, is no limit (not a time-out at once).
      await events.append("order-1", [place("ann", 1)]);
      await projector.waitForCatchUp({ timeoutMs: Number.POSITIVE_INFINITY });
      await projector.waitForCatchUp({ timeoutMs: 2 ** 40 });
    });

    it("a rebuild under load: reads see the old models until the switch, then the new ones, never a mix", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      for (let i = 0; i < 1000; i++) await events.append(`order-${i % 5}`, [place(`c${i % 10}`, 1)]);
      let version = 1;
      const versioned = summaries({
        // The version of the code that created the model: old models keep 1, the rebuilt ones get 2.
        evolve: (m, e) =>
          ({
            ...(summaries().evolve(m, e) as Summary),
            version: (m as { version?: number })?.version ?? version,
          }) as Summary,
      });
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [versioned],
        batchSize: 7,
      });
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      version = 2;
      const seen: number[][] = [];
      let appending = true;
      const load = (async () => {
        for (let i = 0; appending; i++) {
          await events.append(`order-${i % 5}`, [place(`c${i % 10}`, 1)]);
          const page = await projector.models.query<Summary & { version: number }>({
            modelType: "Summary",
            filters: [],
            sort: [],
          });
          seen.push([...new Set(page.items.map((m) => m.model.version))]);
          await new Promise((r) => setImmediate(r));
        }
      })();
      while (seen.length < 3) await new Promise((r) => setTimeout(r, 1));
      const rebuilt = projector.rebuild("summaries");
      expect(projector.status("summaries").status).toBe("rebuilding");
      await rebuilt;
      appending = false;
      await load;
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect(seen.every((versions) => versions.length === 1)).toBe(true);
      const switched = seen.findIndex((v) => v[0] === 2);
      const firstNew = switched === -1 ? seen.length : switched;
      expect(firstNew).toBeGreaterThan(2); // reads went on during the rebuild
      expect(seen.slice(0, firstNew).every((v) => v[0] === 1)).toBe(true);
      expect(seen.slice(firstNew).every((v) => v[0] === 2)).toBe(true);
      const page = await projector.models.query<Summary & { version: number }>({
        modelType: "Summary",
        filters: [],
        sort: [],
      });
      expect(page.items.every((m) => m.model.version === 2)).toBe(true);
      expect(page.items.every((m) => m.metadata.modelType === "Summary")).toBe(true);
      const expected = fold(await all(events));
      for (const m of page.items) expect(m.model.total).toBe(expected.get(m.metadata.id)?.total);
      expect(projector.status("summaries").status).toBe("up_to_date");
      expect(await readModels.getProjectionStatus("summaries")).toMatchObject({ status: "up_to_date" });
      // The old generation's models are removed.
      for (let i = 0; i < 100 && (await readModels.list("Summary")).length > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(await readModels.list("Summary")).toEqual([]);
      // A restart reads the new generation.
      await projector.close();
      await using again = await Projector.open({ eventStore: events, readModels, projections: [versioned] });
      await again.waitForCatchUp({ timeoutMs: 5000 });
      expect((await again.models.list("Summary")).length).toBe(10);
    });

    it("refuses a second open projector running one of its projections into the same store object", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      const first = await Projector.open({ eventStore: events, readModels, projections: [summaries()] });
      for (const again of [summaries(), summaries({ name: "renamed" }), summaries({ modelType: "Retyped" })]) {
        const error = await Projector.open({ eventStore: events, readModels, projections: [again] }).catch(
          (e: unknown) => e,
        );
        expect(isConfigurationError(error), String(error)).toBe(true);
        expect(String(error)).toMatch(/already runs into this read-model store in another open Projector/);
      }
      // Another projection into the same store runs; so does the same one into another store.
      await using other = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries({ name: "other", modelType: "Other" })],
      });
      await using elsewhere = await Projector.open({
        eventStore: events,
        readModels: makeStore(),
        projections: [summaries()],
      });
      await events.append("order-1", [place("ann", 3)]);
      await first.waitForCatchUp({ timeoutMs: 5000 });
      await other.waitForCatchUp({ timeoutMs: 5000 });
      await elsewhere.waitForCatchUp({ timeoutMs: 5000 });
      // Once the first one is closed, its projections may run again.
      await first.close();
      await using next = await Projector.open({ eventStore: events, readModels, projections: [summaries()] });
      await next.waitForCatchUp({ timeoutMs: 5000 });
      await expectFolded(next, events);
    });

    it("refuses a second projector into the store behind a cache, at any depth, and into a wrapper that names it", async () => {
      const events = new MemoryEventStore();
      const readModels = makeStore();
      const cache = await CachedReadModelStore.open({ store: readModels });
      const deeper = await CachedReadModelStore.open({ store: await CachedReadModelStore.open({ store: readModels }) });
      // A third-party wrapper declares the store it writes through to the same way.
      const wrapper = passThrough(cache);
      const refused = (into: ReadModelStore) =>
        Projector.open({ eventStore: events, readModels: into, projections: [summaries()] }).then(
          async (p) => {
            await p.close();
            return "opened";
          },
          (e: unknown) => (isConfigurationError(e) ? String(e) : `not a ConfigurationError: ${String(e)}`),
        );
      for (const [first, second] of [
        [cache, readModels],
        [readModels, cache],
        [cache, deeper],
        [deeper, readModels],
        [wrapper, readModels],
        [readModels, wrapper],
      ] as const) {
        const running = await Projector.open({ eventStore: events, readModels: first, projections: [summaries()] });
        expect(await refused(second)).toMatch(/already runs into this read-model store in another open Projector/);
        await running.close();
        expect(await refused(second)).toBe("opened");
      }
      // Through the cache, the projection runs as into the store.
      await using projector = await Projector.open({
        eventStore: events,
        readModels: deeper,
        projections: [summaries()],
      });
      await events.append("order-1", [place("ann", 3), place("bob", 4)]);
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      await expectFolded(projector, events);
    });

    it("refuses bad options with a ConfigurationError", async () => {
      const eventStore = new MemoryEventStore();
      const readModels = makeStore();
      const bad: unknown[] = [
        { eventStore, readModels, projections: [summaries()], batchSize: 0 },
        { eventStore, readModels, projections: [summaries(), summaries()] },
        { eventStore, readModels, projections: [summaries({ name: "a~b" })] },
        { eventStore, readModels, projections: [summaries({ handles: "x" as unknown as string[] })] },
        { eventStore, readModels, projections: [summaries()], retry: { maxAttempts: 0 } },
        { eventStore, readModels, projections: [summaries()], dir: "x" },
        { readModels, projections: [] },
      ];
      for (const options of bad) {
        const error = await Projector.open(options as never).catch((e: unknown) => e);
        expect(isConfigurationError(error), String(error)).toBe(true);
      }
    });

    it("refuses at open, naming the projection and the field, a definition a store or event store would refuse later", async () => {
      const events = new MemoryEventStore();
      await events.append("order-1", [place("ann", 1)]);
      const readModels = makeStore();
      const bad: [Partial<Projection<Summary, Placed>>, RegExp][] = [
        [
          { modelType: "orders/summary" },
          /projections\[0\]\.modelType \(projection "summaries"\) "orders\/summary".*"\/"/,
        ],
        [{ schemaVersion: 1.5 }, /projections\[0\]\.schemaVersion \(projection "summaries"\).*1\.5/],
        [{ schemaVersion: -1 }, /projections\[0\]\.schemaVersion \(projection "summaries"\)/],
        [{ stream: 42 as unknown as string }, /projections\[0\]\.stream \(projection "summaries"\) 42.*string/],
        [{ stream: "order-\u0001" }, /projections\[0\]\.stream \(projection "summaries"\).*control/],
        [{ streamPrefix: 7 as unknown as string }, /projections\[0\]\.streamPrefix \(projection "summaries"\).*7/],
        [{ name: "a\u0001b" }, /projections\[0\]\.name "a\\u0001b".*control/],
        // No room left for a rebuild's "~N": the store would refuse generation 1's name or model type.
        [
          { modelType: "m".repeat(239) },
          /projections\[0\]\.modelType \(projection "summaries"\) is 239 UTF-8 bytes: at most 238/,
        ],
        [{ name: "n".repeat(239) }, /projections\[0\]\.name is 239 UTF-8 bytes: at most 238/],
      ];
      for (const [override, message] of bad) {
        const error = await Projector.open({
          eventStore: events,
          readModels,
          projections: [summaries(override)],
        }).catch((e: unknown) => e);
        expect(isConfigurationError(error), `${JSON.stringify(override)}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toMatch(message);
      }
      // Valid ones still open: a stream id with "/", schemaVersion 0.
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries({ stream: "order-1/x", schemaVersion: 0 })],
      });
      await projector.waitForCatchUp({ timeoutMs: 5000 });
    });

    it("a projection with the longest name and model type it accepts rebuilds", async () => {
      const events = new MemoryEventStore();
      await events.append("order-1", [place("ann", 1)]);
      const readModels = makeStore();
      const name = "n".repeat(238);
      const modelType = "m".repeat(238);
      await using projector = await Projector.open({
        eventStore: events,
        readModels,
        projections: [summaries({ name, modelType })],
      });
      await projector.rebuild(name);
      await projector.waitForCatchUp({ timeoutMs: 5000 });
      expect(projector.status(name)).toMatchObject({ status: "up_to_date", checkpoint: 1 });
      expect(await readModels.load(`${modelType}~1`, "ann")).toBeDefined();
    });
  });
}

describeProjector("a Map store without atomic checkpoint", () => new MapReadModelStore(false));
describeProjector("a Map store with atomic checkpoint", () => new MapReadModelStore(true));
