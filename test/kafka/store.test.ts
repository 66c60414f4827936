import { afterAll, beforeAll } from "vitest";
import type { Store } from "../../src/core/store.js";
import { KafkaStore } from "../../src/kafka/index.js";
import { describeStoreContract } from "../../src/testing/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

let cluster: TestCluster;
const topic = uniqueTopic("statelog-store");

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createTopic(topic, 6);
});
afterAll(async () => {
  await cluster?.stop();
});

const open = (): Store => new KafkaStore({ brokers: cluster.brokers, topic, producerConfig: { "linger.ms": 1 } });

describeStoreContract("KafkaStore", open, {
  reopen: async (store) => {
    await store.close();
    return open();
  },
  propertyRuns: 25,
});
