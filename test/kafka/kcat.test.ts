/**
 * Cross-check with a client statelog did not write: Debian's kcat (on its
 * own librdkafka) reads what ChangelogWriter produced, and partitions keys
 * with librdkafka's `murmur2` partitioner exactly as partitionForNamespace.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangelogReader, ChangelogWriter, KafkaReadError, partitionForNamespace } from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

interface KcatRecord {
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  ts: number;
}

function kcat(args: string[], input?: string): string {
  const r = spawnSync("kcat", args, { input, encoding: "utf8", timeout: 30_000 });
  if (r.error) throw new Error(`kcat could not run (apt-get install kcat): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`kcat ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

describe("kcat cross-check", () => {
  let cluster: TestCluster;
  const partitions = 6;

  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("kcat consumes what ChangelogWriter produced: same keys, partitions, values and tombstones", async () => {
    const topic = uniqueTopic("statelog-kcat-read");
    await cluster.createTopic(topic, partitions);
    await using writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic });
    const expected: { key: string; partition: number; value: string | null; ts: number }[] = [];
    for (let i = 0; i < 60; i++) {
      const ws = `kw-${i % 9}`;
      const key = `${ws}/thing/${i % 13}/with/slashes`;
      const ts = 1_700_000_000_000 + i;
      const d =
        i % 5 === 4
          ? await writer.delete(ws, key, { timestamp: new Date(ts) })
          : await writer.set(ws, { changeLogId: () => key, i, s: "é😀" }, { timestamp: new Date(ts) });
      expect(d.partition).toBe(partitionForNamespace(ws, partitions));
      expected.push({ key, partition: d.partition, value: i % 5 === 4 ? null : JSON.stringify({ i, s: "é😀" }), ts });
    }
    const out = kcat(["-C", "-b", cluster.brokers, "-t", topic, "-o", "beginning", "-e", "-J", "-q"]);
    const records = out
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as KcatRecord);
    expect(records).toHaveLength(expected.length);
    const byKeyAndTs = (a: { key: string | null; ts: number }, b: { key: string | null; ts: number }) => a.ts - b.ts;
    const seen = records
      .map((r) => ({ key: r.key, partition: r.partition, value: r.payload, ts: r.ts }))
      .sort(byKeyAndTs);
    expect(seen).toEqual(expected);
  });

  it("a key produced by kcat with the murmur2 partitioner lands where partitionForNamespace predicts", async () => {
    const topic = uniqueTopic("statelog-kcat-write");
    await cluster.createTopic(topic, partitions);
    const namespaces = Array.from({ length: 50 }, (_, i) => `550e8400-e29b-41d4-a716-${String(446655440000 + i)}`);
    namespaces.push("21", "foobar", "abc", "ws-123", "日本語");
    const lines = namespaces.map((ws) => `${ws}\t{"ws":${JSON.stringify(ws)}}`).join("\n");
    kcat(["-P", "-b", cluster.brokers, "-t", topic, "-K", "\t", "-X", "partitioner=murmur2"], `${lines}\n`);
    await using reader = await ChangelogReader.open({ brokers: cluster.brokers, topic });
    const found = new Map<string, number>();
    await reader.loadAll((e) => {
      found.set(e.key, e.partition);
    });
    expect(found.size).toBe(namespaces.length);
    for (const ws of namespaces) expect(found.get(ws), ws).toBe(partitionForNamespace(ws, partitions));
    expect(new Set(found.values()).size).toBe(partitions); // the keys spread: the check is not vacuous
  });

  it("a value another client wrote that is not JSON: unmarshal says which record, the others still read", async () => {
    const topic = uniqueTopic("statelog-kcat-garbage");
    await cluster.createTopic(topic, partitions);
    kcat(
      ["-P", "-b", cluster.brokers, "-t", topic, "-K", "\t", "-p", String(partitionForNamespace("ws-g", partitions))],
      'ws-g/item/ok\t{"v":1}\nws-g/item/bad\tnot json\n',
    );
    await using reader = await ChangelogReader.open({ brokers: cluster.brokers, topic });
    const state = await reader.loadForNamespace("ws-g");
    expect(state.get("ws-g/item/ok")?.unmarshal()).toEqual({ v: 1 });
    const bad = state.get("ws-g/item/bad")!;
    expect(bad.topic).toBe(topic);
    expect(() => bad.unmarshal()).toThrow(KafkaReadError);
    expect(() => bad.unmarshal()).toThrow(
      `reading "${topic}" failed: value of "ws-g/item/bad" in partition ${partitionForNamespace("ws-g", partitions)} at offset 1 is not JSON`,
    );
  });
});
