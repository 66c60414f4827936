/**
 * The areas of the event-store conformance suite (validation, limits and
 * versions, subscriptions, retention, lifecycle), registered by
 * `describeEventStoreContract`.
 */

import {
  Cursor,
  createEvent,
  EventErrorCode,
  type EventInput,
  type EventStore,
  type EventStoreOptions,
} from "../events/index.js";
import { ErrorCode, isStatelogError } from "../index.js";
import { expectCode } from "./assert.js";
import { uniqueName } from "./fixtures.js";
import { describe, expect, it } from "./vitest.js";

/** Closes `store` and opens it again on the same data. */
export type Reopen = (store: EventStore) => Promise<EventStore>;

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

export type Fresh = (config?: EventStoreOptions) => Promise<EventStore>;
export type Settle = (store: EventStore) => Promise<EventStore>;

export function describeValidation(fresh: Fresh, settled: Settle): void {
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
      const notSignal = { aborted: true } as unknown as AbortSignal;
      await expectCode(store.append(s, [good], { signal: notSignal }), ErrorCode.Validation);
      await expectCode(store.read(s, 1, 10, { signal: notSignal }), ErrorCode.Validation);
      await expectCode(store.readStream(s, 1, { signal: notSignal }), ErrorCode.Validation);
      await expectCode(() => store.subscribe(s, 0, { signal: notSignal }), ErrorCode.Validation);
      await expectCode(() => store.subscribeAll(0, { signal: notSignal }), ErrorCode.Validation);
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

export function describeLimitsAndVersions(fresh: Fresh, settled: Settle): void {
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

export function describeSubscriptions(fresh: Fresh, settled: Settle): void {
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

export function describeRetention(fresh: Fresh, settled: Settle, fakeClock: boolean, waitMs: number): void {
  describe("retention", () => {
    it("removes old events, never restarts positions, and tells a subscriber behind it", async (ctx) => {
      let now = Date.parse("2024-06-01T00:00:00Z");
      const retentionDurationMs = fakeClock ? 60_000 : waitMs;
      const store = await fresh({ retentionDurationMs, clock: () => new Date(now) });
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
      const store = await fresh({ retentionDurationMs: 1000, clock: () => new Date(now) });
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

    it("a subscription from 0 finding every event removed is caught up at the head and reports it", async (ctx) => {
      let now = Date.parse("2024-06-01T00:00:00Z");
      const store = await fresh({ retentionDurationMs: 1000, clock: () => new Date(now) });
      if (!store.capabilities.retention || !store.capabilities.applyRetention || !fakeClock) ctx.skip();
      const s = uniqueName("s");
      const at = (id: string) => createEvent("t", id, { id, timestamp: new Date(now) });
      await store.append(s, [at("a"), at("b")]);
      await store.append(uniqueName("other"), [at("c")]);
      now += 5000;
      expect(await store.applyRetention?.()).toBe(3);
      const head = store.stats().globalPosition;
      /** Subscribes from 0: caught up at `end`, which onCheckpoint reports. */
      const caughtUpAtHead = async (stream: string | undefined, end: number) => {
        const reported: number[] = [];
        const onCheckpoint = (position: number) => reported.push(position);
        const sub =
          stream === undefined ? store.subscribeAll(0, { onCheckpoint }) : store.subscribe(stream, 0, { onCheckpoint });
        const next = sub[Symbol.asyncIterator]().next();
        expect(await sub.caughtUp).toBe(true);
        expect(sub.position).toBe(end);
        expect(reported).toEqual([end]);
        return { sub, next };
      };
      const all = await caughtUpAtHead(undefined, head);
      const one = await caughtUpAtHead(s, 2);
      await store.append(s, [at("d")]);
      expect((await all.next).value?.globalPosition).toBe(head + 1);
      expect((await one.next).value?.position).toBe(3);
      all.sub.close();
      one.sub.close();
    });
  });
}

export function describeLifecycle(fresh: Fresh, settled: Settle, reopen: Reopen | undefined, open: EventStore[]): void {
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
      // Events read back from storage are as frozen as the ones appended: data and timestamps.
      const [first] = await again.readStream(s);
      expect(Object.isFrozen(first)).toBe(true);
      expect(() => first?.timestamp.setTime(0)).toThrow(TypeError);
      const r = await again.append(s, sampleEvents("c", 1), { expectedVersion: 5 });
      expect(r.lastPosition).toBe(6);
    });
  });
}
