import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FeedNotifier, isFeedBehindError, ManagerBuilder } from "../../src/index.js";
import type { ChangelogConsumer, ReadRange } from "../../src/kafka/consumer.js";
import { KafkaFeedSource } from "../../src/kafka/feed.js";
import { KafkaStore, type KafkaStoreOptions } from "../../src/kafka/index.js";
import { MapEntityRepository } from "../../src/memory/index.js";
import { describeChangeFeedContract } from "../../src/testing/index.js";
import { barrierOf, item, piecesOf, untilBarrier } from "../helpers/feed.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

const PARTITIONS = 3;
const open = (options: KafkaStoreOptions = {}): Promise<KafkaStore> =>
  KafkaStore.open({ brokers: cluster.brokers, producerConfig: { "linger.ms": 1 }, ...options });

/** A store on a topic of its own (a test may delete it), of `partitions` partitions. */
async function fresh(options: KafkaStoreOptions = {}, partitions = PARTITIONS): Promise<KafkaStore> {
  const topic = uniqueTopic("statelog-feed");
  await cluster.createTopic(topic, partitions);
  return open({ topic, ...options });
}

describeChangeFeedContract("KafkaStore", () => fresh(), {
  peer: (store) => open({ topic: (store as KafkaStore).topic }),
  // The topic deleted and created again: its offsets start at 0 anew, so the cursor is past the partition's end.
  makeBehind: async (store, _namespace, cursor) => {
    const { topic } = store as KafkaStore;
    await cluster.deleteTopic(topic);
    await cluster.createTopic(topic, PARTITIONS);
    return cursor;
  },
  propertyRuns: 10,
});

describe("KafkaStore change feed", () => {
  it("reads at most batchSize changes at a time past the current state (resumed, and behind its consumer)", async () => {
    const store = await fresh({}, 1);
    try {
      // One partition: another namespace's records lie between this one's; a piece counts this namespace's only.
      const reads = await piecesOf(store, "ns", 3, "other");
      expect(reads.every((r) => r.items <= 3)).toBe(true);
      // Twenty changes after the cursor: six full pieces that say there is more, then the last two.
      expect(reads.slice(0, 7)).toEqual([...Array(6).fill({ items: 3, more: true }), { items: 2, more: false }]);
    } finally {
      await store.close();
    }
  });

  it("positions are offsets of the namespace's partition (the one after each record); tombstones are unsets", async () => {
    await using store = await fresh({}, 1);
    await store.save([item("ns", "a", 1), item("ns", "b", 2), item("ns", "a", 3)]);
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    const initial = await untilBarrier(it);
    // b (offset 1), then a's latest (offset 2); the barrier is the partition's end offset.
    expect(initial.map((e) => [e.type, e.position])).toEqual([
      ["change", 2],
      ["change", 3],
      ["caught-up", 3],
    ]);
    await store.save([{ namespace: "ns", changeType: "unset", entityType: "item", entityId: "b" }]);
    const next = await it.next();
    expect(next.value).toMatchObject({ type: "change", position: 4, change: { entityId: "b", changeType: "unset" } });
    feed.close();
  });

  it("a position past the partition's end is behind", async () => {
    await using store = await fresh();
    await store.save([item("ns", "a", 1)]);
    const feed = store.watch("ns", { from: 1000 });
    await expect(feed[Symbol.asyncIterator]().next()).rejects.toSatisfy(isFeedBehindError);
  });

  it("a follower sees another store's saves; waitFor gives read-your-writes", async () => {
    await using reader = await fresh();
    await using writer = await open({ topic: reader.topic });
    await writer.save([item("shared", "a", 1)]);
    const items = new MapEntityRepository<number>();
    const manager = new ManagerBuilder().withStore(reader).registerRepository<number>("item", items).build();
    const follower = await manager.follow("shared", { pollIntervalMs: 20 });
    expect([...items.entities]).toEqual([["a", 1]]);
    await writer.save([
      item("shared", "b", 2),
      { namespace: "shared", changeType: "unset", entityType: "item", entityId: "a" },
    ]);
    await follower.waitFor(await barrierOf(writer, "shared"));
    expect([...items.entities]).toEqual([["b", 2]]);
    await follower.close();
  });

  it("a position below the partition's first offset (records removed by retention) is behind, also when removed during the read", async () => {
    // The mock cluster has no DeleteRecords: a consumer whose partition starts at offset 10.
    let start = 10;
    const consumer = {
      watermarks: async () => ({ lowOffset: 10, highOffset: 20 }),
      read: async (_p: readonly number[], _sink: unknown, _o: unknown, from?: ReadonlyMap<number, number>) =>
        ({
          starts: new Map([[0, Math.max(from?.get(0) ?? 0, start)]]),
          ends: new Map([[0, 20]]),
          limited: new Set<number>(),
          highs: new Map([[0, 20]]),
        }) satisfies ReadRange,
      close: async () => undefined,
    } as unknown as ChangelogConsumer;
    const source = new KafkaFeedSource({
      namespace: "ns",
      consumer,
      partition: async () => 0,
      decode: () => {
        throw new Error("no record is read");
      },
      notifier: new FeedNotifier(),
      pollIntervalMs: 10,
      batchSize: 10_000,
    });
    const signal = new AbortController().signal;
    await expect(source.read({ position: 9, epoch: "" }, signal)).rejects.toSatisfy(isFeedBehindError);
    expect((await source.read({ position: 10, epoch: "" }, signal)).cursor).toEqual({ position: 20, epoch: "" });
    start = 12; // retention removed offsets 10 and 11 between the check and the read
    await expect(source.read({ position: 11, epoch: "" }, signal)).rejects.toSatisfy(isFeedBehindError);
  });
});
