/**
 * Every invalid option of the Kafka classes is a ConfigurationError naming
 * the class and the option, raised by `open()` (or the call) before any
 * connection: wrong types, out-of-range numbers, unknown names (with a
 * hint for old spellings). No broker is needed: nothing connects.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/index.js";
import {
  CHANGELOG_READER_DEFAULTS,
  CHANGELOG_WRITER_DEFAULTS,
  ChangelogReader,
  ChangelogWriter,
  ENSURE_CHANGELOG_TOPIC_DEFAULTS,
  ensureChangelogTopic,
  KAFKA_STORE_DEFAULTS,
  type KafkaConfig,
  KafkaStore,
} from "../../src/kafka/index.js";
import { expectCode } from "../../src/testing/assert.js";

const env = {}; // no KAFKA_* variables leak in from the machine running the tests

async function refused(open: () => Promise<unknown>, ...fragments: string[]): Promise<void> {
  const error = await expectCode(open, ErrorCode.Configuration);
  for (const f of fragments) expect((error as Error).message).toContain(f);
}

describe("ChangelogWriter.open options", () => {
  it.each([
    [{ brokers: "" }, "brokers"],
    [{ brokers: [] }, "brokers"],
    [{ brokers: 9092 }, "brokers"],
    [{ topic: "" }, "topic"],
    [{ topic: "  " }, "topic"],
    [{ topic: 5 }, "topic"],
    [{ partitions: 0 }, "partitions"],
    [{ partitions: 1.5 }, "partitions"],
    [{ maxValueBytes: 0 }, "maxValueBytes"],
    [{ maxValueBytes: "1MB" }, "maxValueBytes"],
    [{ producerConfig: "acks=all" }, "producerConfig"],
    [{ producerConfig: { acks: { all: true } } }, "producerConfig"],
    [{ producerConfig: { "enable.idempotence": false } }, "producerConfig"],
    [{ producerConfig: { "enable.idempotence": "false", "max.in.flight": 2 } }, "producerConfig"],
    [{ producerConfig: { "enable.idempotence": 0 } }, "producerConfig"],
    [{ producerConfig: { "enable.idempotence": "False" } }, "producerConfig"],
    [{ producerConfig: { "enable.idempotence": "f", retries: 0 } }, "producerConfig"],
    // What librdkafka refuses with idempotence on (the default), and settings it does not know.
    [{ producerConfig: { acks: 1 } }, "producerConfig"],
    [{ producerConfig: { "request.required.acks": "1" } }, "producerConfig"],
    [{ producerConfig: { "max.in.flight": 10 } }, "producerConfig"],
    [{ producerConfig: { "no.such.setting": 1 } }, "producerConfig"],
    [{ producerConfig: { "batch.num.messages": 0 } }, "producerConfig"],
    // A value the producer could not send (message.max.bytes, 1100000 unless set).
    [{ maxValueBytes: 2_000_000 }, "maxValueBytes"],
    [{ maxValueBytes: 200_000, producerConfig: { "message.max.bytes": 100_000 } }, "maxValueBytes"],
    [{ env: "prod" }, "env"],
  ])("refuses %j", async (options, name) => {
    await refused(() => ChangelogWriter.open({ env, ...(options as object) }), "ChangelogWriter", `option ${name}`);
  });

  it("refuses unknown option names, with a hint for old spellings", async () => {
    await refused(() => ChangelogWriter.open({ env, topik: "t" } as object), "ChangelogWriter has no option topik");
    await refused(
      () => ChangelogWriter.open({ env, workspaceId: "ws" } as object),
      "no option workspaceId; it is called namespace",
    );
    await refused(() => ChangelogWriter.open({ env, maxBytes: 10 } as object), "it is called maxValueBytes");
    await refused(() => ChangelogWriter.open("localhost:9092" as unknown as object), "options must be an object");
  });

  it("maxValueBytes follows a smaller message.max.bytes when not given (1024 bytes kept for the key and framing)", async () => {
    await using small = await ChangelogWriter.open({ env, producerConfig: { "message.max.bytes": 100_000 } });
    expect(small.maxValueBytes).toBe(100_000 - 1024);
    await using plain = await ChangelogWriter.open({ env });
    expect(plain.maxValueBytes).toBe(1024 * 1024);
    await using fits = await ChangelogWriter.open({ env, maxValueBytes: 1_098_976 });
    expect(fits.maxValueBytes).toBe(1_098_976);
    await refused(() => ChangelogWriter.open({ env, maxValueBytes: 1_098_977 }), "at most 1098976");
  });

  it("takes valid options, and its defaults are exported", async () => {
    await using writer = await ChangelogWriter.open({ env, brokers: "b:1", partitions: 3, maxValueBytes: 10 });
    expect([writer.brokers, writer.topic, writer.partitions]).toEqual(["b:1", CHANGELOG_WRITER_DEFAULTS.topic, 3]);
    expect(CHANGELOG_WRITER_DEFAULTS.producerConfig.acks).toBe("all");
    expect(CHANGELOG_WRITER_DEFAULTS.maxValueBytes).toBe(1024 * 1024);
    // maxValueBytes is applied: a value over 10 bytes is refused before writing.
    await expectCode(writer.set("ns", { changeLogId: () => "ns/item/1", text: "more than ten" }), ErrorCode.TooLarge);
  });

  it("refuses a producer that could store a retried write after a later one; takes one without idempotence and one request in flight", async () => {
    await refused(
      () => ChangelogWriter.open({ env, producerConfig: { "enable.idempotence": false } }),
      'option producerConfig must be idempotent ("enable.idempotence": true), or with one request in flight ("max.in.flight.requests.per.connection": 1)',
    );
    await refused(
      () => KafkaStore.open({ env, producerConfig: { "enable.idempotence": false } }),
      "KafkaStore option producerConfig must be idempotent",
    );
    const taken: KafkaConfig[] = [
      { "enable.idempotence": false, "max.in.flight.requests.per.connection": 1 },
      { "enable.idempotence": "false", "max.in.flight": 1 }, // the alias given: the default of the other name yields
      { "enable.idempotence": "TRUE", "max.in.flight": 5 },
    ];
    for (const producerConfig of taken) {
      await using writer = await ChangelogWriter.open({ env, brokers: "b:1", partitions: 1, producerConfig });
      expect(writer.partitions).toBe(1); // opened: the settings were taken
    }
  });
});

describe("ChangelogReader.open options", () => {
  it.each([
    [{ groupId: "" }, "groupId"],
    [{ groupId: 1 }, "groupId"],
    [{ commitOffsets: "yes" }, "commitOffsets"],
    [{ partitions: -1 }, "partitions"],
    [{ consumerConfig: ["x"] }, "consumerConfig"],
    [{ stallTimeoutMs: 0 }, "stallTimeoutMs"],
    [{ stallTimeoutMs: Number.POSITIVE_INFINITY }, "stallTimeoutMs"],
    [{ brokers: [""] }, "brokers"],
    [{ consumerConfig: { "no.such.setting": 1 } }, "consumerConfig"],
  ])("refuses %j", async (options, name) => {
    await refused(() => ChangelogReader.open({ env, ...(options as object) }), "ChangelogReader", `option ${name}`);
  });

  it("refuses unknown option names, with a hint for old spellings", async () => {
    await refused(() => ChangelogReader.open({ env, stallTimeout: 5 } as object), "it is called stallTimeoutMs");
    await refused(() => ChangelogReader.open({ env, group: "g" } as object), "it is called groupId");
    await refused(() => ChangelogReader.open({ env, producerConfig: {} } as object), "has no option producerConfig");
  });

  it("takes valid options, and its defaults are exported", async () => {
    await using reader = await ChangelogReader.open({ env, commitOffsets: true, groupId: "g" });
    expect([reader.commitOffsets, reader.groupId]).toEqual([true, "g"]);
    expect(CHANGELOG_READER_DEFAULTS).toMatchObject({ commitOffsets: false, stallTimeoutMs: 60_000 });
  });

  it("loadChanges refuses the old workspaceId option and a bad `from`, before reading", async () => {
    await using reader = await ChangelogReader.open({ env, brokers: "127.0.0.1:9" });
    await refused(
      () => reader.loadChanges({ workspaceId: "ws" } as object),
      "ChangelogReader.loadChanges has no option workspaceId; it is called namespace",
    );
    await refused(() => reader.loadChanges({ from: "latest" as "beginning" }), "option from");
    // An offset that is not an integer >= 0 would leave its partition unread (and commit its end).
    for (const offset of [Number.NaN, -1, 1.5, "3"]) {
      await refused(() => reader.loadChanges({ from: new Map([[0, offset as number]]) }), "option from");
    }
    await refused(() => reader.loadChanges({ from: new Map([[-1, 0]]) }), "option from");
    await refused(() => reader.loadChanges({ namespace: "" }), "option namespace");
  });
});

describe("KafkaStore.open options", () => {
  it.each([
    [{ maxValueBytes: -5 }, "maxValueBytes"],
    [{ unknownEntityTypes: "maybe" }, "unknownEntityTypes"],
    [{ clock: "now" }, "clock"],
    [{ entityTypes: "item" }, "entityTypes"],
    [{ partitions: "6" }, "partitions"],
    [{ groupId: "" }, "groupId"],
    [{ stallTimeoutMs: -1 }, "stallTimeoutMs"],
    [{ producerConfig: null }, "producerConfig"],
    [{ consumerConfig: 5 }, "consumerConfig"],
    [{ consumerConfig: { "fetch.wait.max.ms": -1 } }, "consumerConfig"],
    [{ producerConfig: { "no.such.setting": true } }, "producerConfig"],
    [{ producerConfig: { acks: 0 } }, "producerConfig"],
    [{ maxValueBytes: 1_099_000 }, "maxValueBytes"],
    [{ topic: "" }, "topic"],
  ])("refuses %j", async (options, name) => {
    await refused(() => KafkaStore.open({ env, ...(options as object) }), "KafkaStore", `option ${name}`);
  });

  it("refuses unknown option names, with a hint for old spellings", async () => {
    await refused(() => KafkaStore.open({ env, workspace: "ws" } as object), "it is called namespace");
    await refused(() => KafkaStore.open({ env, "bootstrap.servers": "x:1" } as object), "it is called brokers");
    await refused(
      () => KafkaStore.open({ env, commitOffsets: true } as object),
      "KafkaStore has no option commitOffsets",
    );
  });

  it("takes valid options, and its defaults are exported", async () => {
    await using store = await KafkaStore.open({ env, topic: "t", unknownEntityTypes: "reject", entityTypes: ["a"] });
    expect(store.topic).toBe("t");
    expect(KAFKA_STORE_DEFAULTS).toMatchObject({ unknownEntityTypes: "accept", maxValueBytes: 1024 * 1024 });
  });
});

describe("ensureChangelogTopic options", () => {
  it.each([
    [{ partitions: 0 }, "partitions"],
    [{ replicationFactor: 0.5 }, "replicationFactor"],
    [{ timeoutMs: 0 }, "timeoutMs"],
    [{ checkConfig: "maybe" }, "checkConfig"],
    [{ config: { "cleanup.policy": "delete" } }, 'config["cleanup.policy"]'],
    [{ config: { "min.compaction.lag.ms": 60000 } }, "config"],
    [{ clientConfig: { "sasl.username": null } }, "clientConfig"],
    [{ configAdminOptions: "tls" }, "configAdminOptions"],
  ])("refuses %j", async (options, name) => {
    await refused(
      () => ensureChangelogTopic({ env, brokers: "127.0.0.1:9", ...(options as object) }),
      "ensureChangelogTopic",
      `option ${name}`,
    );
  });

  it("refuses unknown option names, with a hint for old spellings", async () => {
    await refused(() => ensureChangelogTopic({ env, numPartitions: 3 } as object), "it is called partitions");
  });

  it("exports its defaults", () => {
    expect(ENSURE_CHANGELOG_TOPIC_DEFAULTS).toMatchObject({
      partitions: 10,
      replicationFactor: 3,
      timeoutMs: 30_000,
      checkConfig: "require",
      config: { "cleanup.policy": "compact" },
    });
  });
});
