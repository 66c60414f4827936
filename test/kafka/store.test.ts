import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  type ChangeInput,
  defineEntityType,
  ErrorCode,
  isPartialWriteError,
  type PartialWriteError,
  type Store,
} from "../../src/index.js";
import { isKafkaDeliveryError, KafkaStore, type KafkaStoreOptions } from "../../src/kafka/index.js";
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

describe("KafkaStore: a record the producer refuses", () => {
  it("a save of several changes rejects with PartialWriteError: the refused record failed, the others were written", async () => {
    // librdkafka refuses a record over message.max.bytes at once: it certainly did not reach the broker.
    await using store = await open({ producerConfig: { "message.max.bytes": 1000 } });
    const changes = [
      set("refused", "item", "small", { id: "small" }),
      set("refused", "item", "big", { id: "x".repeat(5000) }),
      set("refused", "item", "after", { id: "after" }),
    ];
    const error = await store.save(changes).catch((e: unknown) => e);
    expect(isPartialWriteError(error), String(error)).toBe(true);
    const partial = error as PartialWriteError;
    expect(partial.targets).toBe("changes");
    expect(partial.written).toEqual([0, 2]);
    expect(partial.uncertain).toEqual([]);
    expect(partial.failed.map((f) => f.index)).toEqual([1]);
    expect(isKafkaDeliveryError(partial.failed[0]!.error)).toBe(true);
    expect((partial.failed[0]!.error as { mayBeWritten: boolean }).mayBeWritten).toBe(false);
    expect((await store.load("refused")).map((c) => c.entityId)).toEqual(["small", "after"]);
    // A save of that one change alone rejects with the record's own error.
    await expect(store.save([changes[1]!])).rejects.toSatisfy(isKafkaDeliveryError);
  });
});
