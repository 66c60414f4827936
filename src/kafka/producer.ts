/**
 * One librdkafka producer with promise-per-record delivery: a record's
 * promise settles on its delivery report (acknowledged by the broker, or
 * failed). Polls on librdkafka's background thread; when librdkafka's
 * queue is full, records wait in order in a backlog instead of failing.
 * Delivery reports are matched to records per partition in produce order
 * (librdkafka reports a partition's records in the order they were
 * produced), which spares a native opaque handle per record.
 */
import { ClosedError, messageOf } from "../core/errors.js";
import { loadKafkaClient, type RdKafka } from "./client.js";
import { DEFAULT_PRODUCER_CONFIG, type KafkaConfig } from "./config.js";
import { KafkaDeliveryError, KafkaTopicError } from "./errors.js";

const ERR_QUEUE_FULL = -184;
const ERR_FATAL = -150;

/** One record to produce. */
export interface OutRecord {
  readonly partition: number;
  readonly key: string;
  /** `null` is a tombstone; a string is sent as its UTF-8 bytes (made when the record is handed over). */
  readonly value: Value;
  /** Record timestamp, ms since the epoch (> 0). */
  readonly timestamp: number;
}

/** Where an acknowledged record landed. */
export interface Delivery {
  readonly partition: number;
  readonly offset: number;
}

/** A record value: bytes, text (its UTF-8 bytes are made only when it is handed to librdkafka), or a tombstone. */
export type Value = Buffer | string | null;

type Ok = (delivery: Delivery) => void;
type Fail = (error: KafkaDeliveryError) => void;

/**
 * Records waiting for their delivery report (per partition, in produce
 * order) or for room in librdkafka's queue (the backlog): one array per
 * field and a head index, so a record costs no object of its own.
 */
class RecordQueue {
  readonly partitions: number[] = [];
  readonly keys: string[] = [];
  readonly values: Value[] = [];
  readonly timestamps: number[] = [];
  readonly oks: Ok[] = [];
  readonly fails: Fail[] = [];
  head = 0;

  get length(): number {
    return this.keys.length - this.head;
  }

  push(partition: number, key: string, value: Value, timestamp: number, ok: Ok, fail: Fail): void {
    this.partitions.push(partition);
    this.keys.push(key);
    this.values.push(value);
    this.timestamps.push(timestamp);
    this.oks.push(ok);
    this.fails.push(fail);
  }

  /** Drops the head entry (call after reading its fields at {@link head}). */
  shift(): void {
    const h = this.head++;
    this.values[h] = null; // let the value go now
    if (this.head === this.keys.length) {
      this.clear();
    } else if (this.head > 4096 && this.head * 2 > this.keys.length) {
      for (const a of [this.partitions, this.keys, this.values, this.timestamps, this.oks, this.fails]) {
        a.splice(0, this.head);
      }
      this.head = 0;
    }
  }

  clear(): void {
    for (const a of [this.partitions, this.keys, this.values, this.timestamps, this.oks, this.fails]) a.length = 0;
    this.head = 0;
  }
}

/** Records handed to librdkafka of one partition, in produce order: who learns each one's fate. */
class WaiterQueue {
  readonly keys: string[] = [];
  readonly oks: Ok[] = [];
  readonly fails: Fail[] = [];
  head = 0;

  get length(): number {
    return this.oks.length - this.head;
  }

  push(key: string, ok: Ok, fail: Fail): void {
    this.keys.push(key);
    this.oks.push(ok);
    this.fails.push(fail);
  }

  shift(): void {
    this.head++;
    if (this.head === this.oks.length) {
      this.clear();
    } else if (this.head > 4096 && this.head * 2 > this.oks.length) {
      for (const a of [this.keys, this.oks, this.fails]) a.splice(0, this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.keys.length = this.oks.length = this.fails.length = 0;
    this.head = 0;
  }
}

/** Captures a new promise's resolving functions without a closure per promise. */
let capturedOk: Ok | undefined;
let capturedFail: Fail | undefined;
function capture(ok: Ok, fail: Fail): void {
  capturedOk = ok;
  capturedFail = fail;
}

export class ChangelogProducer {
  #producer: RdKafka.Producer | undefined;
  #connecting: Promise<RdKafka.Producer> | undefined;
  #partitions: number | undefined;
  /** Records waiting for room in librdkafka's queue, in call order. */
  readonly #backlog = new RecordQueue();
  /** Records handed to librdkafka, per partition, in produce order (their delivery reports come in that order). */
  #waiting: WaiterQueue[] = [];
  #inFlight = 0;
  /** After librdkafka's queue was full: the backlog is handed over again once no more than this many are in flight. */
  #drainBelow = 0;
  #idle: (() => void)[] = [];
  #closed = false;
  #fatal: RdKafka.LibrdKafkaError | undefined;

  constructor(
    readonly brokers: string,
    readonly topic: string,
    readonly config: KafkaConfig,
    partitions: number | undefined,
  ) {
    this.#partitions = partitions;
  }

  /** Records produced but not yet acknowledged or failed (queued in librdkafka or the backlog). */
  get pending(): number {
    return this.#inFlight + this.#backlog.length;
  }

  /** Connected and usable: records can be produced without {@link connect} first. */
  get ready(): boolean {
    return this.#producer !== undefined && this.#fatal === undefined;
  }

  /** Connects (once, and again after a fatal error) and returns the topic's partition count. */
  async connect(): Promise<number> {
    await this.#client();
    return this.#partitions!;
  }

  #client(): Promise<RdKafka.Producer> {
    if (this.#closed) return Promise.reject(new ClosedError("Kafka changelog producer"));
    if (this.#producer && !this.#fatal) return Promise.resolve(this.#producer);
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<RdKafka.Producer> {
    const { Producer } = await loadKafkaClient();
    const old = this.#producer;
    if (old) {
      // After a fatal error: let the old producer hand over what reports it still has, then fail
      // whatever it never reported, so that no record waits forever or is matched to a new record's report.
      await new Promise<void>((resolve) => old.disconnect(() => resolve()));
      old.removeAllListeners("delivery-report");
      this.#failWaiting(
        `the producer was replaced after a fatal error (${messageOf(this.#fatal)}) before the broker answered: ` +
          "whether the record was written is unknown; writing it again is safe",
      );
    }
    const conf = {
      ...DEFAULT_PRODUCER_CONFIG,
      "message.max.bytes": 1_100_000,
      ...this.config,
      "bootstrap.servers": this.brokers,
      dr_cb: true,
    } as RdKafka.ProducerGlobalConfig;
    const producer = new Producer(conf);
    producer.on("delivery-report", (err, report) => this.#onReport(err, report));
    producer.on("event.error", (err: RdKafka.LibrdKafkaError) => {
      if (err.isFatal) this.#fatal = err;
    });
    const metadata = await new Promise<RdKafka.Metadata>((resolve, reject) => {
      producer.connect({ topic: this.topic, timeout: 15_000 } as RdKafka.MetadataOptions, (err, data) =>
        err ? reject(err) : resolve(data),
      );
    }).catch((error: unknown) => {
      producer.disconnect(() => undefined);
      throw new KafkaTopicError(this.topic, `cannot connect to ${this.brokers}: ${messageOf(error)}`, { cause: error });
    });
    if (this.#partitions === undefined) {
      const meta = metadata.topics.find((t) => t.name === this.topic);
      if (!meta || meta.partitions.length === 0) {
        producer.disconnect(() => undefined);
        throw new KafkaTopicError(
          this.topic,
          "does not exist (create it with ensureChangelogTopic or pass `partitions`)",
        );
      }
      this.#partitions = meta.partitions.length;
    }
    producer.setPollInBackground(true);
    this.#fatal = undefined;
    this.#producer = producer;
    return producer;
  }

  /** Produces one record; `ok` or `fail` learns its fate. Connect first. */
  send(partition: number, key: string, value: Value, timestamp: number, ok: Ok, fail: Fail): void {
    if (this.#backlog.length > 0) this.#backlog.push(partition, key, value, timestamp, ok, fail);
    else this.#produce(partition, key, value, timestamp, ok, fail, true);
  }

  /** Produces records in order and resolves when all are acknowledged, rejects with the first failure. */
  sendAll(records: readonly OutRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      let left = records.length;
      let failure: KafkaDeliveryError | undefined;
      if (left === 0) resolve();
      const done = () => {
        if (--left === 0) {
          if (failure) reject(failure);
          else resolve();
        }
      };
      const failed = (error: KafkaDeliveryError) => {
        failure ??= error;
        done();
      };
      for (const r of records) this.send(r.partition, r.key, r.value, r.timestamp, done, failed);
    });
  }

  /** Produces one record and resolves on its acknowledgement. */
  sendOne(partition: number, key: string, value: Value, timestamp: number): Promise<Delivery> {
    const promise = new Promise<Delivery>(capture);
    this.send(partition, key, value, timestamp, capturedOk!, capturedFail!);
    return promise;
  }

  /** Hands one record to librdkafka; false when its queue is full and `mayQueue` is false. */
  #produce(
    partition: number,
    key: string,
    value: Value,
    timestamp: number,
    ok: Ok,
    fail: Fail,
    mayQueue: boolean,
  ): boolean {
    const producer = this.#producer;
    if (!producer || this.#fatal) {
      fail(this.#error(partition, key, ERR_FATAL, this.#fatal ? messageOf(this.#fatal) : "producer not connected"));
      return true;
    }
    try {
      producer.produce(
        this.topic,
        partition,
        typeof value === "string" ? Buffer.from(value, "utf8") : value,
        key,
        timestamp,
      );
      let waiting = this.#waiting[partition];
      if (!waiting) {
        waiting = new WaiterQueue();
        this.#waiting[partition] = waiting;
      }
      waiting.push(key, ok, fail);
      this.#inFlight++;
      return true;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === ERR_QUEUE_FULL && this.#inFlight === 0) {
        // Full with nothing in it: this record alone is larger than the queue may hold.
        fail(
          this.#error(
            partition,
            key,
            code,
            "librdkafka's queue is full with nothing in flight: the record is larger than queue.buffering.max.kbytes",
            error,
          ),
        );
        return true;
      }
      if (code === ERR_QUEUE_FULL) {
        this.#drainBelow = this.#inFlight - Math.max(1, Math.min(1000, Math.floor(this.#inFlight / 10)));
        if (!mayQueue) return false; // the caller keeps it (in the backlog)
        this.#backlog.push(partition, key, value, timestamp, ok, fail);
        return true;
      }
      fail(this.#error(partition, key, code, messageOf(error), error));
      return true;
    }
  }

  #onReport(err: RdKafka.LibrdKafkaError | null, report: RdKafka.DeliveryReport): void {
    this.#inFlight--;
    const waiting = this.#waiting[report.partition];
    if (waiting && waiting.length > 0) {
      const h = waiting.head;
      const key = waiting.keys[h]!;
      const ok = waiting.oks[h]!;
      const fail = waiting.fails[h]!;
      waiting.shift();
      if (err) fail(this.#error(report.partition, key, err.code, err.message, err));
      else ok({ partition: report.partition, offset: report.offset });
    }
    // Hand the backlog over in batches: each attempt on a full queue costs librdkafka an error
    // object (with a stack), so wait until a batch of records has left the queue.
    if (this.#backlog.length > 0 && (this.#inFlight === 0 || this.#inFlight <= this.#drainBelow)) this.#drain();
    if (this.#inFlight === 0 && this.#backlog.length === 0 && this.#idle.length > 0) {
      for (const f of this.#idle.splice(0)) f();
    }
  }

  #drain(): void {
    const b = this.#backlog;
    while (b.length > 0) {
      const h = b.head;
      const produced = this.#produce(
        b.partitions[h]!,
        b.keys[h]!,
        b.values[h]!,
        b.timestamps[h]!,
        b.oks[h]!,
        b.fails[h]!,
        false,
      );
      if (!produced) break;
      b.shift();
    }
  }

  #error(partition: number, key: string, code: number | undefined, message: string, cause?: unknown) {
    return new KafkaDeliveryError(this.topic, partition, key, code, message, { cause });
  }

  /**
   * Waits until every record produced so far is acknowledged or failed, at
   * most `timeoutMs`. Resolves `true` when all settled, `false` on time-out.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.#idle.indexOf(done);
        if (i >= 0) this.#idle.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idle.push(done);
    });
  }

  /** Flushes (at most `timeoutMs`), fails what is left, disconnects. Idempotent. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return;
    await this.#connecting?.catch(() => undefined);
    await this.flush(timeoutMs);
    this.#closed = true;
    const b = this.#backlog;
    for (let h = b.head; h < b.keys.length; h++) {
      b.fails[h]!(this.#error(b.partitions[h]!, b.keys[h]!, undefined, "the writer was closed"));
    }
    b.clear();
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer) await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
    // Records the broker never answered within the flush: their reports will not come any more.
    this.#failWaiting("the writer was closed before the broker answered: whether the record was written is unknown");
  }

  /** Fails every record handed to librdkafka that has no report yet (its producer is gone). */
  #failWaiting(message: string): void {
    this.#waiting.forEach((w, partition) => {
      if (!w) return;
      for (let h = w.head; h < w.oks.length; h++) w.fails[h]!(this.#error(partition, w.keys[h]!, undefined, message));
      w.clear();
    });
    this.#inFlight = 0;
    if (this.#backlog.length === 0) for (const f of this.#idle.splice(0)) f();
  }
}
