/**
 * Committed offsets: `commitOffsets` commits the end offsets a completed
 * load read up to, for the reader's group, without joining the group;
 * `committedOffsets()` reads them back; `loadChanges` reads only what was
 * written after them. Without `commitOffsets` nothing is committed and no
 * group is joined.
 */
import type { KafkaConsumer } from "@confluentinc/kafka-javascript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKafkaClient } from "../../src/kafka/client.js";
import {
  ChangelogReader,
  type ChangelogReaderOptions,
  ChangelogWriter,
  isKafkaCommitError,
  isKafkaReadError,
  partitionForNamespace,
} from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

const PARTITIONS = 6;

describe("committed offsets", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-offsets");
  let writer: ChangelogWriter;
  /** The end offset of every partition, from the broker's acknowledgements (only this file writes the topic). */
  const ends = new Map<number, number>(Array.from({ length: PARTITIONS }, (_, p) => [p, 0]));
  let groups = 0;
  const group = () => `statelog-offsets-${process.pid}-${++groups}`;
  const open: ChangelogReader[] = [];
  const reader = async (options: ChangelogReaderOptions = {}) => {
    const r = await ChangelogReader.open({ brokers: cluster.brokers, topic, stallTimeoutMs: 15_000, ...options });
    open.push(r);
    return r;
  };

  async function set(ws: string, id: string, v: number): Promise<void> {
    const d = await writer.set(ws, { changeLogId: () => `${ws}/item/${id}`, v });
    ends.set(d.partition, Math.max(ends.get(d.partition)!, d.offset + 1));
  }
  async function del(ws: string, id: string): Promise<void> {
    const d = await writer.delete(ws, `${ws}/item/${id}`);
    ends.set(d.partition, Math.max(ends.get(d.partition)!, d.offset + 1));
  }

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createTopic(topic, PARTITIONS);
    writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic, producerConfig: { "linger.ms": 2 } });
    for (let i = 0; i < 60; i++) await set(`ow-${i % 12}`, String(i % 20), i);
    await del("ow-3", "3");
  });
  afterAll(async () => {
    for (const r of open) await r.close();
    await writer?.close();
    await cluster?.stop();
  });

  it("a completed load commits the end offsets it read; another reader of the group sees them", async () => {
    const g = group();
    const committing = await reader({ groupId: g, commitOffsets: true });
    expect(committing.commitOffsets).toBe(true);
    const other = await reader({ groupId: g });
    expect(await other.committedOffsets()).toEqual(new Map());
    expect(Math.min(...ends.values())).toBeGreaterThan(0); // every partition has records

    const map = await committing.loadAllIntoMap();
    expect(map.size).toBeGreaterThan(0);
    expect(await other.committedOffsets()).toEqual(ends);
    expect(await committing.committedOffsets()).toEqual(ends);

    // The group id can come from the environment, as $KAFKA_CHANGELOG_GROUP_ID.
    const fromEnv = await reader({ env: { KAFKA_CHANGELOG_GROUP_ID: g } });
    expect(fromEnv.groupId).toBe(g);
    expect(await fromEnv.committedOffsets()).toEqual(ends);
  });

  it("loadForNamespace commits only the namespace's partition; loadAll commits after its handler, not when it throws", async () => {
    const gw = group();
    await (await reader({ groupId: gw, commitOffsets: true })).loadForNamespace("ow-5");
    const p = partitionForNamespace("ow-5", PARTITIONS);
    expect(await (await reader({ groupId: gw })).committedOffsets()).toEqual(new Map([[p, ends.get(p)!]]));

    const ga = group();
    const failing = await reader({ groupId: ga, commitOffsets: true });
    await expect(
      failing.loadAll(() => {
        throw new Error("handler failed");
      }),
    ).rejects.toThrow("handler failed");
    expect(await failing.committedOffsets()).toEqual(new Map());
    let handled = 0;
    await failing.loadAll(() => {
      handled++;
    });
    expect(handled).toBeGreaterThan(0);
    expect(await failing.committedOffsets()).toEqual(ends);
  });

  it("without commitOffsets, no load commits anything", async () => {
    const g = group();
    const plain = await reader({ groupId: g });
    expect(plain.commitOffsets).toBe(false);
    await plain.loadAll(() => undefined);
    await plain.loadAllIntoMap();
    await plain.loadForNamespace("ow-1");
    const changes = await plain.loadChanges();
    expect(changes.committed).toBe(false);
    expect(changes.ends).toEqual(ends);
    expect(await (await reader({ groupId: g })).committedOffsets()).toEqual(new Map());
  });

  it("a load without commitOffsets never joins its group (the mock refuses member-less commits to a joined group)", async (ctx) => {
    if (!cluster.isMock) {
      ctx.skip("relies on the mock cluster's group bookkeeping");
      return;
    }
    const { KafkaConsumer } = await loadKafkaClient();
    // Control: a consumer that subscribes joins the group; a member-less commit is then refused.
    const joined = group();
    const member: KafkaConsumer = new KafkaConsumer(
      { "bootstrap.servers": cluster.brokers, "group.id": joined, "enable.auto.commit": false },
      {},
    );
    await new Promise<void>((ok, fail) => member.connect({}, (err) => (err ? fail(err) : ok())));
    try {
      member.subscribe([topic]);
      member.setDefaultConsumeTimeout(100);
      const start = Date.now();
      while (member.assignments().length === 0 && Date.now() - start < 20_000) {
        await new Promise<void>((ok) => member.consume(1, () => ok()));
      }
      expect(member.assignments().length).toBe(PARTITIONS);
      const refused = await reader({ groupId: joined, commitOffsets: true });
      await expect(refused.loadForNamespace("ow-1")).rejects.toSatisfy(
        (e) => isKafkaCommitError(e) && /unknown member/i.test((e as Error).message),
      );
      expect(await refused.committedOffsets()).toEqual(new Map());
    } finally {
      await new Promise<void>((ok) => member.disconnect(() => ok()));
    }

    // A reader without commitOffsets loads (and stays open): the group has no member, commits go through.
    const g = group();
    const plain = await reader({ groupId: g });
    await plain.loadAllIntoMap();
    await plain.loadForNamespace("ow-2");
    const committing = await reader({ groupId: g, commitOffsets: true });
    await committing.loadAllIntoMap();
    expect(await plain.committedOffsets()).toEqual(ends);
  });

  it("loadChanges reads exactly the records written after the group's committed offsets", async () => {
    const g = group();
    const tail = await reader({ groupId: g, commitOffsets: true });
    const first = await tail.loadChanges(); // nothing committed yet: everything, from the beginning
    expect(first.committed).toBe(true);
    expect(first.starts).toEqual(new Map([...ends.keys()].map((p) => [p, 0])));
    expect(first.entries.some((e) => e.key === "ow-3/item/3" && e.isTombstone)).toBe(true);
    const before = new Map(ends);
    expect(await tail.committedOffsets()).toEqual(before);

    await set("ow-1", "new", 1);
    await set("ow-1", "new", 2); // the latest per key wins
    await set("ow-7", "7", 100); // an existing key, re-written
    await set("ow-9", "x", 1);
    await del("ow-9", "x"); // written and deleted after the commit: a tombstone
    await del("ow-2", "2"); // an existing key deleted

    const changes = await tail.loadChanges();
    expect(changes.starts).toEqual(before);
    expect(changes.ends).toEqual(ends);
    const got = new Map(
      changes.entries.map((e) => [e.key, e.isTombstone ? "tombstone" : e.unmarshal<{ v: number }>().v]),
    );
    expect(got).toEqual(
      new Map<string, number | string>([
        ["ow-1/item/new", 2],
        ["ow-7/item/7", 100],
        ["ow-9/item/x", "tombstone"],
        ["ow-2/item/2", "tombstone"],
      ]),
    );
    expect(await (await reader({ groupId: g })).committedOffsets()).toEqual(ends);
    expect((await tail.loadChanges()).entries).toEqual([]); // nothing new since

    // One namespace only; explicit offsets with a manual commit after applying.
    await set("ow-1", "again", 3);
    await set("ow-4", "other", 3);
    const manual = await reader({ groupId: g });
    const ws = await manual.loadChanges({ namespace: "ow-1" });
    expect(ws.committed).toBe(false);
    expect(ws.entries.map((e) => e.key)).toEqual(["ow-1/item/again"]);
    const p = partitionForNamespace("ow-1", PARTITIONS);
    expect([...ws.ends.keys()]).toEqual([p]);
    await manual.commit(ws.ends);
    expect((await manual.committedOffsets()).get(p)).toBe(ends.get(p));
    const rest = await manual.loadChanges({ from: await manual.committedOffsets() });
    expect(partitionForNamespace("ow-4", PARTITIONS)).not.toBe(p);
    expect(rest.entries.map((e) => e.key)).toEqual(["ow-4/item/other"]);
    const all = await manual.loadChanges({ from: "beginning" });
    expect(all.entries.length).toBe(first.entries.length + 4); // the keys new since the first read
  });

  it("rejects a start offset past a partition's end", async () => {
    const r = await reader({ groupId: group() });
    await expect(r.loadChanges({ from: new Map([[0, ends.get(0)! + 10]]) })).rejects.toSatisfy(isKafkaReadError);
  });
});
