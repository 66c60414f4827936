import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent, EVENT_STORE_DEFAULTS, isBehindRetentionError } from "../../src/events/index.js";
import { MemoryEventStore } from "../../src/memory/index.js";
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

  it("rejects invalid options with a configuration error naming the store, the option and what it accepts", () => {
    expect(() => new MemoryEventStore({ maxStreams: -1 })).toThrow(/maxStreams/);
    expect(() => new MemoryEventStore({ retentionDurationMs: Number.NaN })).toThrow(/retentionDurationMs/);
    let caught: unknown;
    try {
      new MemoryEventStore({ maxEventsPerStream: 1.5 });
    } catch (error) {
      caught = error;
    }
    expect(isStatelogError(caught, ErrorCode.Configuration)).toBe(true);
    expect(String(caught)).toMatch(/MemoryEventStore option maxEventsPerStream must be an integer >= 0, got 1\.5/);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ snapshotIntervalMs: -1 }, /snapshotIntervalMs must be a finite number >= 0 and <= 2147483647, got -1/],
      [{ snapshotIntervalMs: 2 ** 31 }, /snapshotIntervalMs must be a finite number >= 0 and <= 2147483647/],
      [{ maxValueBytes: 0 }, /maxValueBytes must be an integer >= 1, got 0/],
      [{ clock: "now" }, /clock must be a function/],
      [{ metrics: 5 }, /metrics must be an object of optional hooks/],
      [{ name: "" }, /name must be a non-empty string/],
    ];
    for (const [options, message] of bad) {
      expect(() => new MemoryEventStore(options), JSON.stringify(options)).toThrow(message);
      expect(
        isStatelogError(
          catchError(() => new MemoryEventStore(options)),
          ErrorCode.Configuration,
        ),
      ).toBe(true);
    }
  });

  it("refuses unknown options, naming the new spelling of an old one", () => {
    const old = { retentionDuration: 1000 } as Record<string, unknown>;
    expect(() => new MemoryEventStore(old)).toThrow(
      /has no option retentionDuration; it is called retentionDurationMs/,
    );
    expect(() => new MemoryEventStore({ snapshotInterval: 5 } as Record<string, unknown>)).toThrow(
      /it is called snapshotIntervalMs/,
    );
    expect(() => new MemoryEventStore({ maxEventBytes: 5 } as Record<string, unknown>)).toThrow(
      /it is called maxValueBytes/,
    );
    const error = catchError(() => new MemoryEventStore({ typo: 1 } as Record<string, unknown>));
    expect(isStatelogError(error, ErrorCode.Configuration)).toBe(true);
    expect(String(error)).toMatch(/MemoryEventStore has no option typo \(its options: clock, maxEventsPerStream/);
  });

  it("open() returns an open store with the given options; defaults come from EVENT_STORE_DEFAULTS", async () => {
    await using store = await MemoryEventStore.open({ name: "opened", maxEventsPerStream: 1 });
    expect(store).toBeInstanceOf(MemoryEventStore);
    expect(store.name).toBe("opened");
    await store.append("s", [createEvent("t", 1)]);
    await expect(store.append("s", [createEvent("t", 2)])).rejects.toMatchObject({ code: ErrorCode.LimitExceeded });
    await using plain = await MemoryEventStore.open();
    expect(plain.name).toBe("memory-store");
    expect(EVENT_STORE_DEFAULTS).toEqual({
      maxEventsPerStream: 100_000,
      maxStreams: 10_000,
      retentionDurationMs: 0,
      snapshotIntervalMs: 3_600_000,
      maxValueBytes: 1024 * 1024,
    });
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

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}
