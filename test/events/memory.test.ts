import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent, isBehindRetentionError, MemoryEventStore } from "../../src/events/index.js";
import { describeEventStoreContract } from "../../src/testing/event-store-contract.js";

// The model-based test runs 10,000 schedules against the memory store.
describeEventStoreContract("MemoryEventStore", (config) => new MemoryEventStore(config), { modelRuns: 10_000 });

describe("MemoryEventStore extras", () => {
  it("createEvent fills in a unique id and the current time", () => {
    const before = Date.now();
    const a = createEvent("t", { x: 1 });
    const b = createEvent("t", { x: 1 });
    expect(a.id).not.toBe(b.id);
    expect(a.timestamp.getTime()).toBeGreaterThanOrEqual(before);
    expect(createEvent("t", 1, { id: "fixed", metadata: { m: 1 } })).toMatchObject({ id: "fixed", metadata: { m: 1 } });
  });

  it("rejects invalid configuration with a validation error naming the option", () => {
    expect(() => new MemoryEventStore({ maxStreams: -1 })).toThrow(/maxStreams/);
    expect(() => new MemoryEventStore({ retentionDurationMs: Number.NaN })).toThrow(/retentionDurationMs/);
    let caught: unknown;
    try {
      new MemoryEventStore({ maxEventsPerStream: 1.5 });
    } catch (error) {
      caught = error;
    }
    expect(isStatelogError(caught, ErrorCode.Validation)).toBe(true);
  });

  it("reports a subscriber ended by retention to metrics.onDropped, and a subscription iterates once", async () => {
    let now = Date.parse("2024-01-01T00:00:00Z");
    const dropped: unknown[] = [];
    await using store = new MemoryEventStore({
      retentionDurationMs: 1000,
      clock: () => new Date(now),
      metrics: { onDropped: (i) => dropped.push(i) },
    });
    await store.append("s", [
      createEvent("t", 1, { id: "a", timestamp: new Date(now) }),
      createEvent("t", 2, { id: "b", timestamp: new Date(now) }),
    ]);
    const sub = store.subscribe("s", 0, { bufferSize: 1 });
    const it = sub[Symbol.asyncIterator]();
    expect(() => sub[Symbol.asyncIterator]()).toThrow(/once/);
    expect((await it.next()).value?.id).toBe("a");
    now += 5000;
    await store.append("s", [createEvent("t", 3, { id: "c", timestamp: new Date(now) })]);
    expect(await store.applyRetention()).toBe(2);
    const error = await it.next().catch((e: unknown) => e);
    expect(isBehindRetentionError(error)).toBe(true);
    expect(error).toMatchObject({ streamId: "s", position: 1, firstAvailable: 3 });
    expect(dropped).toEqual([{ store: "memory-store", streamId: "s", position: 1, firstAvailable: 3 }]);
    expect(store.stats()).toMatchObject({ eventsExpired: 2, totalEvents: 1, subscriptionsActive: 0 });
  });
});
