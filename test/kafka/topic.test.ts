/**
 * ensureChangelogTopic: creating the topic, and checking an existing
 * topic's partition count and cleanup.policy. On librdkafka's mock cluster
 * (no CreateTopics, no DescribeConfigs) it must say so clearly; against a
 * real broker (`KAFKA_BROKERS`) it must create and check for real.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isConfigurationError } from "../../src/index.js";
import {
  ensureChangelogTopic,
  isKafkaAdminUnsupportedError,
  isKafkaTopicError,
  KafkaAdminUnsupportedError,
  KafkaTopicError,
} from "../../src/kafka/index.js";
import { checkCleanupPolicy, describeTopicConfig } from "../../src/kafka/topic-config.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

const timeoutMs = 10_000;

describe("checkCleanupPolicy", () => {
  it("accepts exactly compact", () => {
    expect(checkCleanupPolicy("t", "compact")).toBe("compact");
    expect(checkCleanupPolicy("t", " compact ")).toBe("compact");
  });

  it("rejects delete and compact,delete (retention would drop unchanged entities), naming the fix", () => {
    for (const policy of ["delete", "compact,delete", "delete,compact"]) {
      let error: unknown;
      try {
        checkCleanupPolicy("orders", policy);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(KafkaTopicError);
      expect((error as Error).message).toContain(`cleanup.policy=${policy}`);
      expect((error as Error).message).toContain("retention.ms");
      expect((error as Error).message).toContain("--entity-name orders --add-config cleanup.policy=compact");
    }
  });

  it("rejects a missing or empty policy", () => {
    for (const policy of [null, undefined, "", "compacted"]) {
      expect(() => checkCleanupPolicy("t", policy)).toThrow(/needs cleanup\.policy=compact/);
    }
  });
});

describe("ensureChangelogTopic", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-ensure");
  const partitions = 4;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createTopic(topic, partitions);
  });
  afterAll(() => cluster?.stop());

  it("rejects an existing topic with another partition count before anything else", async () => {
    const error = await ensureChangelogTopic({
      brokers: cluster.brokers,
      topic,
      partitions: partitions + 1,
      timeoutMs,
    }).catch((e: unknown) => e);
    expect(isKafkaTopicError(error)).toBe(true);
    expect((error as Error).message).toContain(`has ${partitions} partitions, expected ${partitions + 1}`);
  });

  it("refuses a cleanup.policy other than compact for a new topic, and creates nothing", async () => {
    const fresh = uniqueTopic("statelog-ensure-delete");
    const error = await ensureChangelogTopic({
      brokers: cluster.brokers,
      topic: fresh,
      partitions: 1,
      config: { "cleanup.policy": "delete" },
      timeoutMs,
    }).catch((e: unknown) => e);
    expect(isConfigurationError(error)).toBe(true);
    expect(
      await ensureChangelogTopic({ brokers: cluster.brokers, topic: fresh, partitions: 1, timeoutMs }).catch(
        (e: unknown) => e,
      ),
    ).toSatisfy((r) => (cluster.isMock ? isKafkaAdminUnsupportedError(r) : (r as { created: boolean }).created));
  });

  it("rejects an unknown checkConfig value", async () => {
    await expect(
      ensureChangelogTopic({ brokers: cluster.brokers, topic, partitions, checkConfig: "maybe" as "skip" }),
    ).rejects.toSatisfy(isConfigurationError);
  });

  it('with checkConfig "skip", checks only the partition count', async () => {
    expect(
      await ensureChangelogTopic({ brokers: cluster.brokers, topic, partitions, timeoutMs, checkConfig: "skip" }),
    ).toEqual({ topic, created: false, partitions, cleanupPolicy: undefined });
  });

  if (process.env.KAFKA_BROKERS?.trim()) {
    it("on a real broker: reports the cleanup.policy of a compacted topic, rejects a topic with delete", async () => {
      expect(await ensureChangelogTopic({ brokers: cluster.brokers, topic, partitions, timeoutMs })).toEqual({
        topic,
        created: false,
        partitions,
        cleanupPolicy: "compact",
      });
      const deleting = uniqueTopic("statelog-ensure-deleting");
      const { Admin } = await import("@platformatic/kafka");
      const admin = new Admin({ clientId: "statelog-test", bootstrapBrokers: cluster.brokers.split(",") });
      try {
        await admin.createTopics({
          topics: [deleting],
          partitions: 2,
          replicas: Number(process.env.KAFKA_TEST_REPLICATION_FACTOR ?? 1),
          configs: [{ name: "cleanup.policy", value: "delete" }],
        });
      } finally {
        await admin.close();
      }
      const error = await ensureChangelogTopic({
        brokers: cluster.brokers,
        topic: deleting,
        partitions: 2,
        timeoutMs,
      }).catch((e: unknown) => e);
      expect(isKafkaTopicError(error)).toBe(true);
      expect((error as Error).message).toContain("cleanup.policy=delete");
    });

    it("on a real broker: creates a missing topic as compacted", async () => {
      const fresh = uniqueTopic("statelog-ensure-new");
      const replicationFactor = Number(process.env.KAFKA_TEST_REPLICATION_FACTOR ?? 1);
      const options = { brokers: cluster.brokers, topic: fresh, partitions: 3, replicationFactor, timeoutMs };
      expect(await ensureChangelogTopic(options)).toMatchObject({ created: true, cleanupPolicy: "compact" });
      expect(await ensureChangelogTopic(options)).toMatchObject({ created: false, cleanupPolicy: "compact" });
    });
  } else {
    it("on the mock cluster: says clearly that it cannot create topics", async () => {
      const error = await ensureChangelogTopic({
        brokers: cluster.brokers,
        topic: uniqueTopic("statelog-ensure-new"),
        partitions: 3,
        replicationFactor: 1,
        timeoutMs,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KafkaAdminUnsupportedError);
      expect((error as KafkaAdminUnsupportedError).operation).toBe("CreateTopics");
      expect((error as Error).message).toContain("mock cluster has no CreateTopics API");
    });

    it("on the mock cluster: says clearly that it cannot check cleanup.policy, and how to go on", async () => {
      const error = await ensureChangelogTopic({ brokers: cluster.brokers, topic, partitions, timeoutMs }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(KafkaAdminUnsupportedError);
      expect((error as KafkaAdminUnsupportedError).operation).toBe("DescribeConfigs");
      expect((error as Error).message).toContain(`cleanup.policy of ${JSON.stringify(topic)} cannot be checked`);
      expect((error as Error).message).toContain('checkConfig: "skip"');
    });
  }

  it("reports an unreachable broker as a topic error, not as a missing API", async () => {
    const port = await closedPort();
    const error = await describeTopicConfig(`127.0.0.1:${port}`, topic, ["cleanup.policy"], {
      timeoutMs: 2_000,
    }).catch((e: unknown) => e);
    expect(isKafkaTopicError(error)).toBe(true);
    expect(isKafkaAdminUnsupportedError(error)).toBe(false);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });
});

/** A loopback port nothing listens on (bound once, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
