/**
 * Kafka benchmarks on librdkafka's mock cluster (`npx tsx bench/kafka.ts
 * [--quick]`, or `npm run bench -- kafka`): 1,000,000 changes over 100,000
 * keys in 12 partitions.
 *  - write: ChangelogWriter (a promise per record, resolved on the broker's
 *    ack) vs the raw client producing the same records with delivery reports
 *    (the loop that waits for a batch of room; the simplest loop, resuming
 *    on every report, as a reference);
 *  - restore: ChangelogReader.loadAllIntoMap (read to the captured end
 *    offsets, latest per key) vs the raw client consuming the same topic.
 * Targets: >= 0.8x of the raw client each. Figures: docs/performance.md.
 */
import { fileURLToPath } from "node:url";
import type * as RdKafka from "@confluentinc/kafka-javascript";
import { loadKafkaClient } from "../src/kafka/client.js";
import {
  CHANGELOG_READER_DEFAULTS,
  CHANGELOG_WRITER_DEFAULTS,
  type Changeloggable,
  ChangelogReader,
  ChangelogWriter,
  partitionForNamespace,
} from "../src/kafka/index.js";
import { startCluster } from "../test/kafka/cluster.js";
import { collectGarbage } from "./lib/measure.js";

const PARTITIONS = 12;

class Entity implements Changeloggable {
  constructor(
    readonly namespace: string,
    readonly id: string,
    readonly version: number,
    readonly name: string,
  ) {}
  changeLogId(): string {
    return `${this.namespace}/deployment/${this.id}`;
  }
}

function workload(changes: number, keys: number): Entity[] {
  const out: Entity[] = new Array(changes);
  for (let i = 0; i < changes; i++) {
    const k = (i * 7919) % keys; // every key gets changes / keys versions, interleaved
    out[i] = new Entity(`ws-${k % 1000}`, `dep-${k}`, i, `deployment ${k} version ${i}`);
  }
  return out;
}

/**
 * The raw producer: `produce` per record, delivery reports counted. When
 * librdkafka's queue is full it waits, and resumes either once a batch of
 * records has left the queue (`batched`: up to 1,000, what ChangelogWriter
 * does; the faster loop and the baseline of the target) or on the next
 * report (`eager`: the simplest loop, which hits the full queue again at
 * once and pays librdkafka's error object each time).
 */
async function rawProduce(
  brokers: string,
  topic: string,
  entities: Entity[],
  resume: "batched" | "eager",
): Promise<number> {
  const { Producer } = await loadKafkaClient();
  const producer = new Producer({
    ...CHANGELOG_WRITER_DEFAULTS.producerConfig,
    "bootstrap.servers": brokers,
    dr_cb: true,
  } as RdKafka.ProducerGlobalConfig);
  let produced = 0;
  let delivered = 0;
  let failed = 0;
  let resumeAt = 0;
  let wake: (() => void) | undefined;
  producer.on("delivery-report", (err) => {
    if (err) failed++;
    else delivered++;
    if (wake && produced - delivered - failed <= resumeAt) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const waitForReports = (inFlightAtMost: number) =>
    new Promise<void>((r) => {
      resumeAt = inFlightAtMost;
      wake = r;
    });
  await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
  producer.setPollInBackground(true);
  const started = performance.now();
  const now = Date.now();
  for (let i = 0; i < entities.length; ) {
    const e = entities[i]!;
    try {
      producer.produce(
        topic,
        partitionForNamespace(e.namespace, PARTITIONS),
        Buffer.from(JSON.stringify(e)),
        e.changeLogId(),
        now,
      );
      i++;
      produced++;
    } catch (error) {
      if ((error as { code?: number }).code !== -184) throw error; // queue full: wait for reports
      const inFlight = produced - delivered - failed;
      if (inFlight === 0) throw error; // full with nothing in flight: no report will come
      await waitForReports(
        resume === "eager" ? inFlight - 1 : inFlight - Math.max(1, Math.min(1000, Math.floor(inFlight / 10))),
      );
    }
  }
  while (delivered + failed < entities.length) await waitForReports(0);
  const ms = performance.now() - started;
  await new Promise<void>((r) => producer.disconnect(() => r()));
  if (failed > 0) throw new Error(`raw producer: ${failed} records failed`);
  return ms;
}

async function writerProduce(brokers: string, topic: string, entities: Entity[]): Promise<number> {
  const writer = await ChangelogWriter.open({ brokers, topic, partitions: PARTITIONS });
  await writer.connect();
  const started = performance.now();
  let left = entities.length;
  let failed = 0;
  await new Promise<void>((resolve) => {
    const ok = () => {
      if (--left === 0) resolve();
    };
    const fail = () => {
      failed++;
      ok();
    };
    const now = new Date();
    for (const e of entities) writer.set(e.namespace, e, { timestamp: now }).then(ok, fail);
  });
  const ms = performance.now() - started;
  await writer.close();
  if (failed > 0) throw new Error(`ChangelogWriter: ${failed} records failed`);
  return ms;
}

async function rawConsume(brokers: string, topic: string, expected: number): Promise<number> {
  const { KafkaConsumer } = await loadKafkaClient();
  const consumer = new KafkaConsumer(
    {
      ...CHANGELOG_READER_DEFAULTS.consumerConfig,
      "bootstrap.servers": brokers,
      "group.id": "bench-raw",
    } as RdKafka.ConsumerGlobalConfig,
    {},
  );
  await new Promise<void>((resolve, reject) => consumer.connect({}, (err) => (err ? reject(err) : resolve())));
  consumer.setDefaultConsumeTimeout(100);
  const started = performance.now();
  consumer.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition, offset: 0 })));
  let read = 0;
  let bytes = 0;
  while (read < expected) {
    const batch = await new Promise<RdKafka.Message[]>((resolve, reject) =>
      consumer.consume(10_000, (err, m) => (err ? reject(err) : resolve(m))),
    );
    for (const m of batch) bytes += m.value?.length ?? 0;
    read += batch.length;
  }
  const ms = performance.now() - started;
  await new Promise<void>((r) => consumer.disconnect(() => r()));
  if (bytes === 0) throw new Error("raw consumer read nothing");
  return ms;
}

async function readerRestore(brokers: string, topic: string, keys: number): Promise<number> {
  const reader = await ChangelogReader.open({ brokers, topic, partitions: PARTITIONS });
  await reader.partitions();
  const started = performance.now();
  const map = await reader.loadAllIntoMap();
  const ms = performance.now() - started;
  await reader.close();
  if (map.size !== keys) throw new Error(`restore found ${map.size} keys, expected ${keys}`);
  return ms;
}

const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString("en-US")}/s`;

/** Runs the Kafka benchmarks and prints throughputs and ratios. */
export async function runKafkaBenchmarks(options: { quick?: boolean } = {}): Promise<void> {
  const changes = options.quick ? 100_000 : 1_000_000;
  const keys = options.quick ? 10_000 : 100_000;
  const cluster = await startCluster();
  try {
    const entities = workload(changes, keys);
    const rows: [string, number, number][] = [];
    for (const round of [1, 2, 3]) {
      const rawTopic = `bench-raw-${round}`;
      const eagerTopic = `bench-raw-eager-${round}`;
      const ourTopic = `bench-writer-${round}`;
      for (const topic of [rawTopic, eagerTopic, ourTopic]) await cluster.createTopic(topic, PARTITIONS);
      // A full collection before each measurement: one run's garbage is not collected in the next.
      const measure = async (run: () => Promise<number>) => {
        await collectGarbage();
        return run();
      };
      // Alternate the order so that no side always runs on a warmer (or fuller) process and broker.
      const writes: [string, () => Promise<number>][] = [
        ["raw", () => rawProduce(cluster.brokers, rawTopic, entities, "batched")],
        ["eager", () => rawProduce(cluster.brokers, eagerTopic, entities, "eager")],
        ["ours", () => writerProduce(cluster.brokers, ourTopic, entities)],
      ];
      if (round % 2 === 0) writes.reverse();
      const took = new Map<string, number>();
      for (const [name, run] of writes) took.set(name, await measure(run));
      const readRaw = await measure(() => rawConsume(cluster.brokers, ourTopic, changes));
      const readOurs = await measure(() => readerRestore(cluster.brokers, ourTopic, keys));
      rows.push(
        [`write round ${round}`, took.get("raw")!, took.get("ours")!],
        [`write* round ${round}`, took.get("eager")!, took.get("ours")!],
        [`restore round ${round}`, readRaw, readOurs],
      );
    }
    console.log(`\nKafka (librdkafka mock cluster, ${PARTITIONS} partitions, ${changes} changes over ${keys} keys)`);
    console.log("case              raw client              statelog                ratio (>= 0.8 target)");
    for (const [name, raw, ours] of rows) {
      const ratio = raw / ours;
      const verdict = name.startsWith("write*") ? "(reference)" : ratio >= 0.8 ? "met" : "NOT met";
      console.log(
        `${name.padEnd(18)}${`${Math.round(raw)} ms ${rate(changes, raw)}`.padEnd(24)}${`${Math.round(ours)} ms ${rate(changes, ours)}`.padEnd(24)}${ratio.toFixed(2)}x ${verdict}`,
      );
    }
    for (const kind of ["write", "write*", "restore"]) {
      const mine = rows.filter(([name]) => name.startsWith(`${kind} `));
      const ratios = mine.map(([, raw, ours]) => raw / ours).sort((a, b) => a - b);
      const median = ratios[Math.floor(ratios.length / 2)]!;
      const sum = mine.reduce((a, [, raw]) => a + raw, 0) / mine.reduce((a, [, , ours]) => a + ours, 0);
      const verdict =
        kind === "write*" ? "reference, no target" : `target >= 0.8x: ${median >= 0.8 ? "met" : "NOT met"}`;
      console.log(
        `${kind}: median of ${ratios.length} rounds ${median.toFixed(2)}x, all rounds summed ${sum.toFixed(2)}x (${verdict})`,
      );
    }
    console.log(
      "write: vs the raw loop that waits for a batch of room (as ChangelogWriter does); " +
        "write*: vs the simplest raw loop, which resumes on every report",
    );
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runKafkaBenchmarks({ quick: process.argv.includes("--quick") });
}
