/**
 * How snapshots are read and rewritten: the file snapshot store's cache of
 * what it read, the memory snapshot store's copies, and which loads of the
 * repository rewrite a snapshot.
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { EventStore } from "../../src/events/index.js";
import { FILE_SNAPSHOT_STORE_DEFAULTS, FileSnapshotStore } from "../../src/file/index.js";
import { AbortError, ErrorCode, isStatelogError, sleep, UnavailableError } from "../../src/index.js";
import { MemoryEventStore, MemorySnapshotStore } from "../../src/memory/index.js";
import {
  type AggregateSnapshot,
  EventSourcedRepository,
  type SnapshotErrorInfo,
  type SnapshotStore,
} from "../../src/repository/index.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "statelog-snapshot-reads-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** `store` with one method replaced (the others bound to the store). */
function withMethod<S extends object>(store: S, key: string, method: (...args: never[]) => unknown): S {
  return new Proxy(store, {
    get(target, k, receiver) {
      if (k === key) return method;
      const value = Reflect.get(target, k, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A snapshot of the tally aggregate "1" at `version`, counting `version`. */
const tallyAt = (version: number): AggregateSnapshot => ({
  streamId: "tally-1",
  version,
  snapshotVersion: 1,
  state: { count: version },
  createdAt: new Date(),
});

const snap = (version: number, state: unknown): AggregateSnapshot => ({
  streamId: "order-1",
  version,
  snapshotVersion: 1,
  state,
  createdAt: new Date(1_000 + version),
});

describe("FileSnapshotStore reads", () => {
  it("refuses a bad maxCachedStreams with a ConfigurationError; the default is 1024", async () => {
    const parent = await tempDir();
    for (const value of [-1, 1.5, "10"]) {
      const caught = await FileSnapshotStore.open({
        directory: join(parent, "x"),
        maxCachedStreams: value as never,
      }).catch((e: unknown) => e);
      expect(isStatelogError(caught, ErrorCode.Configuration)).toBe(true);
      expect(String(caught)).toMatch(/FileSnapshotStore option maxCachedStreams must be an integer >= 0/);
    }
    expect(await readdir(parent)).toEqual([]);
    expect(FILE_SNAPSHOT_STORE_DEFAULTS.maxCachedStreams).toBe(1024);
  });

  it("every load returns a state of its own, also when served from memory", async () => {
    const store = await FileSnapshotStore.open({ directory: await tempDir() });
    await store.save(snap(2, { items: [1, 2] }));
    const first = await store.load("order-1");
    (first as AggregateSnapshot<{ items: number[] }>).state.items.push(99);
    const second = await store.load("order-1");
    expect(second).toEqual(snap(2, { items: [1, 2] }));
    expect(second?.createdAt).not.toBe(first?.createdAt);
    await store.close();
  });

  it("its own save drops what it read: the next load reads the file, with another process's newer snapshot", async () => {
    const directory = await tempDir();
    const a = await FileSnapshotStore.open({ directory });
    const b = await FileSnapshotStore.open({ directory });
    await a.save(snap(2, { n: 2 }));
    expect((await a.load("order-1"))?.version).toBe(2);
    await b.save(snap(5, { n: 5 }));
    await a.save(snap(3, { n: 3 }));
    expect((await a.load("order-1"))?.state).toEqual({ n: 5 });
    expect((await a.load("order-1", { maxVersion: 4 }))?.state).toEqual({ n: 3 });
    expect(await a.delete("order-1")).toBe(true);
    expect(await a.load("order-1")).toBeUndefined();
    await a.close();
    await b.close();
  });

  it("maxCachedStreams 0 reads the file on every load: a file damaged after a load is a CorruptionError", async () => {
    const directory = await tempDir();
    const store = await FileSnapshotStore.open({ directory, maxCachedStreams: 0 });
    await store.save(snap(2, { ok: 1 }));
    expect((await store.load("order-1"))?.version).toBe(2);
    const [file] = await readdir(directory);
    await writeFile(join(directory, file as string), "{ not json");
    const error = await store.load("order-1").catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.Corruption)).toBe(true);
    await store.close();
  });

  it("keeps at most maxCachedStreams streams in memory, and still loads the others from their files", async () => {
    const store = await FileSnapshotStore.open({ directory: await tempDir(), maxCachedStreams: 2 });
    for (let i = 0; i < 5; i++) await store.save({ ...snap(i + 1, { i }), streamId: `order-${i}` });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) expect((await store.load(`order-${i}`))?.state).toEqual({ i });
    }
    await store.close();
  });
});

describe("MemorySnapshotStore copies", () => {
  it("copies plain states and other states as structuredClone does, never handing out the stored one", async () => {
    const store = await MemorySnapshotStore.open();
    const shared = { n: 1 };
    const sparseArray: unknown[] = [1];
    sparseArray[2] = 3;
    const states: unknown[] = [
      { items: [1, 2, { deep: [3] }], name: "x", none: null, missing: undefined },
      { a: shared, b: shared },
      { at: new Date(5), tags: new Map([["k", new Set([1])]]) },
      sparseArray,
    ];
    for (const [i, state] of states.entries()) {
      await store.save({ ...snap(i + 1, state), streamId: `s-${i}` });
      const first = await store.load(`s-${i}`);
      expect(first?.state).toEqual(structuredClone(state));
      expect(first?.state).not.toBe(state);
      const second = await store.load(`s-${i}`);
      expect(second?.state).not.toBe(first?.state);
    }
    const sharedCopy = (await store.load("s-1"))?.state as { a: object; b: object };
    expect(sharedCopy.a).toBe(sharedCopy.b);
    const sparse = (await store.load("s-3"))?.state as unknown[];
    expect(1 in sparse).toBe(false);
    const plain = (await store.load("s-0"))?.state as { items: unknown[] };
    plain.items.push(4);
    expect((await store.load("s-0"))?.state).toMatchObject({ items: [1, 2, { deep: [3] }] });
    await store.close();
  });
});

type Tally = { count: number };
type Added = { type: "added"; data: { n: number } };

/** A snapshot store that counts saves (and can hold them until released). */
function countingSnapshots(inner: SnapshotStore) {
  const saves: number[] = [];
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  const store: SnapshotStore = {
    capabilities: inner.capabilities,
    async save(snapshot, options) {
      saves.push(snapshot.version);
      if (held) await held;
      await inner.save(snapshot, options);
    },
    load: (streamId, options) => inner.load(streamId, options),
    delete: (streamId, options) => inner.delete(streamId, options),
    close: () => inner.close(),
    [Symbol.asyncDispose]: () => inner.close(),
  };
  return {
    store,
    saves,
    hold() {
      held = new Promise((resolve) => {
        release = resolve;
      });
    },
    release() {
      release?.();
      held = undefined;
    },
  };
}

describe("EventSourcedRepository snapshot rewrites", () => {
  const open = async (snapshots: SnapshotStore) =>
    EventSourcedRepository.open<Tally, Added>({
      eventStore: await MemoryEventStore.open(),
      snapshots,
      snapshotEvery: 4,
      aggregateType: "tally",
      initialState: () => ({ count: 0 }),
      evolve: (s, e) => ({ count: s.count + e.data.n }),
    });
  const added = (k: number): Added[] => Array.from({ length: k }, () => ({ type: "added", data: { n: 1 } }));
  /** A tally repository on `eventStore` next to `snapshots`, its snapshot errors pushed to `reports`. */
  const tallies = (snapshots: SnapshotStore, reports: SnapshotErrorInfo[]) => (eventStore: EventStore) =>
    EventSourcedRepository.open<Tally, Added>({
      eventStore,
      snapshots,
      aggregateType: "tally",
      initialState: () => ({ count: 0 }),
      evolve: (s, e) => ({ count: s.count + e.data.n }),
      onSnapshotError: (report) => reports.push(report),
    });

  it("a snapshot ahead of its stream (an event store made anew) is reported and not used: loads replay, commands go on", async () => {
    const snapshots = new MemorySnapshotStore();
    const reports: SnapshotErrorInfo[] = [];
    const repoOn = tallies(snapshots, reports);
    const before = await repoOn(await MemoryEventStore.open());
    await before.save("1", added(6), { createSnapshot: true });
    await before.flushSnapshots();
    expect((await snapshots.load("tally-1"))?.version).toBe(6);
    await before.close();
    // The same snapshots next to an event store that lost the stream's events (or was made anew).
    const after = await repoOn(await MemoryEventStore.open());
    await expect(after.load("1")).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.NotFound));
    const handled = await after.handle("1", () => added(1));
    expect([handled.version, handled.state]).toEqual([1, { count: 1 }]);
    const loaded = await after.load("1");
    expect([loaded.version, loaded.state, loaded.snapshotVersionAt]).toEqual([1, { count: 1 }, 0]);
    // Reported once: the first load deleted the stream's snapshots.
    expect(reports.length).toBe(1);
    expect(reports[0]).toMatchObject({ operation: "load", streamId: "tally-1" });
    expect(String((reports[0] as { error: unknown }).error)).toContain("version 6 (the snapshot's) of stream");
    await after.close();
    expect(await snapshots.load("tally-1")).toBeUndefined();
    // The stream's info cannot be had (another error than a missing stream): the load fails, nothing is assumed.
    const failing = await MemoryEventStore.open();
    const writer = await repoOn(failing);
    await writer.save("1", added(6), { createSnapshot: false });
    await writer.close();
    await snapshots.save(tallyAt(9));
    const unavailable = withMethod(failing, "getStreamInfo", async () =>
      Promise.reject(new UnavailableError("event store unreachable")),
    );
    const third = await repoOn(unavailable);
    await expect(third.load("1")).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.Unavailable));
    await third.close();
  });

  it("an event store whose reads lag another process's appends catches up before a snapshot counts as ahead", async () => {
    const snapshots = new MemorySnapshotStore();
    const writerReports: SnapshotErrorInfo[] = [];
    const readerReports: SnapshotErrorInfo[] = [];
    const shared = await MemoryEventStore.open();
    // The reader's view of `shared`: it sees another process's appends only after catchUp(), as the NATS store's index.
    const view = await MemoryEventStore.open();
    let catchUps = 0;
    const lagging = withMethod(view, "catchUp", async () => {
      catchUps++;
      for (const info of await shared.getStreams()) {
        const seen = await view.getStreamInfo(info.streamId).then(
          (i) => i.lastPosition,
          () => 0,
        );
        const missing = await shared.readStream(info.streamId, seen);
        if (missing.length > 0)
          await view.append(
            info.streamId,
            missing.map(({ id, type, data, timestamp }) => ({ id, type, data, timestamp })),
          );
      }
    });
    const writer = await tallies(snapshots, writerReports)(shared);
    const reader = await tallies(snapshots, readerReports)(lagging);
    // A stream the reader has not seen at all, with a snapshot: not a stream "made anew".
    await writer.save("1", added(3), { createSnapshot: true });
    await writer.flushSnapshots();
    const first = await reader.load("1");
    expect([first.version, first.state, first.snapshotVersionAt]).toEqual([3, { count: 3 }, 3]);
    // A stream the reader has seen in part: the snapshot of the events it has not seen yet is not "ahead".
    await writer.save("1", added(2), { createSnapshot: true });
    await writer.flushSnapshots();
    const second = await reader.load("1");
    await reader.flushSnapshots();
    expect([second.version, second.state, second.snapshotVersionAt]).toEqual([5, { count: 5 }, 5]);
    expect(catchUps).toBe(2);
    expect(readerReports).toEqual([]);
    expect((await snapshots.load("tally-1"))?.version).toBe(5);
    expect((await snapshots.load("tally-1", { maxVersion: 4 }))?.version).toBe(3);
    // A stream really behind its snapshot after catching up: reported and deleted as before, one catch-up per load.
    await snapshots.save(tallyAt(9));
    const third = await reader.load("1");
    expect([third.version, third.snapshotVersionAt]).toEqual([5, 0]);
    expect(catchUps).toBe(3);
    expect(readerReports.map((r) => r.operation)).toEqual(["load"]);
    await reader.close();
    await writer.close();
  });

  it("a load's signal ends the event store's catch-up (an AbortError, not a wait for the store)", async () => {
    const snapshots = new MemorySnapshotStore();
    await snapshots.save(tallyAt(3));
    // An event store that never catches up unless the call's signal ends the wait.
    const stuck = withMethod(
      await MemoryEventStore.open(),
      "catchUp",
      (options?: { signal?: AbortSignal }) =>
        new Promise<void>((_resolve, reject) =>
          options?.signal?.addEventListener("abort", () => reject(new AbortError(options.signal?.reason))),
        ),
    );
    const repo = await tallies(snapshots, [])(stuck);
    const abort = new AbortController();
    const load = repo.load("1", { signal: abort.signal }).catch((error: unknown) => error);
    setTimeout(() => abort.abort(), 50);
    const outcome = await Promise.race([load, sleep(5_000).then(() => "still waiting")]);
    expect(isStatelogError(outcome, ErrorCode.Aborted), String(outcome)).toBe(true);
    await repo.close();
  });

  it("a stream found behind its snapshot that grows back past the snapshot's version folds its own events", async () => {
    const snapshots = new MemorySnapshotStore();
    const reports: SnapshotErrorInfo[] = [];
    const repoOn = tallies(snapshots, reports);
    const before = await repoOn(await MemoryEventStore.open());
    await before.save("1", added(6), { createSnapshot: true }); // a snapshot of count 6 at version 6
    await before.close();
    // An event store that holds only 3 other events of the stream (it lost the rest, or was made anew).
    const after = await repoOn(await MemoryEventStore.open());
    const tens = (k: number): Added[] => Array.from({ length: k }, () => ({ type: "added", data: { n: 10 } }));
    await after.save("1", tens(3), { createSnapshot: false });
    expect((await after.load("1")).state).toEqual({ count: 30 });
    await after.flushSnapshots();
    expect(reports.map((r) => r.operation)).toEqual(["load"]);
    // The stream grows past version 6 again: its own events, not the old snapshot, make the state.
    await after.save("1", tens(4), { createSnapshot: false });
    const loaded = await after.load("1");
    expect([loaded.version, loaded.state, loaded.snapshotVersionAt]).toEqual([7, { count: 70 }, 0]);
    await after.close();
  });

  it("a failed delete of snapshots found ahead is reported as such, and the load still replays", async () => {
    const snapshots = new MemorySnapshotStore();
    const reports: SnapshotErrorInfo[] = [];
    const open = tallies(snapshots, reports);
    const before = await open(await MemoryEventStore.open());
    await before.save("1", added(3), { createSnapshot: true });
    await before.close();
    snapshots.delete = async () => Promise.reject(new UnavailableError("snapshot store unreachable"));
    const after = await open(await MemoryEventStore.open());
    await after.save("1", added(1), { createSnapshot: false });
    expect((await after.load("1")).state).toEqual({ count: 1 });
    await after.flushSnapshots();
    expect(reports.map((r) => r.operation)).toEqual(["load", "delete"]);
    expect(String(reports[1]?.error)).toContain("snapshot store unreachable");
    await after.close();
  });

  it("a snapshot written after handle holds the state a load folds from the stored events (metadata, timestamps)", async () => {
    type Seen = { n: number; by: string | undefined; at: number | undefined };
    const snapshots = new MemorySnapshotStore();
    const repo = await EventSourcedRepository.open<Seen, Added>({
      eventStore: await MemoryEventStore.open(),
      snapshots,
      aggregateType: "seen",
      initialState: () => ({ n: 0, by: undefined, at: undefined }),
      // Reads what the store adds to an event: the merged metadata, the default timestamp.
      evolve: (s, e) => {
        const stored = e as Added & { metadata?: { user?: string }; timestamp?: Date };
        return { n: s.n + e.data.n, by: stored.metadata?.user, at: stored.timestamp?.getTime() };
      },
    });
    await repo.handle("1", () => added(2), { metadata: { user: "alice" }, createSnapshot: true });
    await repo.flushSnapshots();
    const fromSnapshot = await repo.load("1");
    expect(fromSnapshot.snapshotVersionAt).toBe(2);
    const folded = await repo.load("1", { useSnapshot: false });
    expect(fromSnapshot.state).toEqual(folded.state);
    expect(folded.state.by).toBe("alice");
    await repo.close();
  });

  it("a save whose append finishes after close() began writes no snapshot and reports nothing", async () => {
    const counting = countingSnapshots(new MemorySnapshotStore());
    const events = await MemoryEventStore.open();
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    // An event store whose next append waits until released.
    const slow = new Proxy(events, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (key !== "append") return typeof value === "function" ? value.bind(target) : value;
        return async (...args: Parameters<typeof events.append>) => {
          await held;
          return events.append(...args);
        };
      },
    });
    const reports: unknown[] = [];
    const repo = await EventSourcedRepository.open<Tally, Added>({
      eventStore: slow,
      snapshots: counting.store,
      aggregateType: "tally",
      initialState: () => ({ count: 0 }),
      evolve: (s, e) => ({ count: s.count + e.data.n }),
      onSnapshotError: (report) => reports.push(report),
    });
    const saving = repo.save("1", added(3), { createSnapshot: true });
    await repo.close();
    release?.();
    expect((await saving).version).toBe(3);
    await new Promise((r) => setTimeout(r, 20));
    expect(counting.saves).toEqual([]);
    expect(reports).toEqual([]);
  });

  it("a load with useSnapshot: false writes no snapshot", async () => {
    const counting = countingSnapshots(new MemorySnapshotStore());
    const repo = await open(counting.store);
    await repo.save("1", added(8), { createSnapshot: false });
    await repo.flushSnapshots();
    expect((await repo.load("1", { useSnapshot: false })).state).toEqual({ count: 8 });
    await repo.flushSnapshots();
    expect(counting.saves).toEqual([]);
    // A load that looked for a snapshot and found none replaces it.
    expect((await repo.load("1")).state).toEqual({ count: 8 });
    await repo.flushSnapshots();
    expect(counting.saves).toEqual([8]);
    await repo.close();
  });

  it("loads while a replacement snapshot is being written start no other write of that stream", async () => {
    const counting = countingSnapshots(new MemorySnapshotStore());
    const repo = await open(counting.store);
    await repo.save("1", added(8), { createSnapshot: false });
    await repo.save("2", added(8), { createSnapshot: false });
    counting.hold();
    const loads = await Promise.all([repo.load("1"), repo.load("1"), repo.load("1"), repo.load("2")]);
    expect(loads.map((l) => [l.state.count, l.eventsFolded])).toEqual([
      [8, 8],
      [8, 8],
      [8, 8],
      [8, 8],
    ]);
    await repo.load("1");
    counting.release();
    await repo.flushSnapshots();
    expect(counting.saves).toEqual([8, 8]);
    expect(await repo.load("1")).toMatchObject({ snapshotVersionAt: 8, eventsFolded: 0 });
    await repo.close();
  });
});
