import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import type { Store } from "../../src/core/store.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { describeStoreContract } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
const bucket = uniqueBucket("store");
beforeAll(async () => {
  nc = await connectTest("kv-store-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describeStoreContract("NatsKvStore", () => NatsKvStore.open({ client: nc, bucket }), {
  reopen: async (store: Store) => {
    await store.close();
    return NatsKvStore.open({ client: nc, bucket });
  },
  propertyRuns: 25,
});

// A bucket that keeps 5 revisions per key: compact really purges there.
const historyBucket = uniqueBucket("store_h5");
describeStoreContract(
  "NatsKvStore (history 5)",
  () => NatsKvStore.open({ client: nc, bucket: historyBucket, history: 5 }),
  {
    reopen: async (store: Store) => {
      await store.close();
      return NatsKvStore.open({ client: nc, bucket: historyBucket, history: 5 });
    },
    propertyRuns: 10,
  },
);
