/**
 * The state a JSON snapshot store (FileSnapshotStore, NatsKvSnapshotStore)
 * keeps: JSON data only. A state JSON would change (a Date into a string)
 * is refused, so that a load through a snapshot never returns another
 * state than the fold of the events; a property whose value is undefined
 * is left out, as JSON does.
 */
import { readdir } from "node:fs/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSnapshotStore } from "../../src/file/index.js";
import { isInvalidValueError } from "../../src/index.js";
import { MemoryEventStore } from "../../src/memory/index.js";
import { NatsKvSnapshotStore } from "../../src/nats/index.js";
import { EventSourcedRepository, type SnapshotErrorInfo, type SnapshotStore } from "../../src/repository/index.js";
import { tempDir } from "../helpers/temp.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "../nats/env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("snapshot-state-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** Each JSON snapshot store, and what it wrote (a file store: its directory's files). */
const stores: [string, () => Promise<{ store: SnapshotStore & AsyncDisposable; written: () => Promise<unknown[]> }>][] =
  [
    [
      "FileSnapshotStore",
      async () => {
        const directory = tempDir("statelog-snapshot-state-");
        const store = await FileSnapshotStore.open({ directory, sync: "none" });
        return { store, written: () => readdir(directory) };
      },
    ],
    [
      "NatsKvSnapshotStore",
      async () => {
        const bucket = uniqueBucket("snapstate");
        const store = await NatsKvSnapshotStore.open({ client: nc, bucket, storage: "memory" });
        // The bucket's messages: a refused save writes none.
        const written = async () => {
          const { state } = await (await jetstreamManager(nc)).streams.info(`KV_${bucket}`);
          return Array.from({ length: state.messages });
        };
        return { store, written };
      },
    ],
  ];

interface Tally {
  count: number;
  at?: Date | string;
}

describe.each(stores)("%s state", (_name, open) => {
  it("refuses a state that is not JSON data with an InvalidValueError naming where, and writes nothing", async () => {
    const { store, written } = await open();
    await using _ = store;
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
    expect(await written()).toEqual([]);
    // JSON data is kept as it was given; a property whose value is undefined is left out, as JSON does.
    const state = { count: 2, at: "1970-01-01T00:00:00.000Z", left: undefined, tags: [{ a: 1, b: undefined }] };
    await store.save({ ...snapshot, state });
    const loaded = (await store.load("tally-1"))?.state;
    expect(loaded).toStrictEqual({ count: 2, at: "1970-01-01T00:00:00.000Z", tags: [{ a: 1 }] });
    expect(state).toHaveProperty("left"); // the caller's state is not changed
  });
});

describe("FileSnapshotStore state", () => {
  it("through a repository: a state with a Date is reported to onSnapshotError, and loads with and without snapshots agree", async () => {
    const eventStore = await MemoryEventStore.open();
    await using snapshots = await FileSnapshotStore.open({
      directory: tempDir("statelog-snapshot-state-"),
      sync: "none",
    });
    const errors: SnapshotErrorInfo[] = [];
    /** A repository of tallies whose `at` is `at`, snapshotted every 2 events, with stream 1 of 2 events saved. */
    const tallies = async (aggregateType: string, at: Date | string) => {
      const repository = await EventSourcedRepository.open({
        eventStore,
        aggregateType,
        initialState: (): Tally => ({ count: 0 }),
        evolve: (s: Tally): Tally => ({ count: s.count + 1, at }),
        snapshots,
        snapshotEvery: 2,
        onSnapshotError: (info) => errors.push(info),
      });
      await repository.save("1", [
        { type: "hit", data: {} },
        { type: "hit", data: {} },
      ]);
      return repository;
    };
    const dated = await tallies("tally", new Date(0));
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
    const plain = await tallies("plain", new Date(0).toISOString());
    await plain.flushSnapshots();
    expect(errors).toEqual([]);
    const viaSnapshot = await plain.load("1");
    expect(viaSnapshot.snapshotVersionAt).toBe(2);
    expect(viaSnapshot.state).toEqual((await plain.load("1", { useSnapshot: false })).state);
    await plain.close();
  });
});
