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
  /** `null` is a tombstone. */
  readonly value: Buffer | null;
  /** Record timestamp, ms since the epoch (> 0). */
  readonly timestamp: number;
}

/** Where an acknowledged record landed. */
export interface Delivery {
  readonly partition: number;
  readonly offset: number;
}

/** Receives the delivery of one record. */
interface Waiter {
  readonly key: string;
  ok(delivery: Delivery): void;
  fail(error: KafkaDeliveryError): void;
}

/** A first-in first-out queue that does not copy on every shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  push(item: T): void {
    this.#items.push(item);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

interface Pending {
  record: OutRecord;
  waiter: Waiter;
}

export class ChangelogProducer {
  #producer: RdKafka.Producer | undefined;
  #connecting: Promise<RdKafka.Producer> | undefined;
  #partitions: number | undefined;
  #backlog: Pending[] = [];
  /** Waiters of records handed to librdkafka, per partition, in produce order. */
  #waiting: Fifo<Waiter>[] = [];
  #inFlight = 0;
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
    if (old) old.disconnect(() => undefined);
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

  /** Produces one record; the waiter learns its fate. Connect first. */
  send(record: OutRecord, waiter: Waiter): void {
    if (this.#backlog.length > 0) {
      this.#backlog.push({ record, waiter });
      return;
    }
    this.#produce(record, waiter, true);
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
      for (const record of records) {
        this.send(record, {
          key: record.key,
          ok: done,
          fail: (error) => {
            failure ??= error;
            done();
          },
        });
      }
    });
  }

  /** Produces one record and resolves on its acknowledgement. */
  sendOne(record: OutRecord): Promise<Delivery> {
    return new Promise((ok, fail) => this.send(record, { key: record.key, ok, fail }));
  }

  #produce(record: OutRecord, waiter: Waiter, mayQueue: boolean): boolean {
    const producer = this.#producer;
    if (!producer || this.#fatal) {
      waiter.fail(this.#error(record, ERR_FATAL, this.#fatal ? messageOf(this.#fatal) : "producer not connected"));
      return true;
    }
    try {
      producer.produce(this.topic, record.partition, record.value, record.key, record.timestamp);
      let fifo = this.#waiting[record.partition];
      if (!fifo) {
        fifo = new Fifo();
        this.#waiting[record.partition] = fifo;
      }
      fifo.push(waiter);
      this.#inFlight++;
      return true;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === ERR_QUEUE_FULL && mayQueue) {
        this.#backlog.push({ record, waiter });
        return false;
      }
      if (code === ERR_QUEUE_FULL) return false;
      waiter.fail(this.#error(record, code, messageOf(error), error));
      return true;
    }
  }

  #onReport(err: RdKafka.LibrdKafkaError | null, report: RdKafka.DeliveryReport): void {
    this.#inFlight--;
    const waiter = this.#waiting[report.partition]?.shift();
    if (waiter) {
      if (err) waiter.fail(this.#error({ partition: report.partition, key: waiter.key }, err.code, err.message, err));
      else waiter.ok({ partition: report.partition, offset: report.offset });
    }
    if (this.#backlog.length > 0) this.#drain();
    if (this.#inFlight === 0 && this.#backlog.length === 0 && this.#idle.length > 0) {
      for (const f of this.#idle.splice(0)) f();
    }
  }

  #drain(): void {
    const backlog = this.#backlog;
    let i = 0;
    while (i < backlog.length) {
      const p = backlog[i]!;
      if (!this.#produce(p.record, p.waiter, false)) break;
      i++;
    }
    if (i > 0) backlog.splice(0, i);
  }

  #error(record: Pick<OutRecord, "partition" | "key">, code: number | undefined, message: string, cause?: unknown) {
    return new KafkaDeliveryError(this.topic, record.partition, record.key, code, message, { cause });
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
    for (const p of this.#backlog.splice(0)) p.waiter.fail(this.#error(p.record, undefined, "the writer was closed"));
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer) await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}
