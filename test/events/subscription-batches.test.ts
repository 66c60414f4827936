import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent, type RecordedEvent } from "../../src/events/index.js";
import { MemoryEventStore } from "../../src/memory/index.js";

const events = (type: string, n: number) => Array.from({ length: n }, (_, i) => createEvent(type, { i }));

describe("EventSubscription.nextBatch", () => {
  it("delivers every event once, in order, a buffer at a time, then waits for new ones and ends with []", async () => {
    const store = new MemoryEventStore();
    await store.append("s-1", events("a", 300));
    const sub = store.subscribeAll(0, { bufferSize: 128 });
    const next = sub.nextBatch;
    expect(typeof next).toBe("function");
    const seen: RecordedEvent[] = [];
    while (seen.length < 300) {
      const batch = await sub.nextBatch?.();
      expect(batch?.length).toBeGreaterThan(0);
      expect(batch?.length).toBeLessThanOrEqual(128);
      seen.push(...(batch ?? []));
    }
    expect(seen.map((e) => e.globalPosition)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(sub.position).toBe(300);
    const waiting = sub.nextBatch?.();
    expect(await sub.caughtUp).toBe(true);
    expect(sub.isLive).toBe(true);
    await store.append("s-2", events("a", 2));
    expect((await waiting)?.map((e) => e.globalPosition)).toEqual([301, 302]);
    const ended = sub.nextBatch?.();
    sub.close();
    expect(await ended).toEqual([]);
    expect(await sub.nextBatch?.()).toEqual([]);
    await store.close();
  });

  it("leaves out filtered events, moves its position past them and reports the checkpoint when only they remain", async () => {
    const store = new MemoryEventStore();
    await store.append("keep-1", events("a", 3));
    await store.append("other-1", events("a", 2));
    await store.append("keep-2", events("b", 2));
    const checkpoints: number[] = [];
    const sub = store.subscribeAll(0, {
      streamPrefix: "keep-",
      types: ["a"],
      onCheckpoint: (p) => checkpoints.push(p),
    });
    const batch = await sub.nextBatch?.();
    expect(batch?.map((e) => [e.streamId, e.globalPosition])).toEqual([
      ["keep-1", 1],
      ["keep-1", 2],
      ["keep-1", 3],
    ]);
    expect(sub.position).toBe(7);
    const waiting = sub.nextBatch?.();
    await new Promise((r) => setTimeout(r, 10));
    expect(checkpoints).toEqual([7]);
    await store.append("keep-3", events("a", 1));
    expect((await waiting)?.map((e) => e.globalPosition)).toEqual([8]);
    sub.close();
    await store.close();
  });

  it("is read either with nextBatch or with for await, not both", async () => {
    const store = new MemoryEventStore();
    await store.append("s", events("a", 1));
    const batched = store.subscribeAll(0);
    await batched.nextBatch?.();
    let caught: unknown;
    try {
      batched[Symbol.asyncIterator]();
    } catch (error) {
      caught = error;
    }
    expect(isStatelogError(caught, ErrorCode.Validation)).toBe(true);
    const iterated = store.subscribeAll(0);
    iterated[Symbol.asyncIterator]();
    expect(() => iterated.nextBatch?.()).toThrow(/only once/);
    batched.close();
    iterated.close();
    await store.close();
  });
});
