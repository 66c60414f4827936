/**
 * The file event store's upkeep: what its index holds per event once
 * retention removed it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createEvent, type EventLog } from "../../src/events/index.js";
import { FileEventStore } from "../../src/file/index.js";

const base = await mkdtemp(join(tmpdir(), "statelog-events-upkeep-"));
let n = 0;
const newDir = () => join(base, `s${++n}`);

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const logOf = (store: FileEventStore) => (store as unknown as { log: EventLog }).log;

describe("FileEventStore index memory", () => {
  it("holds nothing per event in the base's sizes: appended and expired events leave no entry behind", async () => {
    let now = Date.parse("2024-01-01T00:00:00Z");
    const store = await FileEventStore.open({
      directory: newDir(),
      sync: "none",
      snapshotIntervalMs: 0,
      retentionDurationMs: 1000,
      clock: () => new Date(now),
    });
    for (let i = 0; i < 50; i++) {
      await store.append("s", [createEvent("t", { i }, { timestamp: new Date(now) })]);
      now += 100;
    }
    expect(logOf(store).sizesHeld).toBe(0);
    now += 10_000;
    expect(await store.applyRetention()).toBe(50);
    expect(logOf(store).sizesHeld).toBe(0);
    expect(store.stats().memoryUsageBytes).toBe(0);
    await store.append("s", [createEvent("t", { i: 50 }, { timestamp: new Date(now) })]);
    expect(logOf(store).sizeAt(0)).toBeGreaterThan(0);
    expect(store.stats().memoryUsageBytes).toBe(logOf(store).sizeAt(0));
    await store.close();
  });
});
