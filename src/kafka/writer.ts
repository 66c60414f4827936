/**
 * `ChangelogWriter`: writes entities and tombstones to the compacted
 * changelog topic, partitioned by namespace. Every `set`/`delete` resolves
 * once the broker acknowledged the record (acks=all) and rejects with a
 * {@link KafkaDeliveryError} when it did not.
 */
import { ClosedError, InvalidValueError, STORE_DEFAULTS, TooLargeError, ValidationError } from "../index.js";
import { checkAccepted, loadKafkaClient } from "./client.js";
import { type Changeloggable, keyInNamespace, recordTimestamp } from "./codec.js";
import {
  CHANGELOG_PRODUCER_CONFIG,
  checkKafkaOptions,
  checkPartitions,
  checkProducerConfig,
  checkValueRoom,
  type KafkaConfig,
  type KafkaConnectionOptions,
  SHARED_DEFAULTS,
} from "./config.js";
import { partitionForNamespace } from "./murmur2.js";
import { ChangelogProducer, type Delivery, producerConf, type Value } from "./producer.js";

/** Options of {@link ChangelogWriter.open}. */
export interface ChangelogWriterOptions extends KafkaConnectionOptions {
  /**
   * The topic's partition count, used to pick a namespace's partition. Must
   * match the topic. A positive integer.
   * @default read from the topic's metadata on connect
   */
  partitions?: number;
  /**
   * librdkafka producer settings, merged over
   * {@link CHANGELOG_WRITER_DEFAULTS}`.producerConfig` (e.g.
   * `{ "message.timeout.ms": 5000 }`: how long a record may wait for its
   * acknowledgement, retries included, in ms).
   * @default CHANGELOG_WRITER_DEFAULTS.producerConfig
   */
  producerConfig?: KafkaConfig;
  /** Largest value, in bytes of UTF-8 JSON. A positive integer. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
}

/** Defaults of {@link ChangelogWriterOptions}. */
export const CHANGELOG_WRITER_DEFAULTS = {
  /** Used when `$KAFKA_BROKERS` is not set either. @default "localhost:9092" */
  brokers: SHARED_DEFAULTS.brokers,
  /** Used when `$KAFKA_CHANGELOG_TOPIC` is not set either. @default "workspace-changelog" */
  topic: SHARED_DEFAULTS.topic,
  /** @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /**
   * Idempotent, acks from all in-sync replicas, snappy, at most 5 requests
   * in flight (keeps order with idempotence), retries with backoff until
   * `message.timeout.ms` (30 s).
   * @default { "enable.idempotence": true, acks: "all", "compression.type": "snappy", … }
   */
  producerConfig: CHANGELOG_PRODUCER_CONFIG,
} as const;

/** The writer's options besides the connection's. */
const WRITER_OPTION_NAMES: readonly string[] = ["partitions", "producerConfig", "maxValueBytes"];

/** Options of one write. */
export interface WriteOptions {
  /** The record's timestamp: when the change happened. @default now */
  timestamp?: Date;
}

export type { Delivery } from "./producer.js";

/** Namespaces whose partition a writer remembers (then it starts over). */
const PARTITION_CACHE_SIZE = 65_536;

interface QueuedWrite {
  readonly namespace: string;
  readonly key: string;
  readonly value: Value;
  readonly timestamp: number;
  readonly ok: (delivery: Delivery) => void;
  readonly fail: (error: unknown) => void;
}

/** What {@link ChangelogWriter.open} checked. */
interface WriterSettings {
  readonly brokers: string;
  readonly topic: string;
  readonly partitions: number | undefined;
  readonly producerConfig: KafkaConfig;
  readonly maxValueBytes: number;
}

/**
 * Writes namespaces' entities to the changelog.
 * @example
 * await using writer = await ChangelogWriter.open({ brokers: "localhost:9092", topic: "workspace-changelog" });
 * await writer.set("ws-123", deployment);            // deployment.changeLogId() === "ws-123/deployment/dep-456"
 * await writer.delete("ws-123", "ws-123/deployment/dep-456");
 */
export class ChangelogWriter implements AsyncDisposable {
  readonly topic: string;
  readonly brokers: string;
  readonly #producer: ChangelogProducer;
  readonly #maxBytes: number;
  #partitions: number | undefined;
  /** Partition per namespace (murmur2 of its UTF-8 bytes is the costliest step of a small write). */
  readonly #partitionOf = new Map<string, number>();
  /** Writes waiting for the connection, in call order. */
  #queued: QueuedWrite[] | undefined;
  /** Settles once the queued writes were handed to the producer (or failed). */
  #handingOver: Promise<void> | undefined;
  #closed = false;

  private constructor(settings: WriterSettings) {
    this.topic = settings.topic;
    this.brokers = settings.brokers;
    this.#partitions = settings.partitions;
    this.#maxBytes = settings.maxValueBytes;
    this.#producer = new ChangelogProducer(
      settings.brokers,
      settings.topic,
      settings.producerConfig,
      settings.partitions,
    );
  }

  /**
   * A writer of the changelog topic. Checks the options and loads the
   * Kafka client; it connects on the first write (or {@link connect}):
   * writes made meanwhile wait, in call order.
   * @throws ConfigurationError for an invalid option; PeerMissingError
   *   when `@confluentinc/kafka-javascript` cannot be loaded
   */
  static async open(options: ChangelogWriterOptions = {}): Promise<ChangelogWriter> {
    const { check, brokers, topic } = checkKafkaOptions(
      "ChangelogWriter",
      options,
      CHANGELOG_WRITER_DEFAULTS,
      WRITER_OPTION_NAMES,
    );
    const producerConfig = checkProducerConfig(check, "producerConfig", options.producerConfig);
    const settings: WriterSettings = {
      brokers,
      topic,
      partitions: checkPartitions(check, options),
      producerConfig,
      // A value the producer cannot send is refused before it is written, as any value over the limit.
      maxValueBytes: checkValueRoom(
        check,
        producerConfig,
        check.integer("maxValueBytes", { min: 1 }),
        options.maxValueBytes !== undefined,
      ),
    };
    const { Producer } = await loadKafkaClient();
    checkAccepted(
      check,
      "producerConfig",
      options.producerConfig,
      () => new Producer(producerConf(producerConfig, brokers)),
    );
    return new ChangelogWriter(settings);
  }

  /**
   * The largest value `set` writes, in bytes of UTF-8 JSON: `maxValueBytes`,
   * or when not given 1 MiB or what the producer's `message.max.bytes`
   * leaves next to the key, whichever is smaller.
   */
  get maxValueBytes(): number {
    return this.#maxBytes;
  }

  /** Connects and learns the partition count; `set`/`delete` do this on first use. */
  async connect(): Promise<void> {
    this.#check();
    this.#partitions = await this.#producer.connect();
  }

  /** The topic's partition count (after connecting, or as configured). */
  get partitions(): number | undefined {
    return this.#partitions;
  }

  /**
   * Writes `obj` as JSON under its `changeLogId()` in `namespace`'s
   * partition, and resolves once the broker acknowledged it.
   * @throws ValidationError | InvalidValueError | TooLargeError before writing; KafkaDeliveryError when not acknowledged
   */
  set<T extends Changeloggable>(namespace: string, obj: T, options?: WriteOptions): Promise<Delivery> {
    try {
      this.#check();
      if (typeof obj?.changeLogId !== "function") {
        throw new ValidationError("obj", "must implement Changeloggable (a changeLogId() method)");
      }
      const key = keyInNamespace(namespace, obj.changeLogId());
      const value = this.#serialize(obj, key);
      const timestamp = recordTimestamp(options?.timestamp ?? new Date());
      return this.#send(namespace, key, value, timestamp);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Produces once connected; no extra promise on the fast path. Writes made
   * while connecting wait in {@link #queued} and are handed over in call
   * order, before any later write: a key written twice keeps its order.
   */
  #send(namespace: string, key: string, value: Value, timestamp: number): Promise<Delivery> {
    const partitions = this.#partitions;
    if (this.#queued === undefined && partitions !== undefined && this.#producer.ready) {
      let partition = this.#partitionOf.get(namespace);
      if (partition === undefined) {
        partition = partitionForNamespace(namespace, partitions);
        if (this.#partitionOf.size >= PARTITION_CACHE_SIZE) this.#partitionOf.clear();
        this.#partitionOf.set(namespace, partition);
      }
      return this.#producer.sendOne(partition, key, value, timestamp);
    }
    return new Promise<Delivery>((ok, fail) => {
      const write = { namespace, key, value, timestamp, ok, fail };
      if (this.#queued === undefined) {
        this.#queued = [write];
        this.#handingOver = this.#sendQueuedWhenConnected();
      } else {
        this.#queued.push(write);
      }
    });
  }

  async #sendQueuedWhenConnected(): Promise<void> {
    let failure: unknown;
    try {
      this.#partitions = await this.#producer.connect(); // also when close() came meanwhile: queued writes go out
    } catch (error) {
      failure = error;
    }
    const queued = this.#queued ?? [];
    this.#queued = undefined;
    const partitions = this.#partitions;
    for (const q of queued) {
      if (failure !== undefined || partitions === undefined) {
        q.fail(failure ?? new Error("no partition count after connecting"));
        continue;
      }
      const { namespace, key, value, timestamp } = q;
      this.#producer.sendOne(partitionForNamespace(namespace, partitions), key, value, timestamp).then(q.ok, q.fail);
    }
  }

  /**
   * Deletes `changeLogId` from `namespace`: writes a tombstone (a record
   * with a null value) and resolves once the broker acknowledged it.
   * @throws ValidationError before writing; KafkaDeliveryError when not acknowledged
   */
  delete(namespace: string, changeLogId: string, options?: WriteOptions): Promise<Delivery> {
    try {
      this.#check();
      const key = keyInNamespace(namespace, changeLogId);
      return this.#send(namespace, key, null, recordTimestamp(options?.timestamp ?? new Date()));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Waits until every write so far is acknowledged or failed, at most
   * `timeoutMs` ms. Resolves `true` when nothing is pending any more.
   */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const started = Date.now();
    if (this.#handingOver) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const late = await Promise.race([this.#handingOver.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) return false;
    }
    return this.#producer.flush(Math.max(0, timeoutMs - (Date.now() - started)));
  }

  /** Writes not yet acknowledged or failed. */
  get pending(): number {
    return this.#producer.pending + (this.#queued?.length ?? 0);
  }

  /** Flushes (at most 10 s), then disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handingOver; // writes made while connecting go out first (it never rejects)
    await this.#producer.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #check(): void {
    if (this.#closed) throw new ClosedError("Kafka changelog writer");
  }

  /** The value as JSON text, checked for size; its bytes are made when it is handed to librdkafka (a write waiting for room holds only the text). */
  #serialize(obj: Changeloggable, key: string): string {
    let json: string | undefined;
    try {
      json = JSON.stringify(obj);
    } catch (error) {
      throw new InvalidValueError(key, (error as Error).message, { cause: error });
    }
    if (json === undefined) throw new InvalidValueError(key, "serializes to nothing (undefined)");
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: only text that could exceed the limit is counted.
    if (json.length * 3 > this.#maxBytes) {
      const bytes = Buffer.byteLength(json, "utf8");
      if (bytes > this.#maxBytes) throw new TooLargeError(bytes, this.#maxBytes, `value of ${JSON.stringify(key)}`);
    }
    return json;
  }
}
