import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import { NATS_KV_SNAPSHOT_STORE_DEFAULTS, NatsEventStore, NatsKvSnapshotStore } from "../../src/nats/index.js";
import { EventSourcedRepository, type SnapshotErrorInfo } from "../../src/repository/index.js";
import { describeEventSourcedRepositoryContract, describeSnapshotStoreContract } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { startDelayProxy } from "./proxy.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("aggregates-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describeEventSourcedRepositoryContract(
  "NatsEventStore + NatsKvSnapshotStore",
  {
    eventStore: (options) =>
      NatsEventStore.open({ ...options, client: nc, stream: uniqueBucket("AGG"), storage: "memory" }),
    snapshots: () => NatsKvSnapshotStore.open({ client: nc, bucket: uniqueBucket("snap"), storage: "memory" }),
  },
  { propertyRuns: 15 },
);

describeSnapshotStoreContract(
  "NatsKvSnapshotStore",
  () => NatsKvSnapshotStore.open({ client: nc, bucket: uniqueBucket("snap") }),
  {
    reopen: async (store) => {
      await store.close();
      return NatsKvSnapshotStore.open({ client: nc, bucket: (store as NatsKvSnapshotStore).bucket });
    },
  },
);

describe("NatsKvSnapshotStore", () => {
  it("refuses bad options with a ConfigurationError naming them", async () => {
    for (const [options, pattern] of [
      [{}, /NatsKvSnapshotStore option client must be an open NATS connection/],
      [{ client: nc, bucket: "a.b" }, /NatsKvSnapshotStore option bucket must be a KV bucket name/],
      [{ client: nc, bucketName: "x" }, /NatsKvSnapshotStore has no option bucketName/],
      [{ client: nc, maxSnapshotsPerStream: 65 }, /maxSnapshotsPerStream/],
    ] as const) {
      const caught = await NatsKvSnapshotStore.open(options as never).catch((e: unknown) => e);
      expect(isStatelogError(caught, ErrorCode.Configuration)).toBe(true);
      expect(String(caught)).toMatch(pattern);
    }
    expect(NATS_KV_SNAPSHOT_STORE_DEFAULTS).toMatchObject({ bucket: "statelog_snapshots", maxSnapshotsPerStream: 8 });
  });

  it("a bucket with another history is refused; a snapshot over the server's max_payload is a TooLargeError", async () => {
    const bucket = uniqueBucket("snap");
    const store = await NatsKvSnapshotStore.open({ client: nc, bucket, maxSnapshotsPerStream: 4 });
    const other = await NatsKvSnapshotStore.open({ client: nc, bucket, maxSnapshotsPerStream: 5 }).catch(
      (e: unknown) => e,
    );
    expect(isStatelogError(other, ErrorCode.Configuration)).toBe(true);
    const max = nc.info?.max_payload ?? 1024 * 1024;
    const huge = { streamId: "s", version: 1, snapshotVersion: 1, state: "x".repeat(max), createdAt: new Date() };
    const error = await store.save(huge).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.TooLarge)).toBe(true);
    expect(await store.load("s")).toBeUndefined();
    await store.close();
  });

  it("a damaged newest snapshot is reported by loads and replaced by the next save", async () => {
    const bucket = uniqueBucket("snap");
    const store = await NatsKvSnapshotStore.open({ client: nc, bucket });
    const at = (version: number) => ({
      streamId: "s",
      version,
      snapshotVersion: 1,
      state: { version },
      createdAt: new Date(),
    });
    await store.save(at(2));
    // A value that is not a snapshot (a foreign writer, a restore gone wrong).
    await (await new Kvm(nc).open(bucket)).put("s", "not json");
    expect(isStatelogError(await store.load("s").catch((e: unknown) => e), ErrorCode.Corruption)).toBe(true);
    await store.save(at(3));
    expect((await store.load("s"))?.state).toEqual({ version: 3 });
    // The damaged value stays in the key's history until newer snapshots push it out: loads pass over it.
    expect((await store.load("s", { maxVersion: 2 }))?.state).toEqual({ version: 2 });
    await store.close();
  });
});

describe("EventSourcedRepository on NATS, two processes", () => {
  it("a process whose index lags keeps and uses the snapshot another process just wrote", async () => {
    let delay = 0;
    const proxy = await startDelayProxy(natsUrl(), () => delay);
    // Process B's event store reads over a slow link; its snapshot store over another connection.
    const slow = await connect({ servers: proxy.url });
    const stream = uniqueBucket("LAG");
    const bucket = uniqueBucket("lagsnap");
    const stores: { close(): Promise<void> }[] = [];
    const opened = async <T extends { close(): Promise<void> }>(store: Promise<T>) => {
      const s = await store;
      stores.unshift(s);
      return s;
    };
    try {
      const eventsA = await opened(NatsEventStore.open({ client: nc, stream }));
      const eventsB = await opened(NatsEventStore.open({ client: slow, stream }));
      const snapshots = await opened(NatsKvSnapshotStore.open({ client: nc, bucket }));
      const reportsB: SnapshotErrorInfo[] = [];
      const counter = (eventStore: NatsEventStore, reports: SnapshotErrorInfo[]) =>
        EventSourcedRepository.open({
          eventStore,
          snapshots,
          aggregateType: "c",
          initialState: () => ({ n: 0 }),
          evolve: (s: { n: number }) => ({ n: s.n + 1 }),
          onSnapshotError: (report) => reports.push(report),
        });
      const a = await opened(counter(eventsA, []));
      const b = await opened(counter(eventsB, reportsB));
      for (let i = 1; i <= 5; i++) await a.save("1", [{ type: "X", data: {} }], { createSnapshot: i === 5 });
      await a.flushSnapshots();
      await eventsB.catchUp();
      // B's index now learns of appends 300 ms late.
      delay = 300;
      await a.save("1", [{ type: "X", data: {} }], { createSnapshot: true });
      await a.flushSnapshots();
      expect((await snapshots.load("c-1"))?.version).toBe(6);
      const loaded = await b.load("1");
      await b.flushSnapshots();
      expect([loaded.version, loaded.state, loaded.snapshotVersionAt]).toEqual([6, { n: 6 }, 6]);
      expect(reportsB).toEqual([]);
      expect((await snapshots.load("c-1"))?.version).toBe(6);
      expect((await snapshots.load("c-1", { maxVersion: 5 }))?.version).toBe(5);
    } finally {
      delay = 0;
      for (const s of stores) await s.close();
      await slow.close();
      await proxy.close();
    }
  });
});
