/**
 * What the changelog producer's matching of delivery reports relies on
 * (src/kafka/producer.ts, `indexOfReport`), checked on the real client
 * and the test cluster: a report carries its record's key and the size
 * of its value, for a record the broker stored and for one librdkafka
 * failed. (Not its timestamp: a failure's report has none, so the
 * matching does not use it.)
 */
import type { DeliveryReport, LibrdKafkaError, Producer } from "@confluentinc/kafka-javascript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKafkaClient } from "../../src/kafka/client.js";
import { startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

describe("delivery reports of the client", () => {
  let cluster: TestCluster;
  const topic = uniqueTopic("statelog-report-fields");

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createTopic(topic, 1);
  }, 120_000);
  afterAll(() => cluster?.stop());

  /** A connected producer whose records time out after `timeoutMs`, and the reports it gets. */
  async function producer(timeoutMs: number) {
    const { Producer } = await loadKafkaClient();
    const p: Producer = new Producer({
      "bootstrap.servers": cluster.brokers,
      dr_cb: true,
      "enable.idempotence": true,
      "message.timeout.ms": timeoutMs,
      "linger.ms": 5,
    });
    const reports: { err: LibrdKafkaError | null; report: DeliveryReport }[] = [];
    p.on("delivery-report", (err, report) => reports.push({ err, report }));
    await new Promise<void>((resolve, reject) => p.connect({ topic }, (err) => (err ? reject(err) : resolve())));
    p.setPollInBackground(true);
    return { p, reports };
  }

  async function until(check: () => boolean, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error("no delivery report in time");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("a stored record's report: its key, its value's size", async () => {
    const { p, reports } = await producer(30_000);
    try {
      p.produce(topic, 0, Buffer.from("value-é", "utf8"), "ns/item/1", 1_700_000_000_123);
      p.produce(topic, 0, null, "ns/item/2", 1_700_000_000_124);
      await until(() => reports.length === 2);
    } finally {
      await new Promise<void>((resolve) => p.disconnect(() => resolve()));
    }
    expect(reports.map((r) => r.err)).toEqual([null, null]);
    expect(reports.map(({ report }) => [String(report.key), report.size])).toEqual([
      ["ns/item/1", Buffer.byteLength("value-é")],
      ["ns/item/2", 0],
    ]);
  });

  it("a failed record's report: its key, its value's size", async (ctx) => {
    if (!cluster.isMock) {
      ctx.skip("needs the mock cluster's down/up commands (KAFKA_BROKERS is set)");
      return;
    }
    const { p, reports } = await producer(1_000);
    await cluster.down(-1);
    try {
      p.produce(topic, 0, Buffer.from("twelve bytes"), "ns/item/3", 1_700_000_000_456);
      await until(() => reports.length === 1);
    } finally {
      await cluster.up(-1);
      await new Promise<void>((resolve) => p.disconnect(() => resolve()));
    }
    const [{ err, report }] = reports as [(typeof reports)[number]];
    expect(err).not.toBeNull();
    expect([String(report.key), report.size]).toEqual(["ns/item/3", 12]);
  });
});
