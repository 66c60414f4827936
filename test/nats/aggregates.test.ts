import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import { NATS_KV_SNAPSHOT_STORE_DEFAULTS, NatsEventStore, NatsKvSnapshotStore } from "../../src/nats/index.js";
import { describeEventSourcedRepositoryContract, describeSnapshotStoreContract } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

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
});
