/**
 * `ChangelogReader`: restores the changelog. A load reads each partition
 * from its start to the end offset captured when the load began and then
 * ends. Compaction happens on the read path too: the latest record per key
 * (by offset) wins and tombstones remove keys, so duplicates the broker has
 * not compacted yet are invisible.
 */
import { ClosedError, messageOf } from "../core/errors.js";
import type { RdKafka } from "./client.js";
import { parseChangeLogKey } from "./codec.js";
import { type KafkaConfig, type KafkaConnectionOptions, resolveConnection, resolveGroupId } from "./config.js";
import { ChangelogConsumer, type ScanOptions } from "./consumer.js";
import { KafkaReadError } from "./errors.js";
import { partitionForWorkspace } from "./murmur2.js";

export type { LoadProgress } from "./consumer.js";

/** Options of {@link ChangelogReader}. */
export interface ChangelogReaderOptions extends KafkaConnectionOptions {
  /**
   * librdkafka's consumer needs a `group.id`; reads assign partitions
   * explicitly, so the group is never joined and no offset is committed.
   * @default `$KAFKA_CHANGELOG_GROUP_ID`, else `"workspace-changelog-consumer"`
   */
  groupId?: string;
  /** The topic's partition count. @default read from the topic's metadata */
  partitions?: number;
  /** librdkafka consumer settings, merged over {@link DEFAULT_CONSUMER_CONFIG}. */
  consumerConfig?: KafkaConfig;
  /**
   * A load fails with a `KafkaReadError` after this long without progress
   * (brokers unreachable). Not an end-of-data time-out: a load ends at the
   * captured end offsets. In ms. @default 60000
   */
  stallTimeoutMs?: number;
}

/** Options of one load. */
export interface LoadCallOptions extends ScanOptions {}

/** One record of the changelog: the latest of its key. */
export class ChangelogEntry {
  /** The full key `{workspaceId}/{entityType}/{entityId}`. */
  readonly key: string;
  readonly workspaceId: string;
  readonly entityType: string;
  readonly entityId: string;
  /** The raw value; `null` for a tombstone. */
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: number;
  /** The record timestamp (when the change happened). */
  readonly timestamp: Date;

  constructor(key: string, message: Pick<RdKafka.Message, "value" | "partition" | "offset" | "timestamp">) {
    const parts = parseChangeLogKey(key);
    this.key = key;
    this.workspaceId = parts.workspaceId;
    this.entityType = parts.entityType;
    this.entityId = parts.entityId;
    this.value = message.value;
    this.partition = message.partition;
    this.offset = message.offset;
    this.timestamp = new Date(message.timestamp ?? 0);
  }

  /** The key was deleted: a record with a null value. */
  get isTombstone(): boolean {
    return this.value === null;
  }

  /**
   * The value parsed as JSON (the seed's `UnmarshalInto`).
   * @throws KafkaReadError for a tombstone or a value that is not JSON
   */
  unmarshal<T = unknown>(): T {
    if (this.value === null)
      throw new KafkaReadError("", `${JSON.stringify(this.key)} is a tombstone: it has no value`);
    try {
      return JSON.parse(this.value.toString("utf8")) as T;
    } catch (error) {
      throw new KafkaReadError(
        "",
        `value of ${JSON.stringify(this.key)} at offset ${this.offset} is not JSON: ${messageOf(error)}`,
        {
          cause: error,
        },
      );
    }
  }
}

/** Latest message per key, per partition, in the order the winners were written. */
export type CompactedPartitions = Map<number, Map<string, RdKafka.Message>>;

/**
 * Restores the changelog.
 * @example
 * await using reader = new ChangelogReader({ topic: "workspace-changelog" });
 * const entries = await reader.loadForWorkspace("ws-123");   // Map key → entry, live entities only
 */
export class ChangelogReader implements AsyncDisposable {
  readonly topic: string;
  readonly brokers: string;
  readonly groupId: string;
  readonly #consumer: ChangelogConsumer;
  #partitions: number | undefined;
  #closed = false;

  constructor(options: ChangelogReaderOptions = {}) {
    const { brokers, topic } = resolveConnection(options);
    this.topic = topic;
    this.brokers = brokers;
    this.groupId = resolveGroupId(options.groupId, options.env);
    if (options.partitions !== undefined) partitionForWorkspace("x", options.partitions); // validates
    this.#partitions = options.partitions;
    this.#consumer = new ChangelogConsumer(
      brokers,
      topic,
      this.groupId,
      options.consumerConfig ?? {},
      options.stallTimeoutMs ?? 60_000,
    );
  }

  /** The topic's partition count (configured, or from the broker's metadata). */
  async partitions(): Promise<number> {
    this.#check();
    this.#partitions ??= await this.#consumer.partitionCount();
    return this.#partitions;
  }

  /**
   * Reads `partitions` and compacts on the way: latest message per key
   * (tombstones included), per partition. `accept` filters keys.
   */
  async readCompacted(
    partitions: readonly number[],
    accept: ((key: string) => boolean) | undefined,
    options?: LoadCallOptions,
  ): Promise<CompactedPartitions> {
    this.#check();
    const out: CompactedPartitions = new Map(partitions.map((p) => [p, new Map()]));
    await this.#consumer.read(
      partitions,
      (key, message) => {
        if (accept && !accept(key)) return;
        const latest = out.get(message.partition)!;
        latest.delete(key); // a re-written key moves to the end: order of the winners
        latest.set(key, message);
      },
      options,
    );
    return out;
  }

  /**
   * Calls `handler` once per key with its latest record, tombstones
   * included (`entry.isTombstone`), partition by partition in offset order
   * of the winners. Resolves with the number of entries handled.
   */
  async loadAll(handler: (entry: ChangelogEntry) => void | Promise<void>, options?: LoadCallOptions): Promise<number> {
    const n = await this.partitions();
    const compacted = await this.readCompacted(range(n), undefined, options);
    let count = 0;
    for (const latest of compacted.values()) {
      for (const [key, message] of latest) {
        await handler(new ChangelogEntry(key, message));
        count++;
      }
    }
    return count;
  }

  /** Every live entry of the topic, by key (tombstoned keys are left out). */
  async loadAllIntoMap(options?: LoadCallOptions): Promise<Map<string, ChangelogEntry>> {
    const n = await this.partitions();
    return live(await this.readCompacted(range(n), undefined, options));
  }

  /** The live entries of one workspace, by key; reads only the workspace's partition. */
  async loadForWorkspace(workspaceId: string, options?: LoadCallOptions): Promise<Map<string, ChangelogEntry>> {
    const n = await this.partitions();
    const prefix = `${workspaceId}/`;
    const partition = partitionForWorkspace(workspaceId, n);
    return live(await this.readCompacted([partition], (key) => key.startsWith(prefix), options));
  }

  /** Disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#consumer.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #check(): void {
    if (this.#closed) throw new ClosedError("Kafka changelog reader");
  }
}

function live(compacted: CompactedPartitions): Map<string, ChangelogEntry> {
  const out = new Map<string, ChangelogEntry>();
  for (const latest of compacted.values()) {
    for (const [key, message] of latest) if (message.value !== null) out.set(key, new ChangelogEntry(key, message));
  }
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
