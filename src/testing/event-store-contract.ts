/**
 * The event-store conformance suite (SEMANTICS.md, "The event store"): one
 * set of tests every event store passes unchanged — memory, file, and
 * network backends. What a backend cannot do it declares in its
 * `capabilities` or in the options below; those tests show as skipped.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../core/errors.js";
import { EventErrorCode } from "../events/errors.js";
import { Cursor, createEvent, type EventInput, type EventStore, type EventStoreConfig } from "../events/types.js";
import { describeEventStoreModel } from "./event-store-model.js";
import { uniqueName } from "./store-contract.js";

/** Options of {@link describeEventStoreContract}. */
export interface EventStoreContractOptions {
  /** Closes `store` and opens it again on the same data (a restart). Given for durable stores; enables the restart tests. */
  reopen?: (store: EventStore) => Promise<EventStore>;
  /**
   * Runs after writes and before the suite checks reads (a network backend
   * can wait for replication here). @default nothing
   */
  settle?: (store: EventStore) => Promise<void>;
  /**
   * Whether the store honours `config.clock` for retention. A backend whose
   * retention runs on a server clock (NATS `max_age`) says `"real"`: the
   * retention tests then use a retention of `retentionWaitMs` and wait for
   * it. @default "fake"
   */
  clock?: "fake" | "real";
  /** With `clock: "real"`: the retention duration the tests configure, in ms. @default 1500 */
  retentionWaitMs?: number;
  /** Schedules of the model-based test (random interleavings). @default 10000 */
  modelRuns?: number;
  /** Most operations in one schedule of the model-based test. @default 14 */
  modelMaxOps?: number;
  /** Per-test timeout in ms. @default 30000 */
  timeout?: number;
  /** Timeout of the model-based test in ms. @default 300000 */
  modelTimeout?: number;
}

/** Creates a store with a given configuration; the suite passes limits, clocks and retention through it. */
export type EventStoreFactory = (config: EventStoreConfig) => EventStore | Promise<EventStore>;

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<unknown> {
  let caught: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected an error with code ${code}`).toBeDefined();
  expect(isStatelogError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  return caught;
}

/** `n` events with ids `${prefix}-1`…, timestamps one second apart from `start`. */
export function sampleEvents(prefix: string, n: number, start = Date.parse("2024-01-01T00:00:00Z")): EventInput[] {
  return Array.from({ length: n }, (_, i) =>
    createEvent(
      "sample.happened",
      { n: i + 1, prefix },
      { id: `${prefix}-${i + 1}`, timestamp: new Date(start + i * 1000) },
    ),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Registers the event-store conformance tests for one backend.
 * @param name shown in the test names
 * @param factory creates a fresh store with the given configuration
 */
export function describeEventStoreContract(
  name: string,
  factory: EventStoreFactory,
  options: EventStoreContractOptions = {},
): void {
  const timeout = options.timeout ?? 30_000;
  const open: EventStore[] = [];
  const fakeClock = (options.clock ?? "fake") === "fake";

  async function fresh(config: EventStoreConfig = {}): Promise<EventStore> {
    const store = await factory(config);
    open.push(store);
    return store;
  }
  async function settled(store: EventStore): Promise<EventStore> {
    await options.settle?.(store);
    return store;
  }

  describe(`EventStore contract: ${name}`, { timeout }, () => {
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });

    describe("append and read (the seed's tests)", () => {
      it("reads appended events back in append order with 1-based positions and a global sequence", async () => {
        const store = await fresh();
        const a = uniqueName("a");
        const b = uniqueName("b");
        const r1 = await store.append(a, sampleEvents("a", 3));
        const r2 = await store.append(b, sampleEvents("b", 2));
        await store.append(a, sampleEvents("a2", 1));
        expect(r1).toMatchObject({ streamId: a, firstPosition: 1, lastPosition: 3 });
        expect(r2).toMatchObject({ streamId: b, firstPosition: 1, lastPosition: 2 });
        await settled(store);
        const events = await store.readStream(a, 0);
        expect(events.map((e) => e.id)).toEqual(["a-1", "a-2", "a-3", "a2-1"]);
        expect(events.map((e) => e.position)).toEqual([1, 2, 3, 4]);
        expect(events.every((e) => e.streamId === a)).toBe(true);
        const globals = events.map((e) => e.globalPosition);
        expect([...globals].sort((x, y) => x - y)).toEqual(globals);
        expect(new Set([...globals, ...(await store.readStream(b)).map((e) => e.globalPosition)]).size).toBe(6);
        expect(events[0]?.data).toEqual({ n: 1, prefix: "a" });
        expect(events[0]?.type).toBe("sample.happened");
        expect(events[0]?.timestamp.toISOString()).toBe("2024-01-01T00:00:00.000Z");
      });

      it("readStream(2) returns events 3..4: positions after fromPosition", async () => {
        const store = await fresh();
        const s = uniqueName("s");
        await store.append(s, sampleEvents("e", 4));
        await settled(store);
        expect((await store.readStream(s, 2)).map((e) => e.id)).toEqual(["e-3", "e-4"]);
        expect(await store.readStream(s, 4)).toEqual([]);
      });

      it("read pages with a cursor and a limit", async () => {
        const store = await fresh();
        const s = uniqueName("s");
        await store.append(s, sampleEvents("e", 5));
        await settled(store);
        const first = await store.read(s, new Cursor(s, 0), 2);
        expect(first.events.map((e) => e.position)).toEqual([1, 2]);
        expect(first.cursor.position).toBe(2);
        expect(first.cursor.timestamp.toISOString()).toBe("2024-01-01T00:00:01.000Z");
        const second = await store.read(s, first.cursor, 10);
        expect(second.events.map((e) => e.position)).toEqual([3, 4, 5]);
        const third = await store.read(s, second.cursor, 10);
        expect(third.events).toEqual([]);
        expect(third.cursor.position).toBe(5);
        await expectCode(store.read(s, 0, 0), ErrorCode.Validation);
        await expectCode(store.read(s, -1, 1), ErrorCode.Validation);
      });

      it("reading a missing stream is a not-found error", async () => {
        const store = await fresh();
        const s = uniqueName("missing");
        await expectCode(store.readStream(s), ErrorCode.NotFound);
        await expectCode(store.read(s, 0, 10), ErrorCode.NotFound);
        await expectCode(store.getStreamInfo(s), ErrorCode.NotFound);
      });

      it("formats a cursor like the seed", () => {
        const c = new Cursor("user-stream", 0, new Date("2024-01-01T00:00:00Z"));
        expect(c.toString()).toBe("stream:user-stream pos:0 time:2024-01-01T00:00:00Z");
        expect(new Cursor("s", 7, new Date("2024-05-06T07:08:09.123Z")).toString()).toBe(
          "stream:s pos:7 time:2024-05-06T07:08:09Z",
        );
      });

      it("reports stream info and lists streams in creation order", async () => {
        const store = await fresh();
        const a = uniqueName("a");
        const b = uniqueName("b");
        await store.append(a, sampleEvents("a", 3));
        await store.append(b, sampleEvents("b", 1));
        await settled(store);
        const info = await store.getStreamInfo(a);
        expect(info).toMatchObject({ streamId: a, eventCount: 3, firstPosition: 1, lastPosition: 3 });
        expect(info.firstEvent?.toISOString()).toBe("2024-01-01T00:00:00.000Z");
        expect(info.lastEvent?.toISOString()).toBe("2024-01-01T00:00:02.000Z");
        const ids = (await store.getStreams()).map((s) => s.streamId).filter((id) => id === a || id === b);
        expect(ids).toEqual([a, b]);
      });

      it("returns events that cannot be mutated and keeps its own copy of appended data", async () => {
        const store = await fresh();
        const s = uniqueName("s");
        const data = { nested: { v: 1 } };
        await store.append(s, [createEvent("t", data, { id: "x" })]);
        data.nested.v = 2;
        await settled(store);
        const [e] = await store.readStream(s);
        expect(e?.data).toEqual({ nested: { v: 1 } });
        const read = e?.data as { nested: { v: number } };
        expect(() => {
          read.nested.v = 3;
        }).toThrow();
        expect((await store.readStream(s))[0]?.data).toEqual({ nested: { v: 1 } });
      });
    });

    describe("time ranges and replay", () => {
      it("reads a time range across streams, inclusive, sorted by time then global position", async () => {
        const store = await fresh();
        const a = uniqueName("a");
        const b = uniqueName("b");
        const t = (s: number) => new Date(Date.parse("2024-03-01T00:00:00Z") + s * 1000);
        await store.append(a, [
          createEvent("t", 1, { id: "a5", timestamp: t(5) }),
          createEvent("t", 1, { id: "a1", timestamp: t(1) }),
        ]);
        await store.append(b, [
          createEvent("t", 1, { id: "b3", timestamp: t(3) }),
          createEvent("t", 1, { id: "b5", timestamp: t(5) }),
        ]);
        await store.append(a, [
          createEvent("t", 1, { id: "a9", timestamp: t(9) }),
          createEvent("t", 1, { id: "a0", timestamp: t(0) }),
        ]);
        await settled(store);
        const ids = (await store.readTimeRange(t(1), t(5))).map((e) => e.id);
        expect(ids).toEqual(["a1", "b3", "a5", "b5"]);
        expect((await store.readTimeRange(t(5), t(5))).map((e) => e.id)).toEqual(["a5", "b5"]);
        expect(await store.readTimeRange(t(10), t(20))).toEqual([]);
        await expectCode(store.readTimeRange(t(5), t(1)), ErrorCode.Validation);
        const replayed: string[] = [];
        for await (const e of store.replay(t(0), t(9))) replayed.push(e.id);
        expect(replayed).toEqual(["a0", "a1", "b3", "a5", "b5", "a9"]);
      });

      it("replay ends on break and on an abort signal", async () => {
        const store = await fresh();
        const s = uniqueName("s");
        await store.append(s, sampleEvents("e", 10));
        await settled(store);
        const from = new Date("2024-01-01T00:00:00Z");
        const to = new Date("2024-01-01T00:01:00Z");
        let n = 0;
        for await (const _ of store.replay(from, to)) if (++n === 3) break;
        expect(n).toBe(3);
        const ac = new AbortController();
        let m = 0;
        for await (const _ of store.replay(from, to, { signal: ac.signal })) if (++m === 4) ac.abort();
        expect(m).toBe(4);
      });
    });

    describeValidation(fresh, settled);
    describeLimitsAndVersions(fresh, settled);
    describeSubscriptions(fresh, settled);
    describeRetention(fresh, settled, fakeClock, options.retentionWaitMs ?? 1500);
    describeLifecycle(fresh, settled, options.reopen, open);
    describeEventStoreModel(name, factory, {
      runs: options.modelRuns ?? 10_000,
      maxOps: options.modelMaxOps ?? 14,
      fakeClock,
      timeout: options.modelTimeout ?? 300_000,
    });
  });
}

type Fresh = (config?: EventStoreConfig) => Promise<EventStore>;
type Settle = (store: EventStore) => Promise<EventStore>;

function describeValidation(fresh: Fresh, settled: Settle): void {
  describe("validation", () => {
    it("rejects a bad event with an error naming the field, and appends nothing of the batch", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await store.append(s, sampleEvents("ok", 1));
      const good = sampleEvents("g", 1)[0] as EventInput;
      const cases: [unknown, string, string][] = [
        [{ ...good, id: "" }, ErrorCode.Validation, "events[1].id"],
        [{ ...good, id: undefined }, ErrorCode.Validation, "events[1].id"],
        [{ ...good, type: undefined }, ErrorCode.Validation, "events[1].type"],
        [{ ...good, timestamp: undefined }, ErrorCode.Validation, "events[1].timestamp"],
        [{ ...good, timestamp: new Date(Number.NaN) }, ErrorCode.Validation, "events[1].timestamp"],
        [{ ...good, data: { big: 1n } }, ErrorCode.InvalidValue, "events[1].data.big"],
        [{ ...good, data: { f: () => 1 } }, ErrorCode.InvalidValue, "events[1].data.f"],
        [{ ...good, metadata: "x" }, ErrorCode.Validation, "events[1].metadata"],
        [null, ErrorCode.Validation, "events[1]"],
      ];
      for (const [bad, code, field] of cases) {
        const error = await expectCode(store.append(s, [good, bad as EventInput, good]), code);
        expect(String((error as Error).message)).toContain(field);
      }
      await expectCode(store.append("", [good]), ErrorCode.InvalidName);
      await expectCode(store.append("a\u0000b", [good]), ErrorCode.InvalidName);
      await expectCode(store.append(s, [{ ...good, data: "x".repeat(2 * 1024 * 1024) }]), ErrorCode.TooLarge);
      await expectCode(store.append(s, [good], { expectedVersion: -1 }), ErrorCode.Validation);
      await settled(store);
      expect((await store.readStream(s)).map((e) => e.id)).toEqual(["ok-1"]);
    });

    it("round-trips stream ids with slashes and Unicode, and metadata", async () => {
      const store = await fresh();
      const ids = [`users/${uniqueName("u")}/events`, `日本語-${uniqueName("x")}`, `emoji-😀-${uniqueName("y")}`];
      for (const id of ids) {
        await store.append(id, [createEvent("t", { id }, { id: "e1", metadata: { user: "u1", n: 2 } })]);
      }
      await settled(store);
      for (const id of ids) {
        const [e] = await store.readStream(id);
        expect(e?.streamId).toBe(id);
        expect(e?.data).toEqual({ id });
        expect(e?.metadata).toEqual({ user: "u1", n: 2 });
      }
    });

    it("an empty batch appends nothing and succeeds", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const r = await store.append(s, []);
      expect(r).toMatchObject({ firstPosition: 1, lastPosition: 0 });
      await expectCode(store.readStream(s), ErrorCode.NotFound);
    });
  });
}

function describeLimitsAndVersions(fresh: Fresh, settled: Settle): void {
  describe("limits and expected versions", () => {
    it("maxEventsPerStream is an error and a batch crossing it appends nothing", async (ctx) => {
      const store = await fresh({ maxEventsPerStream: 5 });
      if (!store.capabilities.limits) ctx.skip();
      const s = uniqueName("s");
      await store.append(s, sampleEvents("a", 3));
      const error = await expectCode(store.append(s, sampleEvents("b", 3)), ErrorCode.LimitExceeded);
      expect(error).toMatchObject({ limit: "maxEventsPerStream", max: 5 });
      await store.append(s, sampleEvents("c", 2));
      await expectCode(store.append(s, sampleEvents("d", 1)), ErrorCode.LimitExceeded);
      await settled(store);
      expect((await store.readStream(s)).map((e) => e.id)).toEqual(["a-1", "a-2", "a-3", "c-1", "c-2"]);
    });

    it("maxStreams is an error, never a redirect into another stream", async (ctx) => {
      const store = await fresh({ maxStreams: 2 });
      if (!store.capabilities.limits) ctx.skip();
      const [a, b, c] = [uniqueName("a"), uniqueName("b"), uniqueName("c")];
      await store.append(a, sampleEvents("a", 1));
      await store.append(b, sampleEvents("b", 1));
      const error = await expectCode(store.append(c, sampleEvents("c", 1)), ErrorCode.LimitExceeded);
      expect(error).toMatchObject({ limit: "maxStreams", max: 2 });
      await store.append(a, sampleEvents("a2", 1));
      await settled(store);
      expect((await store.readStream(a)).map((e) => e.id)).toEqual(["a-1", "a2-1"]);
      expect((await store.readStream(b)).map((e) => e.id)).toEqual(["b-1"]);
      await expectCode(store.readStream(c), ErrorCode.NotFound);
      expect(store.stats().totalStreams).toBe(2);
    });

    it("checks expected versions: a number, no_stream and stream_exists", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await expectCode(
        store.append(s, sampleEvents("x", 1), { expectedVersion: "stream_exists" }),
        ErrorCode.VersionConflict,
      );
      await store.append(s, sampleEvents("a", 2), { expectedVersion: "no_stream" });
      const conflict = await expectCode(
        store.append(s, sampleEvents("b", 1), { expectedVersion: 1 }),
        ErrorCode.VersionConflict,
      );
      expect(conflict).toMatchObject({ expected: 1, actual: 2 });
      const again = await expectCode(
        store.append(s, sampleEvents("b", 1), { expectedVersion: "no_stream" }),
        ErrorCode.VersionConflict,
      );
      expect(again).toMatchObject({ expected: "no_stream", actual: 2 });
      await store.append(s, sampleEvents("c", 1), { expectedVersion: 2 });
      await store.append(s, sampleEvents("d", 1), { expectedVersion: "stream_exists" });
      await settled(store);
      expect((await store.readStream(s)).map((e) => e.id)).toEqual(["a-1", "a-2", "c-1", "d-1"]);
    });

    it("concurrent appends get distinct, gap-free positions; of racing expected versions exactly one wins", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.append(s, sampleEvents(`p${i}`, 2))),
      );
      const positions = results.flatMap((r) => [r.firstPosition, r.lastPosition]).sort((a, b) => a - b);
      expect(positions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const racing = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => store.append(s, sampleEvents(`r${i}`, 1), { expectedVersion: 40 })),
      );
      expect(racing.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of racing)
        if (r.status === "rejected") expect(isStatelogError(r.reason, ErrorCode.VersionConflict)).toBe(true);
      await settled(store);
      expect((await store.readStream(s)).map((e) => e.position)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
    });
  });
}

function describeSubscriptions(fresh: Fresh, settled: Settle): void {
  describe("subscriptions", () => {
    it("delivers history from the cursor, signals caught-up, then live events", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await store.append(s, sampleEvents("h", 3));
      await settled(store);
      const sub = store.subscribe(s, new Cursor(s, 1));
      const seen: number[] = [];
      const done = (async () => {
        for await (const e of sub) {
          seen.push(e.position);
          if (seen.length === 4) break;
        }
      })();
      expect(await sub.caughtUp).toBe(true);
      expect(seen).toEqual([2, 3]);
      await store.append(s, sampleEvents("l", 2));
      await done;
      expect(seen).toEqual([2, 3, 4, 5]);
      expect(store.stats().subscriptionsActive).toBe(0);
    });

    it("a subscription to a stream that does not exist yet receives its first events", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const sub = store.subscribe(s);
      const it = sub[Symbol.asyncIterator]();
      const first = it.next();
      await store.append(s, sampleEvents("x", 1));
      expect((await first).value?.id).toBe("x-1");
      sub.close();
      expect((await it.next()).done).toBe(true);
    });

    it("ends on an abort signal and on close(), and a slow subscriber with a tiny buffer misses nothing", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const ac = new AbortController();
      const slow = store.subscribe(s, 0, { bufferSize: 2, signal: ac.signal });
      const other = store.subscribe(s, 0);
      expect(store.stats().subscriptionsActive).toBe(2);
      const writes = Promise.all(Array.from({ length: 30 }, (_, i) => store.append(s, sampleEvents(`w${i}`, 3))));
      const got: number[] = [];
      for await (const e of slow) {
        got.push(e.position);
        await new Promise((r) => setImmediate(r));
        if (got.length === 90) ac.abort();
      }
      await writes;
      expect(got).toEqual(Array.from({ length: 90 }, (_, i) => i + 1));
      const it = other[Symbol.asyncIterator]();
      expect((await it.next()).value?.position).toBe(1);
      const pending = it.next();
      other.close();
      const after = await pending;
      expect(after.done === true || after.value?.position === 2).toBe(true);
      expect((await it.next()).done).toBe(true);
      expect(store.stats().subscriptionsActive).toBe(0);
    });

    it("subscribeAll delivers every stream in global order, from a global position", async () => {
      const store = await fresh();
      const a = uniqueName("a");
      const b = uniqueName("b");
      const start = store.stats().globalPosition;
      await store.append(a, sampleEvents("a", 2));
      await store.append(b, sampleEvents("b", 2));
      await settled(store);
      const sub = store.subscribeAll(start + 1);
      const got: string[] = [];
      const done = (async () => {
        for await (const e of sub) {
          if (e.streamId === a || e.streamId === b) got.push(e.id);
          if (got.length === 5) break;
        }
      })();
      await sub.caughtUp;
      await store.append(a, sampleEvents("a3", 1));
      await store.append(b, sampleEvents("b3", 1));
      await done;
      expect(got).toEqual(["a-2", "b-1", "b-2", "a3-1", "b3-1"]);
    });

    it("closing the store ends its subscriptions", async () => {
      const store = await fresh();
      const sub = store.subscribe(uniqueName("s"));
      const it = sub[Symbol.asyncIterator]();
      const pending = it.next();
      expect(await sub.caughtUp).toBe(true);
      expect(sub.isLive).toBe(true);
      await store.close();
      expect((await pending).done).toBe(true);
      expect(sub.isLive).toBe(false);
    });
  });
}

function describeRetention(fresh: Fresh, settled: Settle, fakeClock: boolean, waitMs: number): void {
  describe("retention", () => {
    it("removes old events, never restarts positions, and tells a subscriber behind it", async (ctx) => {
      let now = Date.parse("2024-06-01T00:00:00Z");
      const retentionDuration = fakeClock ? 60_000 : waitMs;
      const store = await fresh({ retentionDuration, clock: () => new Date(now) });
      if (!store.capabilities.retention) ctx.skip();
      const s = uniqueName("s");
      const at = (t: number, id: string) => createEvent("t", id, { id, timestamp: new Date(t) });
      if (!fakeClock) now = Date.now();
      await store.append(s, [at(now, "old-1"), at(now, "old-2")]);
      const behind = store.subscribe(s, 0, { bufferSize: 1 });
      const it = behind[Symbol.asyncIterator]();
      expect((await it.next()).value?.id).toBe("old-1");
      if (fakeClock) {
        now += 61_000;
        await store.append(s, [at(now, "new-3")]);
        expect(await store.applyRetention?.()).toBe(2);
      } else {
        await sleep(waitMs * 2);
        now = Date.now();
        await store.append(s, [at(now, "new-3")]);
        await settled(store);
      }
      await expectCode(it.next(), EventErrorCode.BehindRetention);
      const info = await store.getStreamInfo(s);
      expect(info).toMatchObject({ eventCount: 1, firstPosition: 3, lastPosition: 3 });
      expect((await store.readStream(s, 0)).map((e) => [e.id, e.position])).toEqual([["new-3", 3]]);
      await expectCode(store.readStream(s, 1), EventErrorCode.BehindRetention);
      await store.append(s, [at(now, "new-4")]);
      expect((await store.readStream(s, 3)).map((e) => e.position)).toEqual([4]);
      expect(store.stats().totalEvents).toBeGreaterThanOrEqual(2);
    });

    it("a stream emptied by retention keeps its positions", async (ctx) => {
      let now = Date.parse("2024-06-01T00:00:00Z");
      const store = await fresh({ retentionDuration: 1000, clock: () => new Date(now) });
      if (!store.capabilities.retention || !store.capabilities.applyRetention || !fakeClock) ctx.skip();
      const s = uniqueName("s");
      await store.append(s, [createEvent("t", 1, { id: "a", timestamp: new Date(now) })]);
      now += 5000;
      await store.applyRetention?.();
      expect(await store.getStreamInfo(s)).toMatchObject({ eventCount: 0, firstPosition: 2, lastPosition: 1 });
      const r = await store.append(s, [createEvent("t", 1, { id: "b", timestamp: new Date(now) })], {
        expectedVersion: 1,
      });
      expect(r.firstPosition).toBe(2);
    });
  });
}

function describeLifecycle(
  fresh: Fresh,
  settled: Settle,
  reopen: EventStoreContractOptions["reopen"],
  open: EventStore[],
): void {
  describe("stats, metrics, snapshots, close", () => {
    it("counts what it says and calls the metrics collector", async () => {
      const calls: string[] = [];
      const store = await fresh({
        name: "metered",
        metrics: {
          onAppend: (i) => calls.push(`append:${i.count}:${i.store}`),
          onRead: (i) => calls.push(`read:${i.count}`),
        },
      });
      const s = uniqueName("s");
      const before = store.stats();
      await store.append(s, sampleEvents("e", 3));
      await store.append(s, [createEvent("t", { text: "x".repeat(10_000) }, { id: "big" })]);
      await settled(store);
      await store.readStream(s);
      const after = store.stats();
      expect(after.eventsAppended - before.eventsAppended).toBe(4);
      expect(after.eventsRead - before.eventsRead).toBe(4);
      expect(after.totalEvents - before.totalEvents).toBe(4);
      expect(after.memoryUsageBytes - before.memoryUsageBytes).toBeGreaterThan(10_000);
      expect(calls).toContain("append:3:metered");
      expect(calls).toContain("read:4");
      const snap = await store.snapshot();
      expect(snap.globalPosition).toBeGreaterThanOrEqual(4);
      expect(store.stats().snapshotsCreated).toBe(after.snapshotsCreated + 1);
    });

    it("after close every call fails with a closed-store error", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await store.append(s, sampleEvents("e", 1));
      await store.close();
      await store.close();
      await expectCode(store.append(s, sampleEvents("f", 1)), ErrorCode.Closed);
      await expectCode(store.read(s, 0, 1), ErrorCode.Closed);
      await expectCode(store.readStream(s), ErrorCode.Closed);
      await expectCode(store.readTimeRange(new Date(0), new Date()), ErrorCode.Closed);
      await expectCode(store.getStreamInfo(s), ErrorCode.Closed);
      await expectCode(store.getStreams(), ErrorCode.Closed);
      await expectCode(store.snapshot(), ErrorCode.Closed);
      await expectCode(() => store.subscribe(s), ErrorCode.Closed);
      await expectCode(() => store.subscribeAll(), ErrorCode.Closed);
      await expectCode(() => store.replay(new Date(0), new Date()), ErrorCode.Closed);
    });

    it("keeps events, positions and streams across a restart (after a snapshot too)", async (ctx) => {
      if (!reopen) return ctx.skip();
      const store = await fresh();
      const s = uniqueName("s");
      await store.append(s, sampleEvents("a", 3));
      await store.snapshot();
      await store.append(s, sampleEvents("b", 2));
      const again = await reopen(store);
      open.push(again);
      await settled(again);
      expect((await again.readStream(s)).map((e) => [e.id, e.position])).toEqual([
        ["a-1", 1],
        ["a-2", 2],
        ["a-3", 3],
        ["b-1", 4],
        ["b-2", 5],
      ]);
      const r = await again.append(s, sampleEvents("c", 1), { expectedVersion: 5 });
      expect(r.lastPosition).toBe(6);
    });
  });
}
