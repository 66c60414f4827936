/**
 * A KafkaStore save that reaches some records but not all: on a mock
 * cluster of three brokers, one broker is taken down (the mock keeps it the
 * leader of its partitions), so the records of its partitions are not
 * acknowledged while the others are. The save rejects with core's
 * PartialWriteError, whose indexes say which changes were written. The
 * mock picks each partition's leader at random (with six partitions, broker
 * 2 led none of them in about one run of eleven, and the save was then
 * acknowledged whole): the test sets the leaders, two partitions each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChangeInput, isPartialWriteError, type PartialWriteError } from "../../src/index.js";
import { isKafkaDeliveryError, KafkaStore, partitionForNamespace } from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

const PARTITIONS = 6;
const FAST_FAIL = { "message.timeout.ms": 3000, "reconnect.backoff.max.ms": 300, "retry.backoff.max.ms": 300 };

describe("KafkaStore: a save that reached some records but not all", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-partial");

  beforeAll(async () => {
    cluster = await startCluster(3);
    if (cluster.isMock) {
      await cluster.createTopic(topic, PARTITIONS);
      for (let p = 0; p < PARTITIONS; p++) await cluster.setLeader(topic, p, (p % 3) + 1);
    }
  });
  afterAll(async () => {
    await cluster?.up().catch(() => undefined);
    await cluster?.stop();
  });

  /**
   * Waits until a probe save (its own producer, other namespaces on every
   * partition) sees broker 2 down: the mock's `down` returns before every
   * client notices, and a save racing it could be acknowledged whole.
   */
  async function untilDown(namespaces: readonly string[]): Promise<void> {
    await using probe = await KafkaStore.open({
      brokers: cluster.brokers,
      topic,
      producerConfig: { ...FAST_FAIL, "message.timeout.ms": 1500 },
    });
    const probes: ChangeInput[] = namespaces.map((ns) => ({
      namespace: `probe-${ns}`,
      changeType: "unset",
      entityType: "probe",
      entityId: "p",
    }));
    expect(new Set(probes.map((c) => partitionForNamespace(c.namespace, PARTITIONS))).size).toBe(PARTITIONS);
    for (let attempt = 1; ; attempt++) {
      const outcome = await probe.save(probes).then(
        () => "acknowledged whole",
        (e: unknown) => e,
      );
      if (isPartialWriteError(outcome)) return;
      if (attempt === 5) throw new Error(`broker 2 still takes writes after down: probe ${String(outcome)}`);
      await cluster.down(2);
    }
  }

  it("rejects with PartialWriteError (targets: changes) naming what was written; the written changes load", {
    timeout: 60_000,
  }, async (ctx) => {
    if (!cluster.isMock) {
      ctx.skip("needs the mock cluster's down/up commands (KAFKA_BROKERS is set)");
      return;
    }
    await using store = await KafkaStore.open({ brokers: cluster.brokers, topic, producerConfig: FAST_FAIL });
    // Namespaces that cover every partition, two changes each.
    const namespaces = Array.from({ length: 40 }, (_, i) => `partial-${i}`);
    expect(new Set(namespaces.map((ns) => partitionForNamespace(ns, PARTITIONS))).size).toBe(PARTITIONS);
    const changes: ChangeInput[] = namespaces.flatMap((ns) => [
      { namespace: ns, changeType: "set", entityType: "item", entityId: "a", entity: { ns } },
      { namespace: ns, changeType: "unset", entityType: "item", entityId: "b" },
    ]);
    await store.save([changes[0]!]); // connected, with the metadata of every partition
    await cluster.down(2);
    await untilDown(namespaces);
    let error: unknown;
    try {
      await store.save(changes);
    } catch (e) {
      error = e;
    } finally {
      await cluster.up(2);
    }
    expect(isPartialWriteError(error), String(error)).toBe(true);
    const partial = error as PartialWriteError;
    expect(partial.targets).toBe("changes");
    expect(partial.message).toContain("Kafka store save");
    expect(partial.written.length).toBeGreaterThan(0);
    const notWritten = [...partial.uncertain, ...partial.failed.map((f) => f.index)];
    expect(notWritten.length).toBeGreaterThan(0);
    // Unacknowledged within message.timeout.ms: the broker may hold them, so they are uncertain.
    expect(partial.uncertain.length).toBeGreaterThan(0);
    expect(isKafkaDeliveryError(partial.cause)).toBe(true);
    // Every change is counted once.
    expect([...partial.written, ...notWritten].sort((a, b) => a - b)).toEqual(changes.map((_, i) => i));
    // The broker that is down leads whole partitions: the fate of a record is its partition's.
    const fate = new Map<number, string>();
    const note = (indexes: readonly number[], what: string) => {
      for (const i of indexes) {
        const p = partitionForNamespace(changes[i]!.namespace, PARTITIONS);
        expect(fate.get(p) ?? what, `partition ${p}`).toBe(what);
        fate.set(p, what);
      }
    };
    note(partial.written, "written");
    note(notWritten, "not written");

    // What was written is stored; saving the same changes again (the broker is back) completes the save.
    for (const i of partial.written) {
      const c = changes[i]!;
      const loaded = await store.load(c.namespace);
      expect(loaded.find((l) => l.entityId === c.entityId)?.changeType, `${c.namespace}/${c.entityId}`).toBe(
        c.changeType,
      );
    }
    await store.save(changes);
    for (const ns of namespaces.slice(0, 12)) {
      expect((await store.load(ns)).map((c) => [c.entityId, c.changeType])).toEqual([
        ["a", "set"],
        ["b", "unset"],
      ]);
    }
  });
});
