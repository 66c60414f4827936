/**
 * How ChangelogProducer matches librdkafka's delivery reports to pending
 * records, driven by a fake client module (no broker): the fake records
 * each produce call and the test emits delivery reports in any order with
 * any error. librdkafka reports a partition's acknowledgements in produce
 * order, but fails a record whose `message.timeout.ms` ran out in its queue
 * before older records in flight are answered: two records of one key in
 * flight in one partition must not swap fates (the older one's caller told
 * of a failure, the newer one's told its record was written when it was
 * not: for a compacted changelog, the value that counts would be lost).
 */
import type { EventEmitter } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isKafkaDeliveryError } from "../../src/kafka/index.js";
import { ChangelogProducer, type Delivery } from "../../src/kafka/producer.js";

/** One `produce` call the fake took. */
interface Produced {
  readonly partition: number;
  readonly key: string;
  readonly value: Buffer | null;
  readonly opaque: unknown;
  /** Its place in {@link FakeProducer.produced}. */
  readonly index: number;
  /** A record of the same key and partition was produced and not yet reported when this one was. */
  readonly keyWasPending: boolean;
  /**
   * A record of the same key and partition was produced at or after the
   * partition's oldest record not reported yet when this one was: the
   * producer's rule for an opaque (every record older than the oldest
   * unanswered one was answered; a later one may not have been).
   */
  readonly keySinceOldest: boolean;
  answered: boolean;
}

/** What the test sees of a fake librdkafka producer. */
interface FakeProducer extends EventEmitter {
  /** Every record produced, in call order. */
  readonly produced: Produced[];
  /** The records produced and not reported yet, in call order. */
  readonly unanswered: Produced[];
  /** `produce` throws librdkafka's queue-full error while this many records are unanswered. */
  capacity: number;
  /** Emits the delivery report of `record`: acknowledged at `offset`, or failed with librdkafka's `code`. */
  report(record: Produced, outcome: { offset: number } | { code: number }): void;
}

const fakes = vi.hoisted(() => ({ producers: [] as FakeProducer[] }));

vi.mock("@confluentinc/kafka-javascript", async () => {
  const { EventEmitter } = await import("node:events");
  class Producer extends EventEmitter implements FakeProducer {
    readonly produced: Produced[] = [];
    readonly unanswered: Produced[] = [];
    capacity = Number.POSITIVE_INFINITY;
    constructor() {
      super();
      fakes.producers.push(this);
    }
    connect(_options: unknown, callback: (err: unknown, metadata: unknown) => void): void {
      setImmediate(() => callback(null, { topics: [] }));
    }
    setPollInBackground(): void {}
    disconnect(callback: () => void): void {
      setImmediate(callback);
    }
    produce(_topic: string, partition: number, value: Buffer | null, key: string, _ts: number, opaque?: unknown): void {
      const unanswered = this.unanswered;
      if (unanswered.length >= this.capacity) {
        throw Object.assign(new Error("Local: Queue full"), { code: -184 });
      }
      const keyWasPending = unanswered.some((r) => r.partition === partition && r.key === key);
      const oldest = unanswered.find((r) => r.partition === partition);
      let keySinceOldest = false;
      for (let i = oldest?.index ?? this.produced.length; i < this.produced.length && !keySinceOldest; i++) {
        keySinceOldest = this.produced[i]!.partition === partition && this.produced[i]!.key === key;
      }
      // A copy, as librdkafka makes: a record handed over from the backlog is a view of reused memory.
      const copy = value === null ? null : Buffer.from(value);
      const index = this.produced.length;
      const record = { partition, key, value: copy, opaque, index, keyWasPending, keySinceOldest, answered: false };
      this.produced.push(record);
      unanswered.push(record);
    }
    report(record: Produced, outcome: { offset: number } | { code: number }): void {
      if (record.answered) throw new Error("the test reported a record twice");
      record.answered = true;
      this.unanswered.splice(this.unanswered.indexOf(record), 1);
      // As the binding builds it: the key as bytes, `opaque` only when the record was produced with one.
      const report: Record<string, unknown> = {
        topic: "t",
        partition: record.partition,
        offset: "offset" in outcome ? outcome.offset : -1001,
        key: Buffer.from(record.key, "utf8"),
        size: record.value?.length ?? 0,
      };
      if (record.opaque !== undefined) report.opaque = record.opaque;
      const error = "code" in outcome ? Object.assign(new Error(`failed (${outcome.code})`), outcome) : null;
      this.emit("delivery-report", error, report);
    }
  }
  class KafkaConsumer {}
  const mod = { Producer, KafkaConsumer, AdminClient: {}, librdkafkaVersion: "fake" };
  return { ...mod, default: mod };
});

const TIMED_OUT = -192;
const FATAL = -150;

/** A promise's outcome once it settled: its delivery or its error. */
type Outcome = { delivery: Delivery } | { error: unknown };

function track(promise: Promise<Delivery>): { outcome?: Outcome } {
  const t: { outcome?: Outcome } = {};
  promise.then(
    (delivery) => {
      t.outcome = { delivery };
    },
    (error: unknown) => {
      t.outcome = { error };
    },
  );
  return t;
}

/** Lets settled promises run their callbacks. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

async function connected(partitions = 2): Promise<{ producer: ChangelogProducer; fake: FakeProducer }> {
  const producer = new ChangelogProducer("fake:9092", "t", {}, partitions);
  await producer.connect();
  return { producer, fake: fakes.producers[fakes.producers.length - 1]! };
}

function expectFailed(outcome: Outcome | undefined, key: string, code: number): void {
  expect(outcome && "error" in outcome, `expected a failure, got ${JSON.stringify(outcome)}`).toBe(true);
  const error = (outcome as { error: unknown }).error;
  expect(isKafkaDeliveryError(error), String(error)).toBe(true);
  expect(error).toMatchObject({ key, kafkaCode: code });
}

const open: ChangelogProducer[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) await p.close(100);
});

describe("ChangelogProducer: delivery reports matched to records", () => {
  it("two records of one key in flight: the newer one fails first (timed out in the queue), then the older one is acknowledged", async () => {
    const { producer, fake } = await connected();
    open.push(producer);
    const older = track(producer.sendOne(0, "ns/item/1", "older", 1));
    const newer = track(producer.sendOne(0, "ns/item/1", "newer", 2));
    const [a, b] = fake.produced;
    fake.report(b!, { code: TIMED_OUT });
    fake.report(a!, { offset: 41 });
    await settled();
    expect(older.outcome).toEqual({ delivery: { partition: 0, offset: 41 } });
    expectFailed(newer.outcome, "ns/item/1", TIMED_OUT);
    expect(newer.outcome).toMatchObject({ error: { partition: 0, mayBeWritten: true } });
    expect(producer.pending).toBe(0);
    // The common path stays without a native opaque; only the second record of a pending key gets one.
    expect(a!.opaque).toBeUndefined();
    expect(b!.opaque).not.toBeUndefined();
  });

  it("a failed record whose key nothing else has pending is matched by its key, ahead of older records", async () => {
    const { producer, fake } = await connected();
    open.push(producer);
    const first = track(producer.sendOne(1, "ns/item/1", "1", 1));
    const second = track(producer.sendOne(1, "ns/item/2", "2", 1));
    const third = track(producer.sendOne(1, "ns/item/3", "3", 1));
    expect(fake.produced.map((r) => r.opaque)).toEqual([undefined, undefined, undefined]);
    fake.report(fake.produced[2]!, { code: TIMED_OUT });
    fake.report(fake.produced[0]!, { offset: 7 });
    fake.report(fake.produced[1]!, { offset: 8 });
    await settled();
    expect(first.outcome).toEqual({ delivery: { partition: 1, offset: 7 } });
    expect(second.outcome).toEqual({ delivery: { partition: 1, offset: 8 } });
    expectFailed(third.outcome, "ns/item/3", TIMED_OUT);
  });

  it("a record that waited in the backlog while its key was pending keeps its own fate when handed over later", async () => {
    const { producer, fake } = await connected();
    open.push(producer);
    const older = track(producer.sendOne(0, "ns/item/1", "older", 1));
    const other = track(producer.sendOne(1, "ns/item/2", "other", 1));
    fake.capacity = 2; // librdkafka's queue is full: the next record waits in the backlog
    const newer = track(producer.sendOne(0, "ns/item/1", "newer", 2));
    expect(fake.produced).toHaveLength(2);
    expect(producer.pending).toBe(3);
    fake.capacity = Number.POSITIVE_INFINITY;
    fake.report(fake.produced[1]!, { offset: 3 }); // room again: the backlog is handed over
    expect(fake.produced).toHaveLength(3);
    const handedOver = fake.produced[2]!;
    expect(handedOver.value?.toString()).toBe("newer");
    expect(handedOver.keyWasPending).toBe(true);
    fake.report(handedOver, { code: TIMED_OUT });
    fake.report(fake.produced[0]!, { offset: 9 });
    await settled();
    expect(other.outcome).toEqual({ delivery: { partition: 1, offset: 3 } });
    expect(older.outcome).toEqual({ delivery: { partition: 0, offset: 9 } });
    expectFailed(newer.outcome, "ns/item/1", TIMED_OUT);
    expect(handedOver.opaque).not.toBeUndefined();
  });

  it("after a fatal error, the replaced producer's reports never reach the new producer's records", async () => {
    const { producer, fake: old } = await connected();
    open.push(producer);
    const stranded = track(producer.sendOne(0, "ns/item/1", "old", 1));
    const broken = track(producer.sendOne(0, "ns/item/2", "old", 1));
    old.report(old.produced[1]!, { code: FATAL });
    expect(producer.ready).toBe(false);
    await producer.connect(); // a new producer takes over
    const fresh = fakes.producers[fakes.producers.length - 1]!;
    expect(fresh).not.toBe(old);
    await settled();
    expectFailed(broken.outcome, "ns/item/2", FATAL);
    expect(stranded.outcome && "error" in stranded.outcome && stranded.outcome.error).toMatchObject({
      key: "ns/item/1",
      mayBeWritten: true,
    });
    const again = track(producer.sendOne(0, "ns/item/1", "new", 2));
    const again2 = track(producer.sendOne(0, "ns/item/1", "newer", 3));
    old.report(old.produced[0]!, { offset: 5 }); // a late report of the old producer
    await settled();
    expect(again.outcome).toBeUndefined();
    expect(again2.outcome).toBeUndefined();
    fresh.report(fresh.produced[1]!, { code: TIMED_OUT });
    fresh.report(fresh.produced[0]!, { offset: 6 });
    await settled();
    expect(again.outcome).toEqual({ delivery: { partition: 0, offset: 6 } });
    expectFailed(again2.outcome, "ns/item/1", TIMED_OUT);
    // The old record of that key is no longer pending: the first new one went without an opaque.
    expect(fresh.produced.map((r) => r.opaque === undefined)).toEqual([true, false]);
  });

  /** A small deterministic generator (mulberry32). */
  function random(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /**
   * Random steps: send a record (2 partitions; one of 3 keys, or with
   * `coldKeys`, half the time one of that many), acknowledge the oldest
   * unanswered record of a partition, or fail any unanswered one. `floor`:
   * partition 0 keeps at least that many records unanswered until the end
   * (its waiters then never run out, and the head moves past thousands of
   * records). Each record's promise must get what the test told of that
   * record; every record sent while its key was pending in its partition
   * carries an opaque, and no record whose key had no record since the
   * partition's oldest unanswered one does.
   */
  async function interleave(seed: number, steps: number, capacity: number, floor: number, coldKeys = 0): Promise<void> {
    const rand = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    const { producer, fake } = await connected(2);
    open.push(producer);
    fake.capacity = capacity;
    const keys = ["ns/item/a", "ns/item/b", "ns/item/c"];
    const sent: { key: string; outcome: ReturnType<typeof track> }[] = [];
    /** What the test told of each record, by its number (its value). */
    const told = new Map<number, { partition: number; offset: number } | { code: number }>();
    const offsets = [0, 0];
    const unanswered = (partition: number) => fake.unanswered.filter((r) => r.partition === partition);
    const answer = (record: Produced, outcome: { offset: number } | { code: number }) => {
      told.set(Number(record.value!.toString()), { ...outcome, partition: record.partition });
      fake.report(record, outcome);
    };
    const acknowledgeOldest = (partition: number, keep = 0) => {
      const waiting = unanswered(partition);
      if (waiting.length > keep) answer(waiting[0]!, { offset: offsets[partition]!++ });
    };
    for (let step = 0; step < steps; step++) {
      const action = rand();
      const partition = rand() < 0.5 ? 0 : 1;
      const keep = partition === 0 ? floor : 0;
      if (action < 0.45) {
        const key = coldKeys > 0 && rand() < 0.5 ? `ns/cold/${Math.floor(rand() * coldKeys)}` : pick(keys);
        sent.push({ key, outcome: track(producer.sendOne(partition, key, String(sent.length), 1)) });
      } else if (action < 0.75) {
        acknowledgeOldest(partition, keep);
      } else {
        const waiting = unanswered(partition);
        if (waiting.length > keep) answer(pick(waiting), { code: TIMED_OUT });
      }
    }
    while (producer.pending > 0) {
      acknowledgeOldest(0);
      acknowledgeOldest(1);
    }
    await settled();
    expect(fake.produced).toHaveLength(sent.length);
    let failures = 0;
    sent.forEach(({ key, outcome }, n) => {
      const expected = told.get(n);
      if (expected && "offset" in expected) {
        expect(outcome.outcome, `record ${n}`).toEqual({ delivery: expected });
      } else {
        failures++;
        expectFailed(outcome.outcome, key, TIMED_OUT);
      }
    });
    expect(failures).toBeGreaterThan(0);
    for (const r of fake.produced) {
      if (r.keyWasPending) expect(r.opaque, `record ${r.value}`).not.toBeUndefined();
      expect(r.opaque !== undefined, `record ${r.value}`).toBe(r.keySinceOldest);
    }
    expect(fake.produced.some((r) => r.keyWasPending)).toBe(true);
  }

  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    "random interleavings (run %i): acknowledgements in produce order, failures anywhere, a queue of 6; every record gets its own fate",
    (seed) => interleave(seed, 400, 6, 0),
  );

  it.each([1, 2])(
    "random interleavings (run %i): 30,000 steps, 3,000 more keys, a partition that never runs out of waiters; every record gets its own fate",
    (seed) => interleave(seed, 30_000, Number.POSITIVE_INFINITY, 4, 3000),
  );
});
