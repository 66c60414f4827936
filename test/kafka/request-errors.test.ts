/**
 * Request errors injected into the mock cluster
 * (`rd_kafka_mock_push_request_errors`, the mock's `errors` command):
 *
 * - a burst of retriable Produce errors: every write is acknowledged or
 *   rejects with a KafkaDeliveryError, every acknowledged write reads
 *   back, and no record is in the topic twice (idempotent producer);
 * - errors librdkafka treats as fatal for the idempotent producer: an
 *   InitProducerId refused (cluster authorization failed) when the
 *   producer starts, and a Produce answered with an out-of-order sequence
 *   number for the oldest request in flight (a sequence desynchronization).
 *   The writer replaces its producer (src/kafka/producer.ts), later writes
 *   land, the writes caught by the fatal error reject with
 *   KafkaDeliveryError; nothing acknowledged is lost or written twice.
 *
 * The figures go to test-output/reliability/kafka-request-errors.json.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangelogReader, ChangelogWriter, isKafkaDeliveryError } from "../../src/kafka/index.js";
import { type ReliabilityRow, writeReliabilityFigures } from "../nats/reliability-report.js";
import { ApiKey, KafkaProtocolError, startCluster, type TestCluster, uniqueTopic } from "./cluster.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Bounded retries so a write caught by a fault settles within the test. */
const PRODUCER = { "message.timeout.ms": 10_000, "retry.backoff.max.ms": 200 };

interface Outcome {
  readonly key: string;
  readonly v: number;
  readonly result: Promise<unknown>;
}

/** Writes `count` records paced by `pauseMs`, each a new key; returns every write's promise. */
async function writeMany(writer: ChangelogWriter, prefix: string, from: number, count: number, pauseMs: number) {
  const outcomes: Outcome[] = [];
  for (let i = from; i < from + count; i++) {
    const namespace = `${prefix}-${i % 5}`;
    const key = `${namespace}/item/${i}`;
    const result = writer.set(namespace, { changeLogId: () => key, v: i });
    result.catch(() => undefined); // settled and checked below
    outcomes.push({ key, v: i, result });
    if (pauseMs > 0) await sleep(pauseMs);
  }
  return outcomes;
}

interface Tally {
  acked: Outcome[];
  rejected: { key: string; reason: unknown }[];
  hung: number;
}

/** Settles every write (a hang is counted, not waited for past `ms`). */
async function tally(outcomes: readonly Outcome[], ms = 30_000): Promise<Tally> {
  const timeout = sleep(ms).then(() => "hung" as const);
  const settled = await Promise.all(
    outcomes.map((o) =>
      Promise.race([
        o.result.then(
          () => ({ ok: true as const }),
          (reason: unknown) => ({ ok: false as const, reason }),
        ),
        timeout,
      ]),
    ),
  );
  const t: Tally = { acked: [], rejected: [], hung: 0 };
  settled.forEach((s, i) => {
    const o = outcomes[i] as Outcome;
    if (s === "hung") t.hung++;
    else if (s.ok) t.acked.push(o);
    else t.rejected.push({ key: o.key, reason: s.reason });
  });
  return t;
}

/** Rejections counted by librdkafka's message (after "was not acknowledged: "). */
function reasons(rejected: readonly { reason: unknown }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rejected) {
    const why = String(r.reason).replace(/^.*was not acknowledged: /s, "");
    counts[why] = (counts[why] ?? 0) + 1;
  }
  return counts;
}

/** Reads the topic back: acknowledged writes missing or changed, and records written twice. */
async function readBack(brokers: string, topic: string, acked: readonly Outcome[]) {
  await using reader = await ChangelogReader.open({ brokers, topic });
  const { entries, ends } = await reader.loadChanges({ from: "beginning" });
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const lost = acked.filter((o) => {
    const value = byKey.get(o.key)?.unmarshal() as { v: number } | undefined;
    return value?.v !== o.v;
  });
  // Every write is a new key, written once by the test: more records than keys is a record written twice.
  const records = [...ends.values()].reduce((a, b) => a + b, 0);
  return { lost, duplicates: records - byKey.size, records, keys: byKey.size };
}

describe("Kafka: request errors injected into the mock cluster", () => {
  let cluster: TestCluster;
  const rows: ReliabilityRow[] = [];

  beforeAll(async () => {
    cluster = await startCluster();
    if (!cluster.isMock)
      throw new Error("these tests inject request errors: they need the mock cluster (unset KAFKA_BROKERS)");
  });
  afterAll(async () => {
    await cluster?.stop();
    if (rows.length > 0) writeReliabilityFigures("kafka-request-errors", rows);
  });

  /**
   * The end of every case: the rejected writes carry a KafkaDeliveryError,
   * every acknowledged write reads back, no record is in the topic twice;
   * then the case's row of figures.
   */
  async function checkAndReport(
    topic: string,
    acked: readonly Outcome[],
    rejected: Tally["rejected"],
    row: Pick<ReliabilityRow, "fault" | "injection" | "count" | "recoveryMs">,
  ): Promise<void> {
    for (const r of rejected) expect(isKafkaDeliveryError(r.reason), String(r.reason)).toBe(true);
    const back = await readBack(cluster.brokers, topic, acked);
    expect(
      back.lost.map((o) => o.key),
      "acknowledged writes missing",
    ).toEqual([]);
    expect(back.duplicates, "records written twice (the producer is idempotent)").toBe(0);
    rows.push({
      ...row,
      acknowledgedWrites: acked.length,
      acknowledgedWritesLost: back.lost.length,
      storesNotLoading: 0,
      details: {
        rejectedWithTypedError: rejected.length,
        reasons: reasons(rejected),
        recordsInTopic: back.records,
        duplicates: back.duplicates,
      },
    });
  }

  it("a burst of Produce errors: writes are retried or rejected, nothing acknowledged is lost or doubled", {
    timeout: 60_000,
  }, async () => {
    const topic = uniqueTopic("statelog-produce-errors");
    await cluster.createTopic(topic, 3);
    // One request in flight: the mock checks the sequence numbers of transactional producers only, so with more, a
    // later batch can be stored ahead of an earlier one that is being retried, which a real broker refuses (out of
    // order sequence): the topic would not hold the writes in the order a real broker keeps. Reports out of produce
    // order are matched by key since (report-matching.test.ts); before, they were the likely cause (not proven) of
    // one run on a loaded machine that saw two acknowledged writes missing after the burst.
    await using writer = await ChangelogWriter.open({
      brokers: cluster.brokers,
      topic,
      producerConfig: { ...PRODUCER, "max.in.flight.requests.per.connection": 1 },
    });
    await writer.connect();
    const before = await tally(await writeMany(writer, "pe", 0, 30, 0));
    expect(before.acked).toHaveLength(30);

    const burst = [
      KafkaProtocolError.NotLeaderForPartition,
      KafkaProtocolError.RequestTimedOut,
      KafkaProtocolError.NotEnoughReplicas,
      KafkaProtocolError.NotLeaderForPartition,
      KafkaProtocolError.RequestTimedOut,
      KafkaProtocolError.NotEnoughReplicas,
      KafkaProtocolError.NotLeaderForPartition,
    ];
    await cluster.pushRequestErrors(ApiKey.Produce, burst);
    const faultAt = Date.now();
    const during = await writeMany(writer, "pe", 30, 200, 5);
    const t = await tally(during);
    // Recovery: the first write made after the burst was used up that is acknowledged.
    const after = await tally(await writeMany(writer, "pe", 230, 20, 0));
    const recoveryMs = Date.now() - faultAt;

    expect(t.hung, "every write settles").toBe(0);
    expect(after.acked, "writes after the burst are acknowledged").toHaveLength(20);
    expect(t.acked.length, "most writes of the burst are retried to success").toBeGreaterThan(100);
    await checkAndReport(topic, [...before.acked, ...t.acked, ...after.acked], t.rejected, {
      fault: "Produce request errors (retriable: not leader, timed out, not enough replicas)",
      injection: `rd_kafka_mock_push_request_errors(Produce, ${burst.length}): codes ${burst.join(", ")}; one request in flight`,
      count: burst.length,
      recoveryMs,
    });
  });

  it("InitProducerId fails fatally at start: the writer replaces its producer and later writes land", {
    timeout: 60_000,
  }, async () => {
    const topic = uniqueTopic("statelog-initpid-start");
    await cluster.createTopic(topic, 3);
    await cluster.pushRequestErrors(ApiKey.InitProducerId, [KafkaProtocolError.ClusterAuthorizationFailed]);
    const faultAt = Date.now();
    await using writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic, producerConfig: PRODUCER });
    // The first writes meet the fatal error (or arrive after it and go to the replacement).
    const first = await tally(await writeMany(writer, "ip", 0, 20, 20));
    let recoveryMs = -1;
    const later: Outcome[] = [];
    for (let round = 0; round < 50 && recoveryMs < 0; round++) {
      const batch = await writeMany(writer, "ip", 20 + round * 10, 10, 0);
      later.push(...batch);
      const t = await tally(batch);
      if (t.acked.length > 0) recoveryMs = Date.now() - faultAt;
      else await sleep(100);
    }
    const t = await tally(later);
    const fatal = [...first.rejected, ...t.rejected];
    expect(first.hung + t.hung, "every write settles").toBe(0);
    expect(recoveryMs, "a write lands after the fatal error").toBeGreaterThanOrEqual(0);
    expect(fatal.length, "the fatal error failed writes (else nothing was injected)").toBeGreaterThan(0);
    // librdkafka purges what waited in its queue (never sent) and fails the rest with its fatal code.
    expect(
      fatal.some((r) => /fatal/i.test(String(r.reason))),
      "a rejection names the fatal error",
    ).toBe(true);
    // Once a replacement producer acknowledged a write, every later write is acknowledged.
    const last = await tally(await writeMany(writer, "ip", 1000, 20, 0));
    expect(last.acked).toHaveLength(20);
    await checkAndReport(topic, [...first.acked, ...t.acked, ...last.acked], fatal, {
      fault: "InitProducerId fails fatally when the producer starts",
      injection: `rd_kafka_mock_push_request_errors(InitProducerId, 1): code ${KafkaProtocolError.ClusterAuthorizationFailed}`,
      count: 1,
      recoveryMs,
    });
  });

  it("a sequence desynchronization (fatal): in-flight writes reject, a replacement producer takes over", {
    timeout: 60_000,
  }, async () => {
    const topic = uniqueTopic("statelog-produce-fatal");
    await cluster.createTopic(topic, 3);
    await using writer = await ChangelogWriter.open({ brokers: cluster.brokers, topic, producerConfig: PRODUCER });
    await writer.connect();
    const before = await tally(await writeMany(writer, "eb", 0, 30, 0));
    expect(before.acked).toHaveLength(30);
    // The next Produce (the oldest in flight) reports an out-of-order sequence: librdkafka can no longer
    // tell which records the broker holds, and raises a fatal error.
    await cluster.pushRequestErrors(ApiKey.Produce, [KafkaProtocolError.OutOfOrderSequenceNumber]);
    const faultAt = Date.now();
    const during = await writeMany(writer, "eb", 30, 150, 10);
    const t = await tally(during);
    const after = await tally(await writeMany(writer, "eb", 180, 20, 0));
    const recoveryMs = Date.now() - faultAt;

    expect(t.hung + after.hung, "every write settles").toBe(0);
    expect(t.rejected.length, "the fatal error failed the writes in flight").toBeGreaterThan(0);
    expect(t.acked.length, "writes after the replacement are acknowledged").toBeGreaterThan(0);
    expect(
      t.rejected.some((r) => /fatal|authorization|replaced/i.test(String(r.reason))),
      "a rejection names the fatal error or the replacement",
    ).toBe(true);
    expect(after.acked, "the replacement producer acknowledges every later write").toHaveLength(20);
    await checkAndReport(topic, [...before.acked, ...t.acked, ...after.acked], t.rejected, {
      fault: "Produce answered with an out-of-order sequence: fatal, producer replaced",
      injection: `rd_kafka_mock_push_request_errors(Produce, 1): code ${KafkaProtocolError.OutOfOrderSequenceNumber}`,
      count: 1,
      recoveryMs,
    });
  });
});
