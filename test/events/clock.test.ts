/** The `clock` option of an event store: a value that is no valid Date is a ConfigurationError where it is used. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent, type EventStoreMetrics } from "../../src/events/index.js";
import { MemoryEventStore } from "../../src/memory/index.js";

afterEach(() => {
  vi.useRealTimers();
});

const bad: [string, () => unknown, RegExp][] = [
  ["a number", () => Date.now(), /MemoryEventStore option clock must return a valid Date, got \d+/],
  ["a string", () => "2024-01-01", /MemoryEventStore option clock must return a valid Date, got "2024-01-01"/],
  [
    "an Invalid Date",
    () => new Date(Number.NaN),
    /MemoryEventStore option clock must return a valid Date, got an invalid Date/,
  ],
];

describe("MemoryEventStore clock option", () => {
  for (const [what, clock, message] of bad) {
    it(`a clock returning ${what}: applyRetention() fails with a ConfigurationError naming the option, removing nothing`, async () => {
      const store = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: clock as () => Date });
      await store.append("s", [createEvent("t", 1, { timestamp: new Date(0) })]);
      const run = store.applyRetention();
      await expect(run).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.Configuration));
      await expect(run).rejects.toThrow(message);
      expect(store.stats().totalEvents).toBe(1);
      await store.close();
    });
  }

  it("on a timed retention run, the ConfigurationError goes to metrics.onBackgroundError", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const reported: Parameters<NonNullable<EventStoreMetrics["onBackgroundError"]>>[0][] = [];
    const store = await MemoryEventStore.open({
      retentionDurationMs: 1000,
      clock: () => new Date(Number.NaN),
      metrics: { onBackgroundError: (info) => reported.push(info) },
    });
    await store.append("s", [createEvent("t", 1, { timestamp: new Date(0) })]);
    vi.advanceTimersByTime(1000);
    for (let i = 0; i < 10 && reported.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(reported.map((r) => r.task)).toEqual(["retention"]);
    expect(isStatelogError(reported[0]?.error, ErrorCode.Configuration)).toBe(true);
    expect(String(reported[0]?.error)).toMatch(/option clock must return a valid Date, got an invalid Date/);
    expect(store.stats().totalEvents).toBe(1);
    await store.close();
  });

  it("a valid clock still drives retention", async () => {
    let now = 10_000;
    const store = await MemoryEventStore.open({ retentionDurationMs: 1000, clock: () => new Date(now) });
    await store.append("s", [createEvent("t", 1, { timestamp: new Date(0) })]);
    expect(await store.applyRetention()).toBe(1);
    now += 1;
    expect(await store.applyRetention()).toBe(0);
    await store.close();
  });
});
