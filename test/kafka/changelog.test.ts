import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import {
  CHANGELOG_READER_DEFAULTS,
  CHANGELOG_WRITER_DEFAULTS,
  type Changeloggable,
  ChangelogReader,
  ChangelogWriter,
  KAFKA_STORE_DEFAULTS,
  KafkaStore,
  type LoadProgress,
  murmur2,
  partitionForNamespace,
  partitionForWorkspace,
} from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

class Item implements Changeloggable {
  constructor(
    readonly ws: string,
    readonly id: string,
    readonly v: number,
  ) {}
  changeLogId(): string {
    return `${this.ws}/item/${this.id}`;
  }
}

describe("murmur2 and partitionForNamespace", () => {
  it("matches Kafka's Java murmur2 on the known vectors", () => {
    expect(murmur2("21")).toBe(-973932308);
    expect(murmur2("foobar")).toBe(-790332482);
    expect(murmur2("a-little-bit-long-string")).toBe(-985981536);
    expect(murmur2("a-little-bit-longer-string")).toBe(-1486304829);
    expect(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")).toBe(-58897971);
    expect(murmur2("abc")).toBe(479470107);
  });

  it("hashes strings as UTF-8 bytes", () => {
    expect(murmur2("日本語")).toBe(murmur2(Buffer.from("日本語", "utf8")));
  });

  it("is (murmur2 & 0x7fffffff) % partitions, always in range", () => {
    expect(partitionForNamespace("21", 10)).toBe((-973932308 & 0x7fffffff) % 10);
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 1000 }), (ws, n) => {
        const p = partitionForNamespace(ws, n);
        return Number.isInteger(p) && p >= 0 && p < n && p === (murmur2(ws) & 0x7fffffff) % n;
      }),
    );
  });

  it("rejects a partition count that is not a positive integer", () => {
    for (const n of [0, -1, 1.5, Number.NaN]) {
      expect(() => partitionForNamespace("ws", n)).toThrow(/positive integer/);
      expect(() => partitionForWorkspace("ws", n)).toThrow(/positive integer/);
    }
  });

  it("partitionForWorkspace is an alias of partitionForNamespace", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 1000 }), (ns, n) => {
        return partitionForWorkspace(ns, n) === partitionForNamespace(ns, n);
      }),
    );
  });
});

describe("configuration", () => {
  it("explicit options win over the environment, which wins over the defaults", async () => {
    const env = { KAFKA_BROKERS: "env:1", KAFKA_CHANGELOG_TOPIC: "env-topic", KAFKA_CHANGELOG_GROUP_ID: "env-group" };
    const plain = await ChangelogReader.open({ env: {} });
    expect([plain.brokers, plain.topic, plain.groupId]).toEqual([
      CHANGELOG_READER_DEFAULTS.brokers,
      CHANGELOG_READER_DEFAULTS.topic,
      "workspace-changelog-consumer",
    ]);
    const fromEnv = await ChangelogReader.open({ env });
    expect([fromEnv.brokers, fromEnv.topic, fromEnv.groupId]).toEqual(["env:1", "env-topic", "env-group"]);
    const explicit = await ChangelogReader.open({ env, brokers: ["a:1", "b:2"], topic: "mine", groupId: "g" });
    expect([explicit.brokers, explicit.topic, explicit.groupId]).toEqual(["a:1,b:2", "mine", "g"]);
    expect((await ChangelogReader.open({ env, topic: "t" })).topic).toBe("t");
    const writer = await ChangelogWriter.open({ env });
    expect([writer.brokers, writer.topic]).toEqual(["env:1", "env-topic"]);
    const defaults = await ChangelogWriter.open({ env: {} });
    expect([defaults.brokers, defaults.topic]).toEqual([CHANGELOG_WRITER_DEFAULTS.brokers, "workspace-changelog"]);
    const store = await KafkaStore.open({ env, topic: "store-topic" });
    expect(store.topic).toBe("store-topic");
    expect((await KafkaStore.open({ env: {} })).topic).toBe(KAFKA_STORE_DEFAULTS.topic);
    for (const c of [plain, fromEnv, explicit, writer, defaults, store]) await c.close();
  });
});

describe("ChangelogWriter and ChangelogReader", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-changelog");
  const partitions = 12;
  let writer: ChangelogWriter;
  let reader: ChangelogReader;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createTopic(topic, partitions);
    writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic, producerConfig: { "linger.ms": 2 } });
    reader = await ChangelogReader.open({ brokers: cluster.brokers, topic });
  });
  afterAll(async () => {
    await writer?.close();
    await reader?.close();
    await cluster?.stop();
  });

  it("writes to the namespace's partition and resolves with the broker's offset", async () => {
    const d = await writer.set("ws-a", new Item("ws-a", "1", 1));
    expect(writer.partitions).toBe(partitions);
    expect(d.partition).toBe(partitionForNamespace("ws-a", partitions));
    expect(d.offset).toBeGreaterThanOrEqual(0);
    const shortForm = await writer.set("ws-a", { changeLogId: () => "/item/short-form", v: 1 });
    expect(shortForm.partition).toBe(d.partition);
    const map = await reader.loadForNamespace("ws-a");
    expect([...map.keys()]).toEqual(["ws-a/item/1", "ws-a/item/short-form"]);
    expect(map.get("ws-a/item/1")?.unmarshal()).toEqual({ ws: "ws-a", id: "1", v: 1 });
    const entry = map.get("ws-a/item/short-form")!;
    expect([entry.namespace, entry.entityType, entry.entityId]).toEqual(["ws-a", "item", "short-form"]);
  });

  it("loadForWorkspace is an alias of loadForNamespace", async () => {
    await writer.set("ws-alias", new Item("ws-alias", "1", 1));
    await writer.set("ws-alias", new Item("ws-alias", "2", 2));
    await writer.delete("ws-alias", "ws-alias/item/2");
    const byNamespace = await reader.loadForNamespace("ws-alias");
    const byWorkspace = await reader.loadForWorkspace("ws-alias");
    expect([...byNamespace.keys()]).toEqual(["ws-alias/item/1"]);
    expect(byWorkspace).toEqual(byNamespace);
  });

  it("compacts on the read path: duplicates per key, tombstones, many partitions", async () => {
    const namespaces = Array.from({ length: 40 }, (_, i) => `cw-${i}`);
    const model = new Map<string, number>();
    const order: string[] = [];
    let v = 0;
    for (let round = 0; round < 4; round++) {
      const writes: Promise<unknown>[] = [];
      for (const ws of namespaces) {
        for (let id = 0; id < 5; id++) {
          const key = `${ws}/item/${id}`;
          if ((round + id + ws.length) % 3 === 0 && round > 0) {
            writes.push(writer.delete(ws, key));
            model.delete(key);
          } else {
            v++;
            writes.push(writer.set(ws, new Item(ws, String(id), v)));
            model.set(key, v);
          }
          order.push(key);
        }
      }
      await Promise.all(writes);
    }
    const all = await reader.loadAllIntoMap();
    const mine = new Map([...all].filter(([k]) => k.startsWith("cw-")));
    expect(new Map([...mine].map(([k, e]) => [k, e.unmarshal<{ v: number }>().v]))).toEqual(model);
    for (const e of mine.values()) expect(e.partition).toBe(partitionForNamespace(e.namespace, partitions));
    // The namespaces spread over most partitions.
    expect(new Set([...mine.values()].map((e) => e.partition)).size).toBeGreaterThan(8);

    // loadAll: one call per key, the latest record, tombstones included.
    const seen = new Map<string, { tombstone: boolean; offset: number }>();
    await reader.loadAll((e) => {
      expect(seen.has(e.key)).toBe(false);
      seen.set(e.key, { tombstone: e.isTombstone, offset: e.offset });
    });
    for (const key of new Set(order)) {
      expect(seen.get(key)?.tombstone, key).toBe(!model.has(key));
    }
  });

  it("loadForNamespace reads only the namespace's partition and reports progress", async () => {
    const ws = "progress-ws";
    await Promise.all(Array.from({ length: 30 }, (_, i) => writer.set(ws, new Item(ws, String(i % 10), i))));
    const progress: LoadProgress[] = [];
    const map = await reader.loadForNamespace(ws, { onProgress: (p) => progress.push(p) });
    expect(map.size).toBe(10);
    expect(map.get(`${ws}/item/3`)?.unmarshal()).toEqual({ ws, id: "3", v: 23 });
    const last = progress.at(-1)!;
    expect(last.partitions).toBe(1);
    expect(last.partitionsDone).toBe(1);
    expect(last.read).toBe(last.total); // the mock never compacts: every offset is a record
    expect(last.read).toBeGreaterThanOrEqual(30);
    const full: LoadProgress[] = [];
    await reader.loadAllIntoMap({ onProgress: (p) => full.push(p) });
    expect(full.at(-1)!.partitions).toBe(partitions);
    expect(full.at(-1)!.total).toBeGreaterThan(last.total);
  });

  it("a load ends at the end offsets captured when it began, without idle waits", async () => {
    const ws = "moving-ws";
    await writer.set(ws, new Item(ws, "before", 1));
    let wrote: Promise<unknown> | undefined;
    const map = await reader.loadForNamespace(ws, {
      onProgress: (p) => {
        // Written while the load runs: after the captured end, so not part of this load.
        if (p.read > 0 && !wrote) wrote = writer.set(ws, new Item(ws, "during", 2));
      },
    });
    await wrote;
    expect([...map.keys()]).toEqual([`${ws}/item/before`]);
    expect([...(await reader.loadForNamespace(ws)).keys()]).toEqual([`${ws}/item/before`, `${ws}/item/during`]);
    expect((await reader.loadForNamespace("never-written")).size).toBe(0);
  });

  it("a writer given the partition count writes without connect(), keeping the call order of a burst", async () => {
    // Regression: with `partitions` given, the first writes used to fail with "producer not connected".
    await using fresh = await ChangelogWriter.open({ brokers: cluster.brokers, topic, partitions });
    const writes: Promise<unknown>[] = [];
    for (let v = 1; v <= 50; v++) writes.push(fresh.set("ws-burst", new Item("ws-burst", "k", v)));
    writes.push(fresh.delete("ws-burst", "ws-burst/item/gone"));
    writes.push(fresh.set("ws-burst", new Item("ws-burst", "gone", 1)));
    const deliveries = (await Promise.all(writes)) as { offset: number }[];
    const offsets = deliveries.map((d) => d.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b)); // one partition: produced in call order
    const state = await reader.loadForNamespace("ws-burst");
    expect(state.get("ws-burst/item/k")?.unmarshal()).toMatchObject({ v: 50 });
    expect(state.get("ws-burst/item/gone")?.unmarshal()).toMatchObject({ v: 1 });
    // A burst while connecting and writes after it stay in order.
    await using late = await ChangelogWriter.open({ brokers: cluster.brokers, topic, partitions });
    const first = late.set("ws-burst", new Item("ws-burst", "k", 51));
    await Promise.resolve();
    const second = late.set("ws-burst", new Item("ws-burst", "k", 52));
    expect((await second).offset).toBeGreaterThan((await first).offset);
    expect((await reader.loadForNamespace("ws-burst")).get("ws-burst/item/k")?.unmarshal()).toMatchObject({ v: 52 });
  });

  it("when librdkafka's queue is full, writes wait in order and all land", async () => {
    await using small = await ChangelogWriter.open({
      brokers: cluster.brokers,
      topic,
      partitions,
      producerConfig: { "queue.buffering.max.messages": 10, "linger.ms": 1 },
    });
    await small.connect(); // so that the writes below go to the producer, not to the writer's connect queue
    const writes: Promise<{ partition: number; offset: number }>[] = [];
    for (let v = 1; v <= 500; v++) {
      writes.push(small.set(`ws-full-${v % 3}`, new Item(`ws-full-${v % 3}`, "k", v)));
      if (v % 7 === 0) writes.push(small.delete(`ws-full-${v % 3}`, `ws-full-${v % 3}/item/k`));
    }
    expect(small.pending).toBeGreaterThan(10); // librdkafka's queue takes 10: the rest waits in the backlog
    const deliveries = await Promise.all(writes);
    for (let w = 0; w < 3; w++) {
      const mine = deliveries.filter((d) => d.partition === partitionForNamespace(`ws-full-${w}`, partitions));
      const offsets = mine.map((d) => d.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }
    expect(small.pending).toBe(0);
    const last = (w: number) => Math.max(...Array.from({ length: 500 }, (_, i) => i + 1).filter((v) => v % 3 === w));
    for (let w = 0; w < 3; w++) {
      const state = await reader.loadForNamespace(`ws-full-${w}`);
      const v = last(w);
      // The last write of each namespace is a set of v, unless v % 7 === 0 (then a delete follows it).
      if (v % 7 === 0) expect(state.has(`ws-full-${w}/item/k`)).toBe(false);
      else expect(state.get(`ws-full-${w}/item/k`)?.unmarshal()).toMatchObject({ v });
    }
  });

  it("values waiting in the backlog keep every byte: UTF-8 text, large values across chunk boundaries", async () => {
    // The backlog keeps values as UTF-8 bytes in 1 MiB chunks; these values straddle chunk ends.
    await using small = await ChangelogWriter.open({
      brokers: cluster.brokers,
      topic,
      partitions,
      producerConfig: { "queue.buffering.max.messages": 2, "linger.ms": 1 },
    });
    await small.connect();
    const texts = ["é", "日本語", "🚀 emoji", "a\u0000b", "\u2028\u2029", "x"];
    const expected = new Map<string, unknown>();
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 24; i++) {
      const big = i % 4 === 0 ? texts[i % texts.length]!.repeat(40_000 + i * 1_000) : texts[i % texts.length]!;
      const item = { changeLogId: () => `ws-bytes/item/${i % 9}`, i, big };
      writes.push(small.set("ws-bytes", item));
      expected.set(`ws-bytes/item/${i % 9}`, { i, big });
      if (i % 5 === 4) {
        writes.push(small.delete("ws-bytes", `ws-bytes/item/${(i + 1) % 9}`));
        expected.delete(`ws-bytes/item/${(i + 1) % 9}`);
      }
    }
    expect(small.pending).toBeGreaterThan(2);
    await Promise.all(writes);
    const state = await reader.loadForNamespace("ws-bytes");
    expect(new Map([...state].map(([k, m]) => [k, m.unmarshal()]))).toEqual(expected);
  });

  it("flush and close wait for writes made while connecting", async () => {
    const early = await ChangelogWriter.open({ brokers: cluster.brokers, topic, partitions });
    const writes = [1, 2, 3].map((v) => early.set("ws-early", new Item("ws-early", String(v), v)));
    expect(early.pending).toBe(3);
    expect(await early.flush(10_000)).toBe(true);
    expect(early.pending).toBe(0);
    await Promise.all(writes);
    const closing = [4, 5].map((v) => early.set("ws-early", new Item("ws-early", String(v), v)));
    await early.close(); // right after the writes: they still go out
    await expect(Promise.all(closing)).resolves.toHaveLength(2);
    expect([...(await reader.loadForNamespace("ws-early")).keys()].sort()).toEqual(
      ["1", "2", "3", "4", "5"].map((id) => `ws-early/item/${id}`),
    );
    const late = await ChangelogWriter.open({ brokers: cluster.brokers, topic, partitions });
    const queued = late.set("ws-early", new Item("ws-early", "6", 6)); // still connecting
    await late.close();
    await expect(queued).resolves.toMatchObject({ partition: partitionForNamespace("ws-early", partitions) });
  });

  it("rejects bad input with typed errors before writing", async () => {
    await expect(writer.set("ws-b", new Item("ws-other", "1", 1))).rejects.toSatisfy((e) =>
      isStatelogError(e, ErrorCode.Validation),
    );
    await expect(writer.set("ws-b", { changeLogId: () => "ws-b/no-id", n: 1 })).rejects.toSatisfy((e) =>
      isStatelogError(e, ErrorCode.Validation),
    );
    await expect(writer.set("ws-b", { changeLogId: () => "ws-b/item/1", n: 10n })).rejects.toSatisfy((e) =>
      isStatelogError(e, ErrorCode.InvalidValue),
    );
    await expect(
      writer.set("ws-b", { changeLogId: () => "ws-b/item/2", blob: "x".repeat(1024 * 1024) }),
    ).rejects.toSatisfy((e) => isStatelogError(e, ErrorCode.TooLarge));
    await expect(writer.delete("ws/b", "ws/b/item/1")).rejects.toSatisfy((e) =>
      isStatelogError(e, ErrorCode.Validation),
    );
    await expect(writer.set("ws-b", new Item("ws-b", "1", 1), { timestamp: new Date(0) })).rejects.toSatisfy((e) =>
      isStatelogError(e, ErrorCode.Validation),
    );
    expect((await reader.loadForNamespace("ws-b")).size).toBe(0);
  });
});
