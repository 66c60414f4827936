/**
 * `KafkaStore`: a {@link Store} over the changelog topic. A namespace is a
 * workspace: its changes live in one partition (murmur2 of the namespace),
 * keyed `{namespace}/{entityType}/{entityId}`, the entity as JSON, a
 * tombstone (null value) for `unset`, the record timestamp = the change's
 * timestamp. `save` resolves once the broker acknowledged every record.
 */

import type { ChangeInput } from "../core/change.js";
import { type Change, ChangeType } from "../core/change.js";
import { CorruptionError, messageOf, throwIfAborted } from "../core/errors.js";
import {
  applyLoadOptions,
  type BaseStoreOptions,
  type CallOptions,
  type LoadOptions,
  OpenState,
  prepareChanges,
  type SaveOptions,
  type Store,
  type StoreCapabilities,
} from "../core/store.js";
import { validateNamespace } from "../core/validation.js";
import { changeLogKey, parseChangeLogKey, recordTimestamp } from "./codec.js";
import { type KafkaConfig, type KafkaConnectionOptions, resolveConnection } from "./config.js";
import { partitionForWorkspace } from "./murmur2.js";
import { ChangelogProducer, type OutRecord } from "./producer.js";
import { ChangelogReader } from "./reader.js";

/** Options of {@link KafkaStore}. */
export interface KafkaStoreOptions extends BaseStoreOptions, KafkaConnectionOptions {
  /** The topic's partition count. @default read from the topic's metadata */
  partitions?: number;
  /** librdkafka producer settings over {@link DEFAULT_PRODUCER_CONFIG}. */
  producerConfig?: KafkaConfig;
  /** librdkafka consumer settings over {@link DEFAULT_CONSUMER_CONFIG}. */
  consumerConfig?: KafkaConfig;
  /** The consumer's `group.id` (required by librdkafka; never joined, nothing committed). @default `$KAFKA_CHANGELOG_GROUP_ID`, else `"workspace-changelog-consumer"` */
  groupId?: string;
  /** A load fails after this long without progress, in ms. @default 60000 */
  stallTimeoutMs?: number;
}

/**
 * A Store on a compacted Kafka topic.
 * - `compact`: not offered — Kafka's log cleaner compacts the topic on the
 *   broker; loads compact on the read path, so duplicates are never seen.
 * - `listNamespaces`: offered, but it reads the whole topic (every partition).
 * - durable: a resolved `save` was acknowledged by all in-sync replicas.
 * A `save` is not atomic across records: when the broker fails mid-save,
 * some records may be written and the save rejects; saving again is safe.
 */
export class KafkaStore implements Store {
  readonly capabilities: StoreCapabilities = { compact: false, listNamespaces: true, durable: true };
  readonly topic: string;
  readonly #options: KafkaStoreOptions;
  readonly #producer: ChangelogProducer;
  readonly #reader: ChangelogReader;
  readonly #state = new OpenState("Kafka store");
  #partitions: number | undefined;

  constructor(options: KafkaStoreOptions = {}) {
    const { brokers, topic } = resolveConnection(options);
    this.topic = topic;
    this.#options = options;
    this.#partitions = options.partitions;
    this.#producer = new ChangelogProducer(brokers, topic, options.producerConfig ?? {}, options.partitions);
    this.#reader = new ChangelogReader({ ...options, brokers, topic });
  }

  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    this.#state.check();
    throwIfAborted(options?.signal);
    const prepared = prepareChanges(changes, this.#options);
    if (prepared.length === 0) return;
    const timestamps = prepared.map((p, i) => recordTimestamp(p.timestamp, `changes[${i}].timestamp`));
    const count = await this.#producer.connect();
    this.#partitions ??= count;
    this.#state.check();
    throwIfAborted(options?.signal);
    const partitions = this.#partitions;
    const records: OutRecord[] = prepared.map((p, i) => ({
      partition: partitionForWorkspace(p.namespace, partitions),
      key: changeLogKey(p.namespace, p.entityType, p.entityId),
      value: p.json ?? null,
      timestamp: timestamps[i]!,
    }));
    await this.#producer.sendAll(records);
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.#state.check();
    validateNamespace(namespace);
    throwIfAborted(options?.signal);
    const n = await this.#partitionCount();
    const partition = partitionForWorkspace(namespace, n);
    const prefix = `${namespace}/`;
    const compacted = await this.#reader.readCompacted([partition], (key) => key.startsWith(prefix), {
      signal: options?.signal,
    });
    const out: Change[] = [];
    for (const [key, message] of compacted.get(partition)!) out.push(this.#decode(namespace, key, message));
    return applyLoadOptions(out, options);
  }

  async #partitionCount(): Promise<number> {
    this.#partitions ??= await this.#reader.partitions();
    return this.#partitions;
  }

  /** Every namespace with at least one record in the topic: reads every partition. */
  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.#state.check();
    throwIfAborted(options?.signal);
    const n = await this.#partitionCount();
    const compacted = await this.#reader.readCompacted(
      Array.from({ length: n }, (_, i) => i),
      undefined,
      { signal: options?.signal },
    );
    const names = new Set<string>();
    for (const latest of compacted.values())
      for (const key of latest.keys()) names.add(parseChangeLogKey(key).workspaceId);
    return [...names];
  }

  #decode(
    namespace: string,
    key: string,
    message: { value: Buffer | null; timestamp?: number; offset: number; partition: number },
  ): Change {
    const { entityType, entityId } = parseChangeLogKey(key);
    const where = `${this.topic}[${message.partition}]@${message.offset}`;
    if (entityType === "" || key.indexOf("/", namespace.length + 1) < 0) {
      throw new CorruptionError(
        where,
        undefined,
        `key ${JSON.stringify(key)} is not {namespace}/{entityType}/{entityId}`,
      );
    }
    const timestamp = new Date(message.timestamp ?? 0);
    if (message.value === null) return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp };
    let entity: unknown;
    try {
      entity = JSON.parse(message.value.toString("utf8"));
    } catch (error) {
      throw new CorruptionError(where, undefined, `value of ${JSON.stringify(key)} is not JSON: ${messageOf(error)}`, {
        cause: error,
      });
    }
    return { namespace, changeType: ChangeType.Set, entityType, entityId, entity, timestamp };
  }

  /** Flushes pending writes (at most 10 s) and disconnects. Idempotent. */
  async close(): Promise<void> {
    if (!this.#state.close()) return;
    await Promise.all([this.#producer.close(), this.#reader.close()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
