/**
 * The file event store's upkeep: what its index holds per event once
 * retention removed it, timed snapshots slower than their interval, and a
 * `clock` option that returns no valid Date.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent, type EventLog } from "../../src/events/index.js";
import { sizesHeld } from "../../src/events/log.js";
import { FileEventStore } from "../../src/file/index.js";

/** Writes of snapshot files, and a gate the next one waits at (when set). */
const writes = vi.hoisted(() => ({ count: 0, gate: undefined as Promise<void> | undefined }));

vi.mock("../../src/file/events/snapshot.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/file/events/snapshot.js")>();
  return {
    ...original,
    writeSnapshot: async (...args: Parameters<typeof original.writeSnapshot>) => {
      writes.count++;
      await writes.gate;
      return original.writeSnapshot(...args);
    },
  };
});

const base = await mkdtemp(join(tmpdir(), "statelog-events-upkeep-"));
let n = 0;
const newDir = () => join(base, `s${++n}`);

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

afterEach(() => {
  vi.useRealTimers();
  writes.count = 0;
  writes.gate = undefined;
});

const logOf = (store: FileEventStore) => (store as unknown as { log: EventLog }).log;

/** A gate: `open()` lets what waits at it go on. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

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
    expect(sizesHeld(logOf(store))).toBe(0);
    now += 10_000;
    expect(await store.applyRetention()).toBe(50);
    expect(sizesHeld(logOf(store))).toBe(0);
    expect(store.stats().memoryUsageBytes).toBe(0);
    await store.append("s", [createEvent("t", { i: 50 }, { timestamp: new Date(now) })]);
    expect(logOf(store).sizeAt(0)).toBeGreaterThan(0);
    expect(store.stats().memoryUsageBytes).toBe(logOf(store).sizeAt(0));
    await store.close();
  });
});

describe("FileEventStore timed snapshots", () => {
  it("a tick while a timed snapshot runs starts none: slow snapshots do not pile up", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const store = await FileEventStore.open({ directory: newDir(), sync: "none", snapshotIntervalMs: 1 });
    await store.append("s", [createEvent("t", 1)]);
    let started = 0;
    let last: Promise<unknown> = Promise.resolve();
    const target = store as unknown as { takeSnapshot: () => Promise<unknown> };
    const take = target.takeSnapshot.bind(store);
    target.takeSnapshot = () => {
      started++;
      last = take();
      return last;
    };
    const held = gate();
    writes.gate = held.promise;
    vi.advanceTimersByTime(1);
    for (let i = 0; i < 10 && writes.count === 0; i++) await new Promise((r) => setImmediate(r));
    expect([started, writes.count]).toEqual([1, 1]);
    // A hundred ticks while that snapshot is held at its write.
    vi.advanceTimersByTime(100);
    expect(started).toBe(1);
    writes.gate = undefined;
    held.open();
    await last;
    for (let i = 0; i < 100 && store.stats().snapshotsCreated === 0; i++) await new Promise((r) => setTimeout(r, 1));
    expect(store.stats().snapshotsCreated).toBe(1);
    // Once it settled, the next tick takes the next one.
    await new Promise((r) => setTimeout(r, 1));
    vi.advanceTimersByTime(1);
    expect(started).toBe(2);
    await store.close();
  });

  it("close() waits for the snapshot running only: the ones queued behind it fail with a ClosedError, unwritten", async () => {
    const store = await FileEventStore.open({ directory: newDir(), sync: "none", snapshotIntervalMs: 0 });
    await store.append("s", [createEvent("t", 1)]);
    const held = gate();
    writes.gate = held.promise;
    const first = store.snapshot();
    const queued = [store.snapshot(), store.snapshot(), store.snapshot()];
    const settled = queued.map((p) =>
      p.then(
        () => "written",
        (error: unknown) => error,
      ),
    );
    for (let i = 0; i < 10 && writes.count === 0; i++) await new Promise((r) => setImmediate(r));
    expect(writes.count).toBe(1);
    const closing = store.close();
    held.open();
    await closing;
    expect((await first).globalPosition).toBe(1);
    for (const outcome of await Promise.all(settled)) {
      expect(isStatelogError(outcome, ErrorCode.Closed), String(outcome)).toBe(true);
    }
    expect(writes.count).toBe(1);
  });
});

describe("FileEventStore clock option", () => {
  const bad: [string, () => unknown, RegExp][] = [
    ["a number", () => Date.now(), /clock must return a valid Date, got \d+/],
    ["a string", () => "2024-01-01", /clock must return a valid Date, got "2024-01-01"/],
    ["an Invalid Date", () => new Date(Number.NaN), /clock must return a valid Date, got an invalid Date/],
  ];
  for (const [what, clock, message] of bad) {
    it(`a clock returning ${what} fails the open with retention as a ConfigurationError naming the option`, async () => {
      const directory = newDir();
      const opening = FileEventStore.open({ directory, retentionDurationMs: 1000, clock: clock as () => Date });
      await expect(opening).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.Configuration));
      await expect(opening).rejects.toThrow(message);
      await expect(opening).rejects.toThrow(/FileEventStore option clock/);
      // Nothing is held: the directory opens again.
      const again = await FileEventStore.open({ directory });
      await again.close();
    });
  }
});

describe("FileEventStore without its snapshot (docs/events.md, A deleted snapshot)", () => {
  it("brings back the expired events of a partly expired segment, until retention expires them again, and forgets emptied streams", async () => {
    const directory = newDir();
    let now = Date.parse("2024-01-01T00:00:00Z");
    const options = (retentionDurationMs: number) => ({
      directory,
      sync: "none" as const,
      segmentBytes: 3000,
      snapshotIntervalMs: 0,
      retentionDurationMs,
      clock: () => new Date(now),
    });
    const store = await FileEventStore.open(options(100_000));
    for (let i = 0; i < 80; i++) {
      const streamId = i < 40 ? `old-${i % 3}` : `new-${i % 5}`;
      await store.append(streamId, [createEvent("t", { i, pad: "x".repeat(60) }, { timestamp: new Date(now) })]);
      now += 1000;
    }
    now += 100_000 - 80_000 + 50_000; // the first 50 expired
    expect(await store.applyRetention()).toBe(50);
    const kept = await store.readTimeRange(new Date(0), new Date(now));
    expect(kept.map((e) => e.globalPosition)).toEqual(Array.from({ length: 30 }, (_, i) => 51 + i));
    await store.close();
    const names = await readdir(directory);
    const firstSegment = Number(
      names
        .filter((f) => f.startsWith("segment-"))
        .sort()[0]
        ?.slice(8, -4),
    );
    // The oldest segment left was expired in part only.
    expect(firstSegment).toBeGreaterThan(1);
    expect(firstSegment).toBeLessThan(51);
    for (const f of names) if (f.startsWith("snapshot-")) await rm(join(directory, f));

    // Retention off: the expired events of that segment are back; the emptied streams are gone.
    const off = await FileEventStore.open(options(0));
    const all = await off.readTimeRange(new Date(0), new Date(now));
    expect(all[0]?.globalPosition).toBe(firstSegment);
    expect(all.length).toBe(80 - firstSegment + 1);
    expect((await off.getStreams()).map((s) => s.streamId).sort()).toEqual([
      "new-0",
      "new-1",
      "new-2",
      "new-3",
      "new-4",
    ]);
    await off.close();

    // Retention still in force: the open expires them again.
    const on = await FileEventStore.open(options(100_000));
    expect((await on.readTimeRange(new Date(0), new Date(now))).map((e) => e.globalPosition)).toEqual(
      kept.map((e) => e.globalPosition),
    );
    await on.close();
  });
});
