/**
 * The event-store conformance suite (docs/events.md): one
 * set of tests every event store passes unchanged — memory, file, and
 * network backends. What a backend cannot do it declares in its
 * `capabilities` or in the options below; those tests show as skipped.
 */

import { Cursor, createEvent, type EventStore, type EventStoreOptions } from "../events/index.js";
import { ErrorCode } from "../index.js";
import { expectCode } from "./assert.js";
import {
  describeLifecycle,
  describeLimitsAndVersions,
  describeRetention,
  describeSubscriptions,
  describeValidation,
  sampleEvents,
} from "./event-store-areas.js";
import { describeFilteredSubscriptions } from "./event-store-filter-area.js";
import { describeEventStoreModel } from "./event-store-model.js";
import { checkContractOptions, uniqueName } from "./fixtures.js";
import { afterEach, describe, expect, it } from "./vitest.js";

export { sampleEvents } from "./event-store-areas.js";

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
   * Whether the store honours the `clock` option for retention. A backend whose
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
  /** Per-test timeout, in milliseconds. @default 30000 */
  timeoutMs?: number;
  /** Timeout of the model-based test, in milliseconds. @default 300000 */
  modelTimeoutMs?: number;
}

/** Creates a store with a given configuration; the suite passes limits, clocks and retention through it. */
export type EventStoreFactory = (config: EventStoreOptions) => EventStore | Promise<EventStore>;

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
  checkContractOptions("describeEventStoreContract", options, [
    "reopen",
    "settle",
    "clock",
    "retentionWaitMs",
    "modelRuns",
    "modelMaxOps",
    "timeoutMs",
    "modelTimeoutMs",
  ]);
  const timeout = options.timeoutMs ?? 30_000;
  const open: EventStore[] = [];
  const fakeClock = (options.clock ?? "fake") === "fake";

  async function fresh(config: EventStoreOptions = {}): Promise<EventStore> {
    const store = await factory(config);
    open.push(store);
    return store;
  }
  async function settled(store: EventStore): Promise<EventStore> {
    await options.settle?.(store);
    return store;
  }
  /** A fresh store with stream a (3 events) created before stream b (1 event), settled. */
  async function twoStreams(): Promise<{ store: EventStore; a: string; b: string }> {
    const store = await fresh();
    const a = uniqueName("a");
    const b = uniqueName("b");
    await store.append(a, sampleEvents("a", 3));
    await store.append(b, sampleEvents("b", 1));
    await settled(store);
    return { store, a, b };
  }

  describe(`EventStore contract: ${name}`, { timeout }, () => {
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });

    describe("append and read", () => {
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

      it("a cursor of another stream is a validation error in read, readStream and subscribe, any stream's in subscribeAll", async () => {
        const { store, a, b } = await twoStreams();
        const { cursor } = await store.read(a, 0, 2);
        await expectCode(store.read(b, cursor, 10), ErrorCode.Validation);
        await expectCode(store.readStream(b, cursor as unknown as number), ErrorCode.Validation);
        await expectCode(() => store.subscribe(b, cursor), ErrorCode.Validation);
        // subscribeAll takes a global position: a stream's cursor holds a position of its stream.
        await expectCode(() => store.subscribeAll(cursor), ErrorCode.Validation);
        expect((await store.read(a, cursor, 10)).events.map((e) => e.position)).toEqual([3]);
        expect((await store.read(b, { position: 0 }, 10)).events.map((e) => e.position)).toEqual([1]);
      });

      it("reading a missing stream is a not-found error", async () => {
        const store = await fresh();
        const s = uniqueName("missing");
        await expectCode(store.readStream(s), ErrorCode.NotFound);
        await expectCode(store.read(s, 0, 10), ErrorCode.NotFound);
        await expectCode(store.getStreamInfo(s), ErrorCode.NotFound);
      });

      it("formats a cursor as stream:<id> pos:<n> time:<RFC 3339>", () => {
        const c = new Cursor("user-stream", 0, new Date("2024-01-01T00:00:00Z"));
        expect(c.toString()).toBe("stream:user-stream pos:0 time:2024-01-01T00:00:00Z");
        expect(new Cursor("s", 7, new Date("2024-05-06T07:08:09.123Z")).toString()).toBe(
          "stream:s pos:7 time:2024-05-06T07:08:09Z",
        );
      });

      it("reports stream info and lists streams in creation order", async () => {
        const { store, a, b } = await twoStreams();
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

      it("an event's timestamp cannot be changed either: its setters throw, every reader keeps the stored time", async () => {
        const store = await fresh();
        const s = uniqueName("s");
        const at = new Date("2024-01-01T00:00:00.000Z");
        await store.append(s, [createEvent("t", {}, { timestamp: at })]);
        at.setTime(0); // the caller's Date is copied
        await settled(store);
        const [e] = await store.readStream(s);
        expect(e?.timestamp).toBeInstanceOf(Date);
        expect(() => e?.timestamp.setTime(Date.parse("2030-01-01T00:00:00Z"))).toThrow(TypeError);
        expect(() => e?.timestamp.setFullYear(2031)).toThrow(TypeError);
        const [subscribed] = await store.read(s, 0, 1).then((page) => page.events);
        expect(() => subscribed?.timestamp.setUTCHours(5)).toThrow(TypeError);
        expect((await store.readStream(s))[0]?.timestamp.toISOString()).toBe("2024-01-01T00:00:00.000Z");
        const inRange = await store.readTimeRange(new Date("2023-12-31T00:00:00Z"), new Date("2024-01-02T00:00:00Z"));
        expect(inRange.map((x) => x.streamId)).toContain(s);
        expect(JSON.stringify({ t: e?.timestamp })).toBe('{"t":"2024-01-01T00:00:00.000Z"}');
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
    describeFilteredSubscriptions(fresh, settled);
    describeRetention(fresh, settled, fakeClock, options.retentionWaitMs ?? 1500);
    describeLifecycle(fresh, settled, options.reopen, open);
    describeEventStoreModel(name, factory, {
      runs: options.modelRuns ?? 10_000,
      maxOps: options.modelMaxOps ?? 14,
      fakeClock,
      timeoutMs: options.modelTimeoutMs ?? 300_000,
    });
  });
}
