/**
 * One librdkafka producer with promise-per-record delivery: a record's
 * promise settles on its delivery report (acknowledged by the broker, or
 * failed). Polls on librdkafka's background thread; when librdkafka's
 * queue is full, records wait in order in a backlog instead of failing
 * (their values as bytes outside the JavaScript heap). A pending record
 * keeps only its promise's resolve function, its key and a few numbers
 * alive: with a million writes in flight, what the garbage collector has
 * to copy and mark is what limits throughput (docs/performance.md).
 * Delivery reports are matched to records per partition in produce order
 * (librdkafka reports a partition's records in the order they were
 * produced), which spares a native opaque handle per record; a failure,
 * or a report whose key or size is not the oldest record's, is matched to the
 * oldest record with its key and its value's size (else to the oldest
 * with its key).
 */
import { ClosedError, messageOf } from "../index.js";
import { disconnectQuietly, loadKafkaClient, type RdKafka } from "./client.js";
import { checkPartitionCount, type KafkaConfig, PRODUCER_MESSAGE_MAX_BYTES } from "./config.js";
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

/** What became of one record of {@link ChangelogProducer.sendAll}: its delivery, or its error. */
export type RecordOutcome =
  | { readonly delivery: Delivery; readonly error?: undefined }
  | { readonly delivery?: undefined; readonly error: unknown };

/** A record value: bytes, text (encoded to UTF-8 when it is handed to librdkafka or put in the backlog), or a tombstone. */
export type Value = Buffer | string | null;

/**
 * Learns a record's fate: called once, with its {@link Delivery} when the
 * broker acknowledged it, or with a rejected promise (of a
 * {@link KafkaDeliveryError}) when it failed. A promise's own resolve
 * function is one, so a pending write keeps one function alive, not two.
 */
export type Settle = (outcome: Delivery | Promise<never>) => void;

/** A promise rejected with `error`, to hand to a {@link Settle}. */
function rejected(error: KafkaDeliveryError): Promise<never> {
  const promise = Promise.reject(error);
  // Handled here too: the caller's promise adopts the rejection all the same, and a settle
  // called twice by mistake could never turn into an unhandled rejection.
  promise.catch(() => undefined);
  return promise;
}

/** Bytes per chunk of {@link ByteQueue}. */
const CHUNK_BYTES = 1 << 20;

/**
 * The values of the records waiting in the backlog, as UTF-8 bytes outside
 * the JavaScript heap, in call order: appended at the tail, released from
 * the head. A million waiting records would otherwise be a million strings
 * the garbage collector copies and marks over and over.
 */
class ByteQueue {
  #chunks: Buffer[] = [];
  /** Number of the chunk at `#chunks[0]`. */
  #first = 0;
  /** Bytes used in the last chunk. */
  #used = 0;

  /** Number of the chunk the last {@link append} wrote to. */
  chunk = 0;
  /** Where in that chunk. */
  offset = 0;

  /** Appends `value` (text as UTF-8); sets {@link chunk}/{@link offset}, returns its length in bytes. */
  append(value: string | Buffer): number {
    let last = this.#chunks[this.#chunks.length - 1];
    let room = last ? last.length - this.#used : 0;
    // UTF-8 needs at most 3 bytes per UTF-16 code unit: count the bytes only when they might not fit.
    const text = typeof value === "string";
    if (last === undefined || (text ? value.length * 3 : value.length) > room) {
      const bytes = text ? Buffer.byteLength(value, "utf8") : value.length;
      if (last === undefined || bytes > room) {
        last = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, bytes));
        this.#chunks.push(last);
        this.#used = 0;
        room = last.length;
      }
    }
    const bytes = text ? last!.write(value, this.#used, room, "utf8") : value.copy(last!, this.#used);
    this.chunk = this.#first + this.#chunks.length - 1;
    this.offset = this.#used;
    this.#used += bytes;
    return bytes;
  }

  /** The bytes appended at (`chunk`, `offset`), as a view (valid until that chunk is released). */
  view(chunk: number, offset: number, length: number): Buffer {
    return this.#chunks[chunk - this.#first]!.subarray(offset, offset + length);
  }

  /** Releases every chunk before `chunk` (its records were handed over). */
  releaseBefore(chunk: number): void {
    const n = chunk - this.#first;
    if (n > 0) {
      this.#chunks.splice(0, n);
      this.#first = chunk;
    }
  }

  /** Releases everything (keeps one chunk to write into). */
  clear(): void {
    const last = this.#chunks[this.#chunks.length - 1];
    this.#first += this.#chunks.length;
    this.#chunks = [];
    this.#used = 0;
    if (last && last.length === CHUNK_BYTES) {
      this.#chunks.push(last);
      this.#first--;
    }
  }
}

/** `valueChunks` entry of a tombstone. */
const NO_VALUE = -1;

/**
 * Records waiting for room in librdkafka's queue, in call order: one array
 * per field and a head index (no object per record), values as bytes in a
 * {@link ByteQueue}.
 */
class RecordQueue {
  readonly partitions: number[] = [];
  readonly keys: string[] = [];
  readonly valueChunks: number[] = [];
  readonly valueOffsets: number[] = [];
  readonly valueLengths: number[] = [];
  readonly timestamps: number[] = [];
  readonly settles: Settle[] = [];
  readonly bytes = new ByteQueue();
  head = 0;

  get length(): number {
    return this.keys.length - this.head;
  }

  push(partition: number, key: string, value: Value, timestamp: number, settle: Settle): void {
    this.partitions.push(partition);
    this.keys.push(key);
    if (value === null) {
      this.valueChunks.push(NO_VALUE);
      this.valueOffsets.push(0);
      this.valueLengths.push(0);
    } else {
      const length = this.bytes.append(value);
      this.valueChunks.push(this.bytes.chunk);
      this.valueOffsets.push(this.bytes.offset);
      this.valueLengths.push(length);
    }
    this.timestamps.push(timestamp);
    this.settles.push(settle);
  }

  /** The head record's value: a view of its bytes, or null for a tombstone. */
  headValue(): Buffer | null {
    const h = this.head;
    const chunk = this.valueChunks[h]!;
    return chunk === NO_VALUE ? null : this.bytes.view(chunk, this.valueOffsets[h]!, this.valueLengths[h]!);
  }

  /** Drops the head entry (call after reading its fields at {@link head}). */
  shift(): void {
    const h = this.head++;
    if (this.head === this.keys.length) {
      this.clear();
      return;
    }
    const chunk = this.valueChunks[h]!;
    if (chunk !== NO_VALUE) this.bytes.releaseBefore(chunk);
    if (this.head > 4096 && this.head * 2 > this.keys.length) {
      for (const a of this.#arrays()) a.splice(0, this.head);
      this.head = 0;
    }
  }

  clear(): void {
    for (const a of this.#arrays()) a.length = 0;
    this.bytes.clear();
    this.head = 0;
  }

  #arrays(): unknown[][] {
    return [
      this.partitions,
      this.keys,
      this.valueChunks,
      this.valueOffsets,
      this.valueLengths,
      this.timestamps,
      this.settles,
    ];
  }
}

/**
 * Records handed to librdkafka of one partition, in produce order: who
 * learns each one's fate. A waiter settled out of order (a failure that
 * librdkafka reported ahead of older records) is only marked (its settle
 * function cleared) and skipped later, so that a burst of such failures
 * behind a record still in flight costs a step each, not a move of every
 * younger waiter. The head is always a waiter still waiting.
 */
class WaiterQueue {
  readonly keys: string[] = [];
  /** Per waiter, who learns its fate; `undefined` once it was settled out of order. */
  readonly settles: (Settle | undefined)[] = [];
  /**
   * Per waiter, its record's value size in bytes (0 for a tombstone): what
   * else a failure's report tells of it (such a report carries no
   * timestamp).
   */
  readonly sizes: number[] = [];
  head = 0;
  /** No waiter after the head and before this index is still waiting (where a search for a report starts). */
  #after = 1;

  /** Waiters from the head on, settled ones among them: 0 when none is waiting. */
  get length(): number {
    return this.settles.length - this.head;
  }

  push(key: string, settle: Settle, size: number): void {
    this.keys.push(key);
    this.settles.push(settle);
    this.sizes.push(size);
  }

  /**
   * Whether the head waiter's key is `key` (a report's key: the bytes of
   * a key given as a string; a report without a key matches any head).
   * Compares ASCII bytes in place, without decoding them.
   */
  headHas(key: Buffer | string | null | undefined): boolean {
    if (key === null || key === undefined) return true;
    const text = this.keys[this.head]!;
    if (typeof key === "string") return key === text;
    const n = key.length;
    if (n !== text.length) return n > text.length && key.toString("utf8") === text;
    for (let i = 0; i < n; i++) {
      const c = key[i]!;
      if (c !== text.charCodeAt(i) || c > 127) return key.toString("utf8") === text;
    }
    return true;
  }

  /**
   * The waiter a report out of order is about: the oldest still waiting
   * with its key and its value's size; else the oldest with its key; else
   * the head.
   */
  indexOfReport(report: RdKafka.DeliveryReport): number {
    const { key } = report;
    if (key === null || key === undefined) return this.head;
    const text = typeof key === "string" ? key : key.toString("utf8");
    const { keys, settles, sizes } = this;
    let first = -1;
    const at = (i: number): boolean => {
      if (settles[i] === undefined) return false;
      if (first === -1) first = i;
      return sizes[i] === report.size;
    };
    if (keys[this.head] === text && at(this.head)) return this.head;
    for (let i = keys.indexOf(text, this.#after); i !== -1; i = keys.indexOf(text, i + 1)) {
      if (at(i)) return i;
    }
    return first === -1 ? this.head : first;
  }

  /** Settles the waiter at `i` out of the queue (the head, or one further on: a failure reported out of order). */
  take(i: number): void {
    if (i === this.head) {
      this.shift();
      return;
    }
    this.settles[i] = undefined;
    const settles = this.settles;
    let after = this.#after;
    while (after < settles.length && settles[after] === undefined) after++;
    this.#after = after;
  }

  shift(): void {
    const settles = this.settles;
    let head = this.head + 1;
    while (head < settles.length && settles[head] === undefined) head++;
    this.head = head;
    if (head === settles.length) {
      this.clear();
      return;
    }
    if (this.#after <= head) this.#after = head + 1;
    if (head > 4096 && head * 2 > settles.length) {
      this.keys.splice(0, head);
      settles.splice(0, head);
      this.sizes.splice(0, head);
      this.#after -= head;
      this.head = 0;
    }
  }

  clear(): void {
    this.keys.length = this.settles.length = this.sizes.length = 0;
    this.head = 0;
    this.#after = 1;
  }
}

/** Captures a new promise's resolve function without a closure per promise. */
let captured: Settle | undefined;
function capture(resolve: Settle): void {
  captured = resolve;
}

/** The changelog's producer: one librdkafka producer, a promise (or a {@link Settle}) per record. */
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
    const producer = new Producer(producerConf(this.config, this.brokers));
    producer.on("delivery-report", (err, report) => this.#onReport(err, report));
    producer.on("event.error", (err: RdKafka.LibrdKafkaError) => {
      if (err.isFatal) this.#fatal = err;
    });
    const metadata = await new Promise<RdKafka.Metadata>((resolve, reject) => {
      producer.connect({ topic: this.topic, timeout: 15_000 } as RdKafka.MetadataOptions, (err, data) =>
        err ? reject(err) : resolve(data),
      );
    }).catch((error: unknown) => {
      disconnectQuietly(producer);
      throw new KafkaTopicError(this.topic, `cannot connect to ${this.brokers}: ${messageOf(error)}`, { cause: error });
    });
    const meta = metadata.topics.find((t) => t.name === this.topic);
    const count = meta && meta.partitions.length > 0 ? meta.partitions.length : undefined;
    try {
      // Also with `partitions` given: the producer does not create it (allow.auto.create.topics is off).
      if (count === undefined)
        throw new KafkaTopicError(this.topic, "does not exist (create it with ensureChangelogTopic)");
      if (this.#partitions === undefined) this.#partitions = count;
      else checkPartitionCount(this.topic, this.#partitions, count);
    } catch (error) {
      disconnectQuietly(producer);
      throw error;
    }
    producer.setPollInBackground(true);
    this.#fatal = undefined;
    this.#producer = producer;
    // Records that waited for room in the replaced producer get no report that would hand them over: do it now.
    if (this.#backlog.length > 0) this.#drain();
    return producer;
  }

  /** Produces one record; `settle` learns its fate. Connect first. */
  send(partition: number, key: string, value: Value, timestamp: number, settle: Settle): void {
    if (this.#backlog.length > 0) this.#backlog.push(partition, key, value, timestamp, settle);
    else this.#produce(partition, key, value, timestamp, settle, true);
  }

  /**
   * Produces records in order and resolves once every one was acknowledged
   * or failed, with each record's outcome (by index). Never rejects.
   */
  sendAll(records: readonly OutRecord[]): Promise<RecordOutcome[]> {
    return new Promise((resolve) => {
      const outcomes: RecordOutcome[] = new Array(records.length);
      let left = records.length;
      if (left === 0) resolve(outcomes);
      records.forEach((r, i) => {
        const done = (outcome: RecordOutcome) => {
          outcomes[i] = outcome;
          if (--left === 0) resolve(outcomes);
        };
        this.send(r.partition, r.key, r.value, r.timestamp, (outcome) => {
          if (outcome instanceof Promise) outcome.then(undefined, (error: unknown) => done({ error }));
          else done({ delivery: outcome });
        });
      });
    });
  }

  /** Produces one record and resolves on its acknowledgement. */
  sendOne(partition: number, key: string, value: Value, timestamp: number): Promise<Delivery> {
    const promise = new Promise<Delivery>(capture as (resolve: Settle) => void);
    this.send(partition, key, value, timestamp, captured!);
    return promise;
  }

  /** Hands one record to librdkafka; false when its queue is full and `mayQueue` is false. */
  #produce(
    partition: number,
    key: string,
    value: Value,
    timestamp: number,
    settle: Settle,
    mayQueue: boolean,
  ): boolean {
    const producer = this.#producer;
    if (!producer || this.#fatal) {
      settle(
        rejected(
          this.#error(partition, key, ERR_FATAL, this.#fatal ? messageOf(this.#fatal) : "producer not connected"),
        ),
      );
      return true;
    }
    try {
      // librdkafka copies the bytes (RK_MSG_COPY): the Buffer is garbage once produce returns.
      const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
      producer.produce(this.topic, partition, bytes, key, timestamp);
      let waiting = this.#waiting[partition];
      if (!waiting) {
        waiting = new WaiterQueue();
        this.#waiting[partition] = waiting;
      }
      waiting.push(key, settle, bytes === null ? 0 : bytes.length);
      this.#inFlight++;
      return true;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === ERR_QUEUE_FULL && this.#inFlight === 0) {
        // Full with nothing in it: this record alone is larger than the queue may hold.
        settle(
          rejected(
            this.#error(
              partition,
              key,
              code,
              "librdkafka's queue is full with nothing in flight: the record is larger than queue.buffering.max.kbytes",
              error,
            ),
          ),
        );
        return true;
      }
      if (code === ERR_QUEUE_FULL) {
        this.#drainBelow = this.#inFlight - Math.max(1, Math.min(1000, Math.floor(this.#inFlight / 10)));
        if (!mayQueue) return false; // the caller keeps it (in the backlog)
        this.#backlog.push(partition, key, value, timestamp, settle);
        return true;
      }
      if (code === ERR_FATAL) this.#fatal ??= error as RdKafka.LibrdKafkaError;
      settle(rejected(this.#error(partition, key, code, messageOf(error), error)));
      return true;
    }
  }

  #onReport(err: RdKafka.LibrdKafkaError | null, report: RdKafka.DeliveryReport): void {
    this.#inFlight--;
    // The binding's `event.error` carries no `isFatal`: a report failed with librdkafka's fatal
    // code is how a fatal error shows, and the next write then replaces the producer.
    if (err?.code === ERR_FATAL) this.#fatal ??= err;
    const waiting = this.#waiting[report.partition];
    if (waiting && waiting.length > 0) {
      // Reports of a partition come in produce order, except failures: librdkafka fails records
      // whose message.timeout.ms ran out while they waited in its queue before older records in
      // flight are answered. A failed report is matched by its key and its value's size (which
      // tell two writes of one key apart unless their values are as long), never to the oldest
      // waiter; so is a success whose key or size is not the oldest waiter's (a broker that
      // stored a retried request after a later one, which an idempotent producer's broker refuses
      // to do, but librdkafka's mock cluster does not), so that no write is told another's outcome.
      const i =
        err || !waiting.headHas(report.key) || waiting.sizes[waiting.head] !== report.size
          ? waiting.indexOfReport(report)
          : waiting.head;
      const key = waiting.keys[i]!;
      const settle = waiting.settles[i]!;
      waiting.take(i);
      if (err) settle(rejected(this.#error(report.partition, key, err.code, err.message, err)));
      else settle({ partition: report.partition, offset: report.offset });
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
        b.headValue(),
        b.timestamps[h]!,
        b.settles[h]!,
        false,
      );
      if (!produced) break;
      b.shift();
    }
  }

  /**
   * A delivery error. `mayBeWritten` (the record was handed to librdkafka
   * and no answer came) defaults to librdkafka's time-out code.
   */
  #error(
    partition: number,
    key: string,
    code: number | undefined,
    message: string,
    cause?: unknown,
    mayBeWritten?: boolean,
  ): KafkaDeliveryError {
    return new KafkaDeliveryError(this.topic, partition, key, code, message, { cause, mayBeWritten });
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
    const started = Date.now();
    await this.flush(timeoutMs);
    this.#closed = true;
    const b = this.#backlog;
    for (let h = b.head; h < b.keys.length; h++) {
      b.settles[h]!(rejected(this.#error(b.partitions[h]!, b.keys[h]!, undefined, "the writer was closed")));
    }
    b.clear();
    const producer = this.#producer;
    this.#producer = undefined;
    // librdkafka's disconnect flushes again (5 s unless told): only for what is left of `timeoutMs`.
    const left = Math.max(0, timeoutMs - (Date.now() - started));
    if (producer) await new Promise<void>((resolve) => producer.disconnect(left, () => resolve()));
    // Records the broker never answered within the flush: their reports will not come any more.
    this.#failWaiting("the writer was closed before the broker answered: whether the record was written is unknown");
  }

  /** Fails every record handed to librdkafka that has no report yet (its producer is gone). */
  #failWaiting(message: string): void {
    this.#waiting.forEach((w, partition) => {
      if (!w) return;
      for (let h = w.head; h < w.settles.length; h++) {
        w.settles[h]?.(rejected(this.#error(partition, w.keys[h]!, undefined, message, undefined, true)));
      }
      w.clear();
    });
    this.#inFlight = 0;
    if (this.#backlog.length === 0) for (const f of this.#idle.splice(0)) f();
  }
}

/**
 * Internal (not exported by the package), never used: a producer, a
 * backlog that held a record (its arrays in the element kinds a record
 * gives them, its byte queue past a chunk) and a waiter queue, alive as
 * long as the module. Their shapes, with the field types and element kinds
 * records give them, live as long as one instance does. Otherwise a full
 * garbage collection between two writers drops them; the next writer
 * builds them again while its first records are queued, which deoptimises
 * the write path (`set`, `send`, the backlog's `push`) in the middle of a
 * burst of writes, and V8 may not optimise it again before the burst ends
 * (seen with --trace-deopt: "code dependencies", "weak objects").
 */
export const KEEP_PRODUCER_SHAPES: unknown = keepShapes();

function keepShapes(): unknown[] {
  const backlog = new RecordQueue();
  const settle: Settle = () => undefined;
  backlog.push(0, "", "", Date.now(), settle);
  backlog.push(0, "", null, Date.now(), settle);
  backlog.bytes.releaseBefore(backlog.bytes.chunk + 1); // keeps no 1 MiB chunk
  backlog.clear();
  const waiting = new WaiterQueue();
  waiting.push("", settle, 0);
  waiting.shift();
  return [backlog, waiting, new ChangelogProducer("", "", {}, undefined)];
}

/** What a producer of the changelog is made with: `config` (checked) over statelog's own settings. */
export function producerConf(config: KafkaConfig, brokers: string): RdKafka.ProducerGlobalConfig {
  return {
    "message.max.bytes": PRODUCER_MESSAGE_MAX_BYTES,
    ...config,
    "bootstrap.servers": brokers,
    // A write to a missing topic must not create it: a broker's auto-created topic has its default
    // cleanup.policy (delete) and partition count, and would drop entities that did not change for retention.ms.
    "allow.auto.create.topics": false,
    dr_cb: true,
  } as RdKafka.ProducerGlobalConfig;
}
