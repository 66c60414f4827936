import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/index.js";
import { FileErrorCode, FileEventStore, isLockedError, LockedError } from "../../src/file/index.js";
import { describeEventStoreContract } from "../../src/testing/event-store-contract.js";

const base = await mkdtemp(join(tmpdir(), "statelog-events-"));
let n = 0;
const dirOf = new WeakMap<object, string>();
const newDir = () => join(base, `s${++n}`);

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function openAt(directory: string, config: Parameters<typeof FileEventStore.open>[0] | object = {}) {
  const store = await FileEventStore.open({ ...config, directory });
  dirOf.set(store, directory);
  return store;
}

// The model-based test runs 2,000 schedules (500 with tiny segments) here (each opens a store in a new directory and fsyncs
// every append); the memory store runs 10,000 of the same schedules (test/events/memory.test.ts).
describeEventStoreContract("FileEventStore", (config) => openAt(newDir(), config), {
  modelRuns: 2_000,
  reopen: async (store) => {
    await store.close();
    return openAt(dirOf.get(store) as string);
  },
});
describeEventStoreContract(
  'FileEventStore (tiny segments, sync: "none")',
  (config) => openAt(newDir(), { ...config, segmentBytes: 300, sync: "none" }),
  {
    modelRuns: 500,
    reopen: async (store) => {
      await store.close();
      return openAt(dirOf.get(store) as string, { segmentBytes: 300, sync: "none" });
    },
  },
);

/**
 * Options of a store with 60 s of retention on a clock the test moves,
 * small segments, no fsync; `now()` is the clock's time.
 */
function retentionClock() {
  let now = Date.parse("2024-01-01T00:00:00Z");
  return {
    config: { retentionDurationMs: 60_000, clock: () => new Date(now), segmentBytes: 400, sync: "none" as const },
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("FileEventStore on disk", () => {
  const ev = (id: string, t = Date.parse("2024-01-01T00:00:00Z")) =>
    createEvent("t", { id }, { id, timestamp: new Date(t) });
  const segments = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith("segment-")).sort();

  it("drops a torn last line left by a crash and appends after it", async () => {
    const dir = newDir();
    const store = await openAt(dir);
    await store.append("s", [ev("a"), ev("b")]);
    await store.close();
    const [seg] = await segments(dir);
    const file = join(dir, seg as string);
    await writeFile(file, `${await readFile(file, "utf8")}{"g":3,"s":"s","p":3,"id":"c","ty`);
    const again = await openAt(dir);
    expect((await again.readStream("s")).map((e) => e.id)).toEqual(["a", "b"]);
    await again.append("s", [ev("d")]);
    await again.close();
    const third = await openAt(dir);
    expect((await third.readStream("s")).map((e) => [e.id, e.position])).toEqual([
      ["a", 1],
      ["b", 2],
      ["d", 3],
    ]);
    await third.close();
  });

  it("damage in the middle of the log is a corruption error naming file and line", async () => {
    const dir = newDir();
    const store = await openAt(dir);
    await store.append("s", [ev("a"), ev("b"), ev("c")]);
    await store.close();
    const [seg] = await segments(dir);
    const file = join(dir, seg as string);
    const lines = (await readFile(file, "utf8")).split("\n");
    lines[1] = (lines[1] as string).replace('"id":"b"', '"id":"x"');
    await writeFile(file, lines.join("\n"));
    let caught: unknown;
    await openAt(dir).catch((e) => {
      caught = e;
    });
    expect(isStatelogError(caught, ErrorCode.Corruption)).toBe(true);
    expect(caught).toMatchObject({ file, line: 2 });
  });

  it("one process at a time: a second open of the directory fails with a lock error", async () => {
    const dir = newDir();
    const store = await openAt(dir);
    let caught: unknown;
    await openAt(dir).catch((e) => {
      caught = e;
    });
    expect(isLockedError(caught)).toBe(true);
    expect(caught).toBeInstanceOf(LockedError);
    expect(caught).toMatchObject({ code: FileErrorCode.Locked, directory: dir });
    expect((caught as Error).message).toContain(dir);
    expect(isLockedError(new Error("x"))).toBe(false);
    // The refused open changed nothing: the first store still appends.
    await store.append("s", [ev("a")]);
    await store.close();
    await (await openAt(dir)).close();
  });

  it("writes a real snapshot atomically and reopens from it, reading only the index of the log it covers", async () => {
    const dir = newDir();
    const store = await openAt(dir);
    for (let i = 0; i < 20; i++) await store.append(`s${i % 3}`, [ev(`e${i}`)]);
    const info = await store.snapshot();
    expect(info).toMatchObject({ globalPosition: 20, events: 20 });
    expect(info.bytes).toBeGreaterThan(0);
    await store.append("s0", [ev("after")]);
    await store.close();
    const files = await readdir(dir);
    expect(files.filter((f) => f.startsWith("snapshot-"))).toEqual(["snapshot-0000000000000020.bin"]);
    expect(await segments(dir)).toEqual(["segment-0000000000000001.log", "segment-0000000000000021.log"]);
    expect(files.filter((f) => f.startsWith("index-")).sort()).toEqual([
      "index-0000000000000001.idx",
      "index-0000000000000021.idx",
    ]);
    // Damage a line of the covered segment (same length, same modification time): a reopen never reads it,
    // only the index; reading that event reports the damage.
    const file = join(dir, "segment-0000000000000001.log");
    const { atime, mtimeMs } = await stat(file);
    const lines = (await readFile(file, "utf8")).split("\n");
    lines[1] = (lines[1] as string).replace('"id":"e1"', '"id":"x1"');
    await writeFile(file, lines.join("\n"));
    await utimes(file, atime, mtimeMs / 1000); // seconds as a number: the time as it was, below the millisecond
    const again = await openAt(dir);
    expect((await again.readStream("s0")).map((e) => e.id)).toEqual([
      "e0",
      "e3",
      "e6",
      "e9",
      "e12",
      "e15",
      "e18",
      "after",
    ]);
    expect(again.stats()).toMatchObject({ totalEvents: 21, totalStreams: 3, globalPosition: 21 });
    const caught = await again.readStream("s1").catch((e: unknown) => e);
    expect(isStatelogError(caught, ErrorCode.Corruption)).toBe(true);
    expect((caught as Error).message).toContain("segment-0000000000000001.log");
    await again.close();
  });

  it("retention deletes whole expired segments and positions survive a reopen", async () => {
    const dir = newDir();
    const clock = retentionClock();
    const { config } = clock;
    const store = await openAt(dir, config);
    for (let i = 0; i < 10; i++) await store.append("old", [ev(`o${i}`, clock.now())]);
    clock.advance(120_000);
    await store.append("new", [ev("n0", clock.now())]);
    const before = (await segments(dir)).length;
    expect(await store.applyRetention()).toBe(10);
    const after = await segments(dir);
    expect(after.length).toBeLessThan(before);
    await store.close();
    const again = await openAt(dir, config);
    expect(await again.getStreamInfo("old")).toMatchObject({ eventCount: 0, lastPosition: 10, firstPosition: 11 });
    const r = await again.append("old", [ev("o10", clock.now())], { expectedVersion: 10 });
    expect(r).toMatchObject({ firstPosition: 11, globalPosition: 12 });
    await again.close();
  });

  it("after retention deleted a stream's segments, a reopen lists the streams in creation order still", async () => {
    const dir = newDir();
    const clock = retentionClock();
    const { config } = clock;
    const store = await openAt(dir, config);
    for (let i = 0; i < 3; i++) await store.append("a-old", [ev(`o${i}`, clock.now())]);
    await store.snapshot(); // a-old's events alone in the first segment
    clock.advance(120_000);
    for (let i = 0; i < 6; i++) await store.append("b-new", [ev(`n${i}`, clock.now())]);
    await store.applyRetention(); // a-old's segment goes
    const before = (await store.getStreams()).map((s) => s.streamId);
    await store.close();
    const again = await openAt(dir, config);
    expect(before).toEqual(["a-old", "b-new"]);
    expect((await again.getStreams()).map((s) => s.streamId)).toEqual(before);
    await again.close();
  });

  it("two retention runs at once: both succeed, each expired segment deleted once", async () => {
    const dir = newDir();
    let now = Date.parse("2024-01-01T00:00:00Z");
    const store = await openAt(dir, { retentionDurationMs: 1000, clock: () => new Date(now), segmentBytes: 500 });
    for (let i = 0; i < 10; i++) await store.append("s", [ev(`e${i}`, now + i * 100)]);
    now += 1_450;
    const first = store.applyRetention();
    now += 300;
    const second = store.applyRetention();
    const outcomes = await Promise.allSettled([first, second]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled"]);
    await store.close();
    const again = await openAt(dir, { retentionDurationMs: 0, segmentBytes: 500 });
    const left = (await again.readStream("s").catch(() => [])).map((e) => e.data);
    expect(left.length).toBeGreaterThan(0);
    await again.close();
  });

  it("segments that expired while the store was closed are deleted by the next retention run", async () => {
    const dir = newDir();
    const clock = retentionClock();
    const { config } = clock;
    const store = await openAt(dir, config);
    for (let i = 0; i < 10; i++) await store.append("old", [ev(`o${i}`, clock.now())]);
    await store.close();
    expect((await segments(dir)).length).toBeGreaterThan(2);
    clock.advance(120_000); // every event expired while the store was closed
    const again = await openAt(dir, config);
    expect(again.stats().totalEvents).toBe(0); // the open dropped them from the index
    expect(await again.applyRetention()).toBe(0);
    expect((await segments(dir)).length).toBeLessThanOrEqual(1); // and this run deleted their segments
    expect(await again.getStreamInfo("old")).toMatchObject({ eventCount: 0, lastPosition: 10 });
    await again.close();
  });
});

describe("FileEventStore segment rolls", () => {
  it("a roll that fails (the new segment cannot be made) fails its snapshot; appends go on in the segment", async () => {
    const dir = newDir();
    const store = await openAt(dir, {});
    await store.append("s", [createEvent("t", { n: 1 }), createEvent("t", { n: 2 })]);
    // A directory where the next segment file goes: open(2) fails with EISDIR.
    await mkdir(join(dir, "segment-0000000000000003.log"));
    const failed = await store.snapshot().catch((e: unknown) => e);
    expect(isStatelogError(failed, FileErrorCode.WriteFailed), String(failed)).toBe(true);
    // Appends go on in the segment, with a snapshot racing them (its roll names the segment after them).
    const appends = Array.from({ length: 20 }, (_, i) => store.append("s", [createEvent("t", { n: 3 + i })]));
    const racing = store.snapshot();
    await Promise.all(appends);
    await racing;
    await rm(join(dir, "segment-0000000000000003.log"), { recursive: true });
    await store.append("s", [createEvent("t", { n: 99 })]);
    await store.close();
    const reopened = await openAt(dir, {});
    expect((await reopened.readStream("s")).map((e) => (e.data as { n: number }).n)).toEqual([
      1,
      2,
      ...Array.from({ length: 20 }, (_, i) => 3 + i),
      99,
    ]);
    await reopened.close();
  });
});

describe("FileEventStore background work", () => {
  it("reports a failed timed snapshot to metrics.onBackgroundError and keeps running", async () => {
    const directory = join(base, `background-${Date.now()}`);
    const errors: { task: string; error: unknown }[] = [];
    const store = await FileEventStore.open({
      directory,
      snapshotIntervalMs: 30,
      metrics: { onBackgroundError: ({ task, error }) => errors.push({ task, error }) },
    });
    try {
      await store.append("s", [createEvent("t", { n: 1 })]);
      // Take the directory away: the next timed snapshot cannot be written.
      // (Retried: the store may create a file in it while it is being removed.)
      await rm(directory, { recursive: true, force: true, maxRetries: 10, retryDelay: 5 });
      const deadline = Date.now() + 5_000;
      while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(errors[0]?.task).toBe("snapshot");
      expect((errors[0]?.error as { errno?: string } | undefined)?.errno).toBe("ENOENT");
      expect((await store.readStream("s", 0)).map((e) => e.data)).toEqual([{ n: 1 }]);
    } finally {
      await store.close().catch(() => {});
    }
  });
});
