/**
 * The change feed contract on a 3-node cluster and R3 buckets: the feed's
 * reads take the replicated path (the stream leader's last message under
 * the namespace bounds each read), and the peer writes through another node.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import { NatsKvStore } from "../../src/nats/index.js";
import { describeChangeFeedContract } from "../../src/testing/index.js";
import { startCluster, type TestNatsCluster } from "./cluster.js";
import { uniqueBucket } from "./env.js";

let cluster: TestNatsCluster;
let first: NatsConnection;
let last: NatsConnection;
beforeAll(async () => {
  cluster = await startCluster({ name: "statelog-feed" });
  first = await connect({ servers: cluster.urls[0] });
  last = await connect({ servers: cluster.urls[2] });
}, 120_000);
afterAll(async () => {
  await first?.close();
  await last?.close();
  await cluster?.stop();
});

describeChangeFeedContract(
  "NatsKvStore (3-node cluster, R3 bucket)",
  () => NatsKvStore.open({ client: first, bucket: uniqueBucket("feed_r3"), replicas: 3 }),
  {
    peer: (store) => NatsKvStore.open({ client: last, bucket: (store as NatsKvStore).bucket, replicas: 3 }),
    // A purge of the bucket's stream: the state the cursor stands for is gone.
    makeBehind: async (store, _namespace, cursor) => {
      await (await jetstreamManager(first)).streams.purge((store as NatsKvStore).stream);
      return cursor;
    },
    propertyRuns: 5,
  },
);
