import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type ChangeInput, defineEntityType, ErrorCode, type Store } from "../../src/index.js";
import { ChangelogWriter, KafkaErrorCode, KafkaStore, type KafkaStoreOptions } from "../../src/kafka/index.js";
import { expectCode } from "../../src/testing/assert.js";
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

const open = (options: KafkaStoreOptions = {}): Promise<KafkaStore> =>
  KafkaStore.open({ brokers: cluster.brokers, topic, producerConfig: { "linger.ms": 1 }, ...options });

describeStoreContract("KafkaStore", (): Promise<Store> => open(), {
  reopen: async (store) => {
    await store.close();
    return open();
  },
  propertyRuns: 25,
});

const set = (namespace: string, entityType: string, entityId: string, entity: unknown): ChangeInput => ({
  namespace,
  changeType: "set",
  entityType,
  entityId,
  entity,
});

const Item = defineEntityType("item", { schema: z.object({ id: z.string() }) });

describe("KafkaStore entity types", () => {
  it("a registered schema refuses an invalid entity before anything is written", async () => {
    await using store = await open();
    store.registerEntityType(Item);
    await expectCode(
      store.save([set("types-schema", "item", "ok", { id: "ok" }), set("types-schema", "item", "bad", { id: 5 })]),
      ErrorCode.Validation,
    );
    expect(await store.load("types-schema")).toEqual([]);
    await store.save([set("types-schema", "item", "ok", { id: "ok" })]);
    expect((await store.load("types-schema")).map((c) => c.entity)).toEqual([{ id: "ok" }]);
  });

  it('unknownEntityTypes "reject" refuses unregistered types on save (nothing written) and on load', async () => {
    await using loose = await open();
    await loose.save([set("types-reject", "mystery", "m", { any: 1 })]);
    await using strict = await open({ unknownEntityTypes: "reject", entityTypes: ["item"] });
    await expectCode(
      strict.save([set("types-reject", "item", "a", { id: "a" }), set("types-reject", "other", "x", {})]),
      ErrorCode.UnknownEntityType,
    );
    await expectCode(strict.load("types-reject"), ErrorCode.UnknownEntityType);
    strict.registerEntityType("mystery");
    expect((await strict.load("types-reject")).map((c) => [c.entityType, c.entityId])).toEqual([["mystery", "m"]]);
  });

  it("liveOnly leaves tombstones out; without it they are loaded", async () => {
    await using store = await open();
    await store.save([
      set("live-only", "item", "a", { id: "a" }),
      set("live-only", "item", "b", { id: "b" }),
      { namespace: "live-only", changeType: "unset", entityType: "item", entityId: "a" },
    ]);
    expect((await store.load("live-only")).map((c) => [c.entityId, c.changeType])).toEqual([
      ["b", "set"],
      ["a", "unset"],
    ]);
    expect((await store.load("live-only", { liveOnly: true })).map((c) => [c.entityId, c.changeType])).toEqual([
      ["b", "set"],
    ]);
  });

  it("every call after close() is a ClosedError; close() is idempotent", async () => {
    const store = await open();
    await store.close();
    await store.close();
    await expectCode(store.load("closed"), ErrorCode.Closed);
    await expectCode(store.save([set("closed", "item", "a", { id: "a" })]), ErrorCode.Closed);
    await expectCode(store.listNamespaces(), ErrorCode.Closed);
  });
});

describe("KafkaStore: a change larger than the producer sends", () => {
  it("is a TooLargeError before anything of its save is written: maxValueBytes follows message.max.bytes", async () => {
    // The producer's message.max.bytes less room for the key and framing: a larger value is refused by validation.
    await using store = await open({ producerConfig: { "message.max.bytes": 6000 } });
    const changes = [
      set("refused", "item", "small", { id: "small" }),
      set("refused", "item", "big", { id: "x".repeat(5000) }),
      set("refused", "item", "after", { id: "after" }),
    ];
    await expectCode(() => store.save(changes), ErrorCode.TooLarge);
    expect(await store.load("refused")).toEqual([]);
    await store.save([changes[0]!, changes[2]!]);
    expect((await store.load("refused")).map((c) => c.entityId)).toEqual(["small", "after"]);
  });
});

describe("KafkaStore: connecting", () => {
  it("a producer that cannot connect fails the save with a KafkaTopicError carrying librdkafka's reason", async () => {
    // librdkafka refuses this setting when the producer connects (this build has no GSSAPI).
    await using store = await open({
      producerConfig: { "security.protocol": "sasl_plaintext", "sasl.mechanisms": "GSSAPI" },
    });
    const error = await expectCode(() => store.save([set("conn", "item", "a", { id: "a" })]), KafkaErrorCode.Topic);
    expect((error as Error).message).toMatch(/cannot connect to .*GSSAPI/);
    expect((error as Error).cause).toBeDefined();
  });

  it("a save to a topic that does not exist is a KafkaTopicError and does not create the topic", async () => {
    // A broker's auto-created topic would have its default cleanup.policy (delete) and partition count.
    const missing = uniqueTopic("statelog-store-missing");
    for (const partitions of [undefined, 6]) {
      await using store = await open({ topic: missing, ...(partitions === undefined ? {} : { partitions }) });
      const error = await expectCode(
        () => store.save([set("missing", "item", "a", { id: "a" })]),
        KafkaErrorCode.Topic,
      );
      expect((error as Error).message).toContain("does not exist");
    }
    await using writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic: missing });
    await expectCode(() => writer.set("missing", { changeLogId: () => "/item/a" }), KafkaErrorCode.Topic);
    // Still missing: a store that follows the topic's partition count finds none.
    await using reader = await open({ topic: missing });
    const load = await expectCode(() => reader.load("missing"), KafkaErrorCode.Topic);
    expect((load as Error).message).toContain("does not exist");
  });

  it("a read of a topic that does not exist is a KafkaTopicError, also with partitions given", async () => {
    const missing = uniqueTopic("statelog-store-missing");
    for (const partitions of [undefined, 6]) {
      await using store = await open({ topic: missing, ...(partitions === undefined ? {} : { partitions }) });
      for (const read of [
        () => store.load("missing"),
        () => store.listNamespaces(),
        () => store.watch("missing")[Symbol.asyncIterator]().next(),
      ]) {
        const error = await expectCode(read, KafkaErrorCode.Topic);
        expect((error as Error).message, `partitions ${partitions}`).toContain("does not exist");
      }
    }
  });

  it("a partitions option other than the topic's count is refused by the first save and the first load", async () => {
    await using store = await open({ partitions: 3 }); // the topic has 6
    const save = await expectCode(() => store.save([set("parts", "item", "a", { id: "a" })]), KafkaErrorCode.Topic);
    expect((save as Error).message).toContain("has 6 partitions, but the option partitions is 3");
    const load = await expectCode(() => store.load("parts"), KafkaErrorCode.Topic);
    expect((load as Error).message).toContain("has 6 partitions, but the option partitions is 3");
    await using right = await open({ partitions: 6 });
    await right.save([set("parts", "item", "a", { id: "a" })]);
    expect((await right.load("parts")).map((c) => c.entityId)).toEqual(["a"]);
  });
});
