/**
 * close() while a load waits for a broker that is down: the load stops
 * with a ClosedError at once instead of running on until it stalls
 * (stallTimeoutMs) or its connect times out (15 s); close() waits only for
 * the disconnect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import { ChangelogReader, KafkaStore } from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

let cluster: TestCluster;
const topic = uniqueTopic("statelog-close-load");

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createTopic(topic, 2);
});
afterAll(async () => {
  await cluster?.up().catch(() => undefined);
  await cluster?.stop();
});

describe("Kafka close during a load", () => {
  it("KafkaStore and ChangelogReader: close() ends a load waiting for a broker that is down", {
    timeout: 60_000,
  }, async () => {
    const store = await KafkaStore.open({ brokers: cluster.brokers, topic, producerConfig: { "linger.ms": 1 } });
    await store.save([{ namespace: "ns", changeType: "set", entityType: "item", entityId: "a", entity: 1 }]);
    const reader = await ChangelogReader.open({ brokers: cluster.brokers, topic, stallTimeoutMs: 30_000 });
    await reader.loadChanges({ from: "beginning" }); // connected
    await cluster.down(-1);
    try {
      for (const [name, load, close] of [
        ["store", () => store.load("ns"), () => store.close()],
        ["reader", () => reader.loadChanges({ from: "beginning" }), () => reader.close()],
      ] as const) {
        const loading = (load() as Promise<unknown>).then(
          () => "loaded",
          (error: unknown) => error,
        );
        await new Promise((r) => setTimeout(r, 300)); // the load waits for the broker
        const started = performance.now();
        await close();
        const took = performance.now() - started;
        const outcome = await loading;
        expect(isStatelogError(outcome, ErrorCode.Closed), `${name}: ${String(outcome)}`).toBe(true);
        // The store's reader was still connecting: nothing to wait for. The reader is connected, and its
        // disconnect waits for librdkafka's pending offset query (its own 10 s time-out), never for the
        // read's stall time-out (30 s here).
        expect(took, name).toBeLessThan(name === "store" ? 3_000 : 15_000);
      }
    } finally {
      await cluster.up(-1);
    }
  });
});
