/**
 * A restore knows it reached a partition's end by librdkafka's
 * end-of-partition events when the last offsets hold no record it is
 * given (a transaction's commit marker, records compacted away): those
 * events stay on whatever `consumerConfig` says, or such a restore would
 * wait for records that never come until its stall time-out.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKafkaClient } from "../../src/kafka/client.js";
import { ChangelogReader } from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

describe("end-of-partition events", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-eof");

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createTopic(topic, 1);
    // A transactional producer: the committed transaction ends with a control record that no consumer is handed.
    const { Producer } = await loadKafkaClient();
    const producer = new Producer({
      "bootstrap.servers": cluster.brokers,
      "transactional.id": `statelog-eof-${process.pid}`,
      dr_cb: true,
    });
    await new Promise<void>((resolve, reject) => {
      producer.once("ready", () => resolve());
      producer.once("connection.failure", reject);
      producer.connect();
    });
    const call = (fn: (cb: (error: unknown) => void) => void) =>
      new Promise<void>((resolve, reject) => fn((error) => (error ? reject(error) : resolve())));
    await call((cb) => producer.initTransactions(10_000, cb));
    await call((cb) => producer.beginTransaction(cb));
    for (let i = 0; i < 3; i++) {
      producer.produce(topic, 0, Buffer.from(JSON.stringify({ id: `e${i}`, v: i })), `ws/item/e${i}`);
    }
    await call((cb) => producer.commitTransaction(10_000, cb));
    await call((cb) => producer.disconnect(cb));
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("a restore ends at a commit marker with the events turned off in consumerConfig", async () => {
    const reader = await ChangelogReader.open({
      brokers: cluster.brokers,
      topic,
      stallTimeoutMs: 5_000,
      consumerConfig: { "enable.partition.eof": false },
    });
    try {
      const started = Date.now();
      const entries = await reader.loadAllIntoMap();
      expect([...entries.keys()].sort()).toEqual(["ws/item/e0", "ws/item/e1", "ws/item/e2"]);
      // Not ended by a time-out: well within the stall time.
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      await reader.close();
    }
  }, 30_000);
});
