/** The CLI against librdkafka's mock cluster, run as a child process: a Kafka store. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { FileStore } from "../../src/file/index.js";
import { KafkaStore } from "../../src/kafka/index.js";
import { startCluster, type TestCluster, uniqueTopic } from "../kafka/cluster.js";
import { jsonLines, outcome } from "./run.js";
import { expectSampleNamespaces, expectTailFollows, saveSample } from "./sample.js";

describe("statelog CLI on Kafka", { timeout: 120_000 }, () => {
  let cluster: TestCluster;
  let dir: string;
  let topic: string;
  let url: string;
  beforeAll(async () => {
    cluster = await startCluster();
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-kafka-"));
    topic = uniqueTopic("cli");
    await cluster.createTopic(topic, 3);
    url = `kafka://${cluster.brokers}/${topic}`;
    await using store = await KafkaStore.open({ brokers: cluster.brokers, topic, producerConfig: { "linger.ms": 1 } });
    await saveSample(store);
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("namespaces, dump, stats and verify of a topic", async () => {
    await expectSampleNamespaces(url);
    const dump = await outcome("dump", url, "a", "--live", "--no-progress");
    expect(jsonLines(dump.stdout).map((c) => [c.entityID, c.entity])).toEqual([["1", { v: 2 }]]);
    const stats = await outcome("stats", url, "--json");
    expect(JSON.parse(stats.stdout)).toMatchObject({ backend: "kafka", namespaces: 2, live: 2, deleted: 1 });
    const verify = await outcome("verify", url, "--json", "--no-progress");
    expect(verify.code, verify.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: { namespaces: 2, changes: 3 } });
  });

  it("history: every record of the key the broker has not compacted away, by offset", async () => {
    const h = await outcome("history", url, "a", "t", "1", "--json");
    expect(h.code, h.stderr).toBe(ExitCode.Ok);
    const entries = JSON.parse(h.stdout) as { position: number; change: { entity: unknown } }[];
    expect(entries.map((e) => e.change.entity)).toEqual([{ v: 1 }, { v: 2 }]);
    expect(entries[0]!.position).toBeLessThan(entries[1]!.position);
    const deleted = await outcome("history", url, "a", "t", "2");
    expect(
      deleted.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[2]),
    ).toEqual(["set", "unset"]);
  });

  it("copies Kafka → file → another topic; compact is the broker's (exit 4)", async () => {
    const file = join(dir, "backup");
    const toFile = await outcome("copy", url, file, "--json", "--no-progress");
    expect(toFile.code, toFile.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(toFile.stdout)).toMatchObject({ namespaces: 2, changes: 3 });
    await using backup = await FileStore.open({ directory: file });
    expect((await backup.load("b")).map((c) => c.entity)).toEqual([{ w: 1 }]);
    const other = uniqueTopic("cli-copy");
    await cluster.createTopic(other, 2);
    const back = await outcome("copy", `file:${file}`, `kafka://${cluster.brokers}/${other}`);
    expect(back.code, back.stderr).toBe(ExitCode.Ok);
    await using copy = await KafkaStore.open({ brokers: cluster.brokers, topic: other });
    expect((await copy.load("a", { liveOnly: true })).map((c) => c.entity)).toEqual([{ v: 2 }]);
    const compact = await outcome("compact", url);
    expect(compact.code).toBe(ExitCode.Unsupported);
    expect(compact.stderr).toContain("compacted by the broker's log cleaner");
  });

  it("a topic that does not exist exits 3", async () => {
    const missing = await outcome("namespaces", `kafka://${cluster.brokers}/${uniqueTopic("none")}`);
    expect(missing.stderr).toContain("[STATELOG_KAFKA_TOPIC]");
    expect(missing.code).toBe(ExitCode.NotFound);
  });

  it("tail: the current state then the barrier; -f follows live saves until SIGTERM", async () => {
    await expectTailFollows(url, "live-kafka", async (change) => {
      await using store = await KafkaStore.open({
        brokers: cluster.brokers,
        topic,
        producerConfig: { "linger.ms": 1 },
      });
      await store.save([change]);
    });
  });
});
