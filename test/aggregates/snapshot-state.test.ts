/**
 * The state a FileSnapshotStore keeps: JSON data only. A state JSON would
 * change (a Date into a string) is refused, so that a load through a
 * snapshot never returns another state than the fold of the events; a
 * property whose value is undefined is left out, as JSON does.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileSnapshotStore } from "../../src/file/index.js";
import { isInvalidValueError } from "../../src/index.js";
import { MemoryEventStore } from "../../src/memory/index.js";
import { EventSourcedRepository, type SnapshotErrorInfo } from "../../src/repository/index.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "statelog-snapshot-state-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

interface Tally {
  count: number;
  at?: Date | string;
}

describe("FileSnapshotStore state", () => {
  it("refuses a state that is not JSON data with an InvalidValueError naming where, and writes nothing", async () => {
    const directory = await tempDir();
    await using store = await FileSnapshotStore.open({ directory, sync: "none" });
    const snapshot = { streamId: "tally-1", version: 2, snapshotVersion: 1, createdAt: new Date() };
    for (const [state, path] of [
      [{ count: 2, at: new Date(0) }, "snapshot.state.at"],
      [{ count: 2, tags: new Set(["a"]) }, "snapshot.state.tags"],
      [{ count: 2, items: [1, undefined] }, "snapshot.state.items[1]"],
      [{ count: 2, inner: { left: undefined, at: new Date(0) } }, "snapshot.state.inner.at"],
      [{ count: Number.NaN }, "snapshot.state.count"],
    ] as const) {
      const error = await store.save({ ...snapshot, state }).catch((e: unknown) => e);
      expect(isInvalidValueError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ path });
    }
    expect(await store.load("tally-1")).toBeUndefined();
    expect(await readdir(directory)).toEqual([]);
    // JSON data is kept as it was given; a property whose value is undefined is left out, as JSON does.
    const state = { count: 2, at: "1970-01-01T00:00:00.000Z", left: undefined, tags: [{ a: 1, b: undefined }] };
    await store.save({ ...snapshot, state });
    const loaded = (await store.load("tally-1"))?.state;
    expect(loaded).toStrictEqual({ count: 2, at: "1970-01-01T00:00:00.000Z", tags: [{ a: 1 }] });
    expect(state).toHaveProperty("left"); // the caller's state is not changed
  });

  it("through a repository: a state with a Date is reported to onSnapshotError, and loads with and without snapshots agree", async () => {
    const eventStore = await MemoryEventStore.open();
    await using snapshots = await FileSnapshotStore.open({ directory: await tempDir(), sync: "none" });
    const errors: SnapshotErrorInfo[] = [];
    const dated = await EventSourcedRepository.open({
      eventStore,
      aggregateType: "tally",
      initialState: (): Tally => ({ count: 0 }),
      evolve: (s: Tally): Tally => ({ count: s.count + 1, at: new Date(0) }),
      snapshots,
      snapshotEvery: 2,
      onSnapshotError: (info) => errors.push(info),
    });
    await dated.save("1", [
      { type: "hit", data: {} },
      { type: "hit", data: {} },
    ]);
    await dated.flushSnapshots();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ operation: "save", streamId: "tally-1", version: 2 });
    expect(isInvalidValueError(errors[0]?.error), String(errors[0]?.error)).toBe(true);
    const folded = await dated.load("1", { useSnapshot: false });
    const loaded = await dated.load("1");
    expect(loaded.state).toEqual(folded.state);
    expect(loaded.state.at).toBeInstanceOf(Date);
    expect(loaded.snapshotVersionAt).toBe(0); // no snapshot was written: folded from the first event
    await dated.flushSnapshots();
    // The loads that folded past snapshotEvery tried to write one too: refused the same way.
    expect(errors.every((e) => e.operation === "save" && isInvalidValueError(e.error))).toBe(true);
    await dated.close();
    errors.length = 0;

    // The same aggregate with JSON data (an ISO string) is snapshotted, and the loads agree too.
    const plain = await EventSourcedRepository.open({
      eventStore,
      aggregateType: "plain",
      initialState: (): Tally => ({ count: 0 }),
      evolve: (s: Tally): Tally => ({ count: s.count + 1, at: new Date(0).toISOString() }),
      snapshots,
      snapshotEvery: 2,
      onSnapshotError: (info) => errors.push(info),
    });
    await plain.save("1", [
      { type: "hit", data: {} },
      { type: "hit", data: {} },
    ]);
    await plain.flushSnapshots();
    expect(errors).toEqual([]);
    const viaSnapshot = await plain.load("1");
    expect(viaSnapshot.snapshotVersionAt).toBe(2);
    expect(viaSnapshot.state).toEqual((await plain.load("1", { useSnapshot: false })).state);
    await plain.close();
  });
});
