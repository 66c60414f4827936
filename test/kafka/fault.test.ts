/**
 * Broker down and up during writes (the mock's `down`/`up` commands):
 * acknowledged writes are all readable afterwards; writes that could not
 * be acknowledged reject with a KafkaDeliveryError; the same writer and
 * store recover once the broker is back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChangelogReader,
  ChangelogWriter,
  isKafkaDeliveryError,
  type KafkaDeliveryError,
  KafkaStore,
  partitionForNamespace,
} from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

const FAST_FAIL = { "message.timeout.ms": 3000, "reconnect.backoff.max.ms": 300, "retry.backoff.max.ms": 300 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `condition` until it holds; fails with `what` after `ms`. */
async function waitFor(what: string, condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await sleep(20);
  }
}

describe("broker down and up during writes", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-fault");

  beforeAll(async () => {
    cluster = await startCluster();
    if (cluster.isMock) await cluster.createTopic(topic, 4);
  });
  afterAll(async () => {
    await cluster?.up().catch(() => undefined);
    await cluster?.stop();
  });

  it("acknowledged writes are readable afterwards; unacknowledged ones reject", { timeout: 90_000 }, async (ctx) => {
    if (!cluster.isMock) {
      ctx.skip("needs the mock cluster's down/up commands (KAFKA_BROKERS is set)");
      return;
    }
    await using writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic, producerConfig: FAST_FAIL });
    await writer.connect();
    const outcomes: { key: string; ws: string; v: number; result: Promise<unknown> }[] = [];
    const state = { acked: 0, failed: 0, ackedAfterUp: 0, upAt: Number.POSITIVE_INFINITY };
    let stop = false;
    const writing = (async () => {
      for (let i = 0; !stop; i++) {
        const ws = `fw-${i % 7}`;
        const key = `${ws}/item/${i}`;
        const result = writer.set(ws, { changeLogId: () => key, v: i });
        const afterUp = i >= state.upAt;
        result.then(
          () => {
            state.acked++;
            if (afterUp) state.ackedAfterUp++;
          },
          () => {
            state.failed++;
          },
        );
        outcomes.push({ key, ws, v: i, result });
        await sleep(15); // pacing, not a wait for anything
      }
    })();
    try {
      await waitFor("more than 20 writes are acknowledged", () => state.acked > 20, 15_000);
      await cluster.down(-1);
      // Writes of this window cannot be acknowledged: they reject after message.timeout.ms.
      await waitFor("more than 5 writes made while the broker is down reject", () => state.failed > 5, 20_000);
      await cluster.up(-1);
      state.upAt = outcomes.length;
      await waitFor("a write made after `up` is acknowledged", () => state.ackedAfterUp > 0, 20_000);
    } finally {
      stop = true;
      await writing;
    }
    const settled = await Promise.allSettled(outcomes.map((o) => o.result));
    const acked = outcomes.filter((_, i) => settled[i]!.status === "fulfilled");
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(acked.length).toBeGreaterThan(20);
    expect(failed.length).toBeGreaterThan(5);
    for (const f of failed) expect(isKafkaDeliveryError(f.reason), String(f.reason)).toBe(true);
    // Each rejection names its own record: key and partition (from librdkafka's delivery report).
    outcomes.forEach((o, i) => {
      const s = settled[i]!;
      if (s.status === "rejected") {
        expect((s.reason as KafkaDeliveryError).key).toBe(o.key);
        expect((s.reason as KafkaDeliveryError).partition).toBe(partitionForNamespace(o.ws, writer.partitions!));
      }
    });
    // The writer recovered: the last writes (after `up`) were acknowledged.
    expect(settled.at(-1)!.status).toBe("fulfilled");

    await using reader = await ChangelogReader.open({ brokers: cluster.brokers, topic });
    const all = await reader.loadAllIntoMap();
    for (const o of acked) expect(all.get(o.key)?.unmarshal(), o.key).toEqual({ v: o.v });
  });

  it("KafkaStore: a save that cannot be acknowledged rejects; saved data survives; the store recovers", async (ctx) => {
    if (!cluster.isMock) {
      ctx.skip("needs the mock cluster's down/up commands (KAFKA_BROKERS is set)");
      return;
    }
    await using store = await KafkaStore.open({ brokers: cluster.brokers, topic, producerConfig: FAST_FAIL });
    const ns = "fault-store";
    await store.save([{ namespace: ns, changeType: "set", entityType: "item", entityId: "kept", entity: { v: 1 } }]);
    await cluster.down(-1);
    const failing = store.save([
      { namespace: ns, changeType: "set", entityType: "item", entityId: "lost", entity: { v: 2 } },
    ]);
    await expect(failing).rejects.toSatisfy(isKafkaDeliveryError);
    await cluster.up(-1);
    await store.save([{ namespace: ns, changeType: "unset", entityType: "item", entityId: "gone" }]);
    const loaded = await store.load(ns);
    expect(loaded.map((c) => [c.entityId, c.changeType])).toEqual([
      ["kept", "set"],
      ["gone", "unset"],
    ]);
  });

  it("close() while the broker is down settles every pending write (none waits forever)", {
    timeout: 60_000,
  }, async (ctx) => {
    if (!cluster.isMock) {
      ctx.skip("needs the mock cluster's down/up commands (KAFKA_BROKERS is set)");
      return;
    }
    // A message time-out far beyond close()'s flush: librdkafka will not report these records before close.
    const writer = await ChangelogWriter.open({
      brokers: cluster.brokers,
      topic,
      producerConfig: { "message.timeout.ms": 120_000 },
    });
    await writer.connect();
    await cluster.down(-1);
    try {
      const writes = Array.from({ length: 20 }, (_, i) =>
        writer.set(`fc-${i % 3}`, { changeLogId: () => `fc-${i % 3}/item/${i}`, v: i }),
      );
      const closing = performance.now();
      await writer.close();
      // close() flushes for at most 10 s in all (librdkafka's disconnect would flush 5 s more: 15 s without the
      // bound); the margin is for a loaded machine.
      expect(performance.now() - closing).toBeLessThan(13_000);
      const settled = await Promise.race([
        Promise.allSettled(writes),
        sleep(5_000).then(() => "still pending" as const),
      ]);
      expect(settled).not.toBe("still pending");
      for (const s of settled as PromiseSettledResult<unknown>[]) {
        expect(s.status).toBe("rejected");
        const reason = (s as PromiseRejectedResult).reason;
        expect(isKafkaDeliveryError(reason), String(reason)).toBe(true);
        expect(String(reason)).toMatch(/closed before the broker answered/);
      }
      expect(writer.pending).toBe(0);
    } finally {
      await cluster.up(-1);
    }
  });
});
