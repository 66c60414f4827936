/**
 * No server-side consumer outlives the call that made it: the event
 * store's ordered consumer is deleted by `close()`, and a snapshot load
 * that reads a key's history leaves none (a consumer left behind stays
 * on the server, inactive, for five minutes).
 */
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { NatsEventStore, NatsKvSnapshotStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("consumers-left-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** The names of the consumers the server holds on `stream`. */
async function consumers(stream: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const ci of jsm.consumers.list(stream)) names.push(ci.name);
  return names;
}

describe("server-side consumers", () => {
  it("NatsEventStore.close() deletes its ordered consumer", async () => {
    const stream = uniqueBucket("EVK");
    for (let i = 0; i < 3; i++) {
      const store = await NatsEventStore.open({ client: nc, stream });
      await store.append("s", [createEvent("t", { i })]);
      expect(await consumers(stream)).toHaveLength(1); // its own, while open
      await store.close();
      expect(await consumers(stream)).toEqual([]);
    }
  });

  it("NatsEventStore.close() on a closed connection resolves", async () => {
    const stream = uniqueBucket("EVK");
    const other = await connectTest("consumers-left-other");
    const store = await NatsEventStore.open({ client: other, stream });
    await other.close();
    await expect(store.close()).resolves.toBeUndefined();
  });

  it.each([
    ["direct gets", true],
    ["gets answered by the stream leader (a bucket without allow_direct)", false],
  ])(
    "NatsKvSnapshotStore.load below the newest version reads the history with %s, leaving no consumer",
    async (_how, direct) => {
      const bucket = uniqueBucket("SNK");
      if (!direct) {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({
          name: `KV_${bucket}`,
          subjects: [`$KV.${bucket}.>`],
          max_msgs_per_subject: 5,
          allow_direct: false,
          allow_rollup_hdrs: true,
          deny_delete: true,
          discard: DiscardPolicy.New,
        });
      }
      const snapshots = await NatsKvSnapshotStore.open({ client: nc, bucket, maxSnapshotsPerStream: 5 });
      for (let version = 1; version <= 5; version++) {
        await snapshots.save({ streamId: "x", version, snapshotVersion: 1, createdAt: new Date(), state: { version } });
      }
      await snapshots.save({ streamId: "y", version: 1, snapshotVersion: 1, createdAt: new Date(), state: {} });
      for (const maxVersion of [2, 4, 1]) {
        const loaded = await snapshots.load("x", { maxVersion });
        expect(loaded?.version).toBe(maxVersion);
        expect(loaded?.state).toEqual({ version: maxVersion });
      }
      expect(await snapshots.load("x", { maxVersion: 0 })).toBeUndefined();
      expect((await snapshots.load("x", { maxVersion: 9 }))?.version).toBe(5);
      await snapshots.close();
      expect(await consumers(`KV_${bucket}`)).toEqual([]);
    },
  );
});
