/**
 * `ChangelogWriter`: writes entities and tombstones to the compacted
 * changelog topic, partitioned by workspace id. Every `set`/`delete`
 * resolves once the broker acknowledged the record (acks=all) and rejects
 * with a {@link KafkaDeliveryError} when it did not.
 */
import { ClosedError, InvalidValueError, TooLargeError, ValidationError } from "../core/errors.js";
import { DEFAULT_MAX_VALUE_BYTES } from "../core/validation.js";
import { type Changeloggable, keyInWorkspace, recordTimestamp } from "./codec.js";
import { type KafkaConfig, type KafkaConnectionOptions, resolveConnection } from "./config.js";
import { partitionForWorkspace } from "./murmur2.js";
import { ChangelogProducer, type Delivery, type Value } from "./producer.js";

/** Options of {@link ChangelogWriter}. */
export interface ChangelogWriterOptions extends KafkaConnectionOptions {
  /**
   * The topic's partition count, used to pick a workspace's partition. Must
   * match the topic. @default read from the topic's metadata on connect
   */
  partitions?: number;
  /**
   * librdkafka producer settings, merged over {@link DEFAULT_PRODUCER_CONFIG}
   * (e.g. `{ "message.timeout.ms": 5000 }`: how long a record may wait for
   * its acknowledgement, retries included).
   */
  producerConfig?: KafkaConfig;
  /** Largest value, in bytes of UTF-8 JSON. @default 1 MiB */
  maxValueBytes?: number;
}

/** Options of one write. */
export interface WriteOptions {
  /** The record's timestamp: when the change happened. @default now */
  timestamp?: Date;
}

export type { Delivery } from "./producer.js";

/** Workspaces whose partition a writer remembers (then it starts over). */
const PARTITION_CACHE_SIZE = 65_536;

interface QueuedWrite {
  readonly workspaceId: string;
  readonly key: string;
  readonly value: Value;
  readonly timestamp: number;
  readonly ok: (delivery: Delivery) => void;
  readonly fail: (error: unknown) => void;
}

/**
 * Writes a workspace's entities to the changelog.
 * @example
 * await using writer = new ChangelogWriter({ brokers: "localhost:9092", topic: "workspace-changelog", partitions: 10 });
 * await writer.set("ws-123", deployment);            // deployment.changeLogId() === "ws-123/deployment/dep-456"
 * await writer.delete("ws-123", "ws-123/deployment/dep-456");
 */
export class ChangelogWriter implements AsyncDisposable {
  readonly topic: string;
  readonly brokers: string;
  readonly #producer: ChangelogProducer;
  readonly #maxBytes: number;
  #partitions: number | undefined;
  /** Partition per workspace id (murmur2 of its UTF-8 bytes is the costliest step of a small write). */
  readonly #partitionOf = new Map<string, number>();
  /** Writes waiting for the connection, in call order. */
  #queued: QueuedWrite[] | undefined;
  /** Settles once the queued writes were handed to the producer (or failed). */
  #handingOver: Promise<void> | undefined;
  #closed = false;

  constructor(options: ChangelogWriterOptions = {}) {
    const { brokers, topic } = resolveConnection(options);
    this.topic = topic;
    this.brokers = brokers;
    if (options.partitions !== undefined) partitionForWorkspace("x", options.partitions); // validates
    this.#partitions = options.partitions;
    this.#maxBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.#producer = new ChangelogProducer(brokers, topic, options.producerConfig ?? {}, options.partitions);
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
   * Writes `obj` as JSON under its `changeLogId()` in `workspaceId`'s
   * partition, and resolves once the broker acknowledged it.
   * @throws ValidationError | InvalidValueError | TooLargeError before writing; KafkaDeliveryError when not acknowledged
   */
  set<T extends Changeloggable>(workspaceId: string, obj: T, options?: WriteOptions): Promise<Delivery> {
    try {
      this.#check();
      if (typeof obj?.changeLogId !== "function") {
        throw new ValidationError("obj", "must implement Changeloggable (a changeLogId() method)");
      }
      const key = keyInWorkspace(workspaceId, obj.changeLogId());
      const value = this.#serialize(obj, key);
      const timestamp = recordTimestamp(options?.timestamp ?? new Date());
      return this.#send(workspaceId, key, value, timestamp);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Produces once connected; no extra promise on the fast path. Writes made
   * while connecting wait in {@link #queued} and are handed over in call
   * order, before any later write: a key written twice keeps its order.
   */
  #send(workspaceId: string, key: string, value: Value, timestamp: number): Promise<Delivery> {
    const partitions = this.#partitions;
    if (this.#queued === undefined && partitions !== undefined && this.#producer.ready) {
      let partition = this.#partitionOf.get(workspaceId);
      if (partition === undefined) {
        partition = partitionForWorkspace(workspaceId, partitions);
        if (this.#partitionOf.size >= PARTITION_CACHE_SIZE) this.#partitionOf.clear();
        this.#partitionOf.set(workspaceId, partition);
      }
      return this.#producer.sendOne(partition, key, value, timestamp);
    }
    return new Promise<Delivery>((ok, fail) => {
      const write = { workspaceId, key, value, timestamp, ok, fail };
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
      const { workspaceId, key, value, timestamp } = q;
      this.#producer.sendOne(partitionForWorkspace(workspaceId, partitions), key, value, timestamp).then(q.ok, q.fail);
    }
  }

  /**
   * Deletes `changeLogId` from `workspaceId`: writes a tombstone (a record
   * with a null value) and resolves once the broker acknowledged it.
   */
  delete(workspaceId: string, changeLogId: string, options?: WriteOptions): Promise<Delivery> {
    try {
      this.#check();
      const key = keyInWorkspace(workspaceId, changeLogId);
      return this.#send(workspaceId, key, null, recordTimestamp(options?.timestamp ?? new Date()));
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
