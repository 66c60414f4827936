/**
 * The filtered-subscription area of the event-store conformance suite:
 * `subscribeAll(from, { types, streamPrefix, onCheckpoint })` delivers only
 * the matching events, with no gap and no duplicate, and its position (the
 * checkpoint to resume from) advances past the events it leaves out.
 */
import { createEvent, type EventStore, type RecordedEvent } from "../events/index.js";
import type { Fresh, Settle } from "./event-store-areas.js";
import { uniqueName } from "./fixtures.js";
import { describe, expect, it } from "./vitest.js";

/** Appends `type` events to `stream`, one per item of `ns`. */
async function put(store: EventStore, stream: string, type: string, ns: number[]): Promise<void> {
  await store.append(
    stream,
    ns.map((n) => createEvent(type, { n })),
  );
}

/** Reads `sub` until it holds `count` events. */
async function take(sub: AsyncIterable<RecordedEvent>, count: number): Promise<RecordedEvent[]> {
  const got: RecordedEvent[] = [];
  if (count === 0) return got;
  for await (const e of sub) {
    got.push(e);
    if (got.length === count) break;
  }
  return got;
}

export function describeFilteredSubscriptions(fresh: Fresh, settled: Settle): void {
  describe("filtered subscriptions", () => {
    it("subscribeAll with types and streamPrefix delivers only matching events, history then live, in order", async () => {
      const store = await fresh();
      const p = uniqueName("orders");
      const start = store.stats().globalPosition;
      await put(store, `${p}-1`, "order.placed", [1, 2]);
      await put(store, `${uniqueName("other")}`, "order.placed", [3]);
      await put(store, `${p}-2`, "order.paid", [4]);
      await put(store, `${p}-2`, "order.shipped", [5]);
      await settled(store);
      const sub = store.subscribeAll(start, { types: ["order.placed", "order.shipped"], streamPrefix: p });
      const history = take(sub, 4);
      expect(await sub.caughtUp).toBe(true);
      await put(store, `${p}-3`, "order.paid", [6]);
      await put(store, `${p}-3`, "order.placed", [7]);
      const got = await history;
      expect(got.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 5, 7]);
      expect(got.every((e) => e.streamId.startsWith(p))).toBe(true);
      const positions = got.map((e) => e.globalPosition);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(new Set(positions).size).toBe(positions.length);
    });

    it("its position advances past filtered-out events and onCheckpoint reports it, also when nothing matches", async () => {
      const store = await fresh();
      const p = uniqueName("none");
      const start = store.stats().globalPosition;
      await put(store, uniqueName("s"), "other.type", [1, 2, 3]);
      await settled(store);
      const reported: number[] = [];
      const sub = store.subscribeAll(start, { streamPrefix: p, onCheckpoint: (pos) => reported.push(pos) });
      const it = sub[Symbol.asyncIterator]();
      const next = it.next();
      expect(await sub.caughtUp).toBe(true);
      const head = store.stats().globalPosition;
      expect(head).toBe(start + 3);
      expect(sub.position).toBe(head);
      expect(reported).toEqual([head]);
      await put(store, uniqueName("s"), "other.type", [4]);
      await settled(store);
      for (let i = 0; i < 100 && sub.position < head + 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(sub.position).toBe(head + 1);
      expect(reported).toEqual([head, head + 1]);
      await put(store, `${p}-x`, "wanted", [5]);
      const first = await next;
      expect(first.value?.globalPosition).toBe(head + 2);
      // Resuming from the reported checkpoint delivers nothing twice.
      sub.close();
      const again = store.subscribeAll(head + 1, { streamPrefix: p });
      expect((await take(again, 1)).map((e) => e.globalPosition)).toEqual([head + 2]);
    });

    it("subscribe(streamId) honours types too, and a bad filter is a ValidationError", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await put(store, s, "a", [1]);
      await put(store, s, "b", [2]);
      await put(store, s, "a", [3]);
      await settled(store);
      const got = await take(store.subscribe(s, 0, { types: ["a"] }), 2);
      expect(got.map((e) => e.position)).toEqual([1, 3]);
      expect(() => store.subscribeAll(0, { types: "a" as unknown as string[] })).toThrow(/types/);
      expect(() => store.subscribeAll(0, { types: [""] })).toThrow(/types/);
      expect(() => store.subscribeAll(0, { streamPrefix: 1 as unknown as string })).toThrow(/streamPrefix/);
    });
  });
}
