/**
 * `KafkaStore`: a Store over the changelog topic. A namespace's changes
 * live in one partition (murmur2 of the namespace), keyed
 * `{namespace}/{entityType}/{entityId}`, the entity as JSON, a tombstone
 * (null value) for `unset`, the record timestamp = the change's timestamp.
 * `save` resolves once the broker acknowledged every record.
 */
import {
  BASE_STORE_OPTION_NAMES,
  BaseStore,
  type BaseStoreOptions,
  type CallOptions,
  type Change,
  type ChangeFeed,
  type ChangeInput,
  ChangeType,
  CorruptionError,
  type LoadOptions,
  messageOf,
  PartialWriteError,
  type SaveOptions,
  STORE_DEFAULTS,
  type StoreCapabilities,
  throwIfAborted,
  type WatchOptions,
  type WriteFailure,
} from "../index.js";
import { checkAccepted, loadKafkaClient } from "./client.js";
import { changeLogKey, parseChangeLogKey, recordTimestamp } from "./codec.js";
import {
  CHANGELOG_CONSUMER_CONFIG,
  CHANGELOG_PRODUCER_CONFIG,
  checkKafkaConfig,
  checkKafkaOptions,
  checkPartitions,
  checkProducerConfig,
  checkValueRoom,
  type KafkaConfig,
  type KafkaConnectionOptions,
  resolveGroupId,
  SHARED_DEFAULTS,
} from "./config.js";
import { ChangelogConsumer, consumerConf } from "./consumer.js";
import { isKafkaDeliveryError } from "./errors.js";
import { KafkaFeedSource } from "./feed.js";
import { partitionForNamespace } from "./murmur2.js";
import { ChangelogProducer, type OutRecord, producerConf, type RecordOutcome } from "./producer.js";
import { ChangelogReader } from "./reader.js";

/** Options of {@link KafkaStore.open}: those of every store, the connection's, and these. */
export interface KafkaStoreOptions extends BaseStoreOptions, KafkaConnectionOptions {
  /** The topic's partition count, a positive integer. @default read from the topic's metadata */
  partitions?: number;
  /**
   * librdkafka producer settings, merged over
   * {@link KAFKA_STORE_DEFAULTS}`.producerConfig`.
   * @default KAFKA_STORE_DEFAULTS.producerConfig
   */
  producerConfig?: KafkaConfig;
  /**
   * librdkafka consumer settings, merged over
   * {@link KAFKA_STORE_DEFAULTS}`.consumerConfig`.
   * @default KAFKA_STORE_DEFAULTS.consumerConfig
   */
  consumerConfig?: KafkaConfig;
  /**
   * The consumer's `group.id` (librdkafka requires one; the store never
   * joins the group and commits nothing).
   * @default `$KAFKA_CHANGELOG_GROUP_ID`, else `"workspace-changelog-consumer"`
   */
  groupId?: string;
  /** A load fails after this long without progress, in ms. A positive integer. @default 60000 */
  stallTimeoutMs?: number;
}

/** Defaults of {@link KafkaStoreOptions}. */
export const KAFKA_STORE_DEFAULTS = {
  ...STORE_DEFAULTS,
  /** Used when `$KAFKA_BROKERS` is not set either. @default "localhost:9092" */
  brokers: SHARED_DEFAULTS.brokers,
  /** Used when `$KAFKA_CHANGELOG_TOPIC` is not set either. @default "workspace-changelog" */
  topic: SHARED_DEFAULTS.topic,
  /** Used when `$KAFKA_CHANGELOG_GROUP_ID` is not set either. @default "workspace-changelog-consumer" */
  groupId: SHARED_DEFAULTS.groupId,
  /** In ms. @default 60000 */
  stallTimeoutMs: SHARED_DEFAULTS.stallTimeoutMs,
  /** The changelog writer's producer settings. @default CHANGELOG_WRITER_DEFAULTS.producerConfig */
  producerConfig: CHANGELOG_PRODUCER_CONFIG,
  /** The changelog reader's consumer settings. @default CHANGELOG_READER_DEFAULTS.consumerConfig */
  consumerConfig: CHANGELOG_CONSUMER_CONFIG,
} as const;

/** The store's options besides the connection's. */
const STORE_OPTION_NAMES: readonly string[] = [
  ...BASE_STORE_OPTION_NAMES,
  "partitions",
  "producerConfig",
  "consumerConfig",
  "groupId",
  "stallTimeoutMs",
];

/**
 * A Store on a compacted Kafka topic.
 * - `compact`: not offered — Kafka's log cleaner compacts the topic on the
 *   broker; loads compact on the read path, so duplicates are never seen.
 * - `listNamespaces`: offered, but it reads the whole topic (every partition).
 * - durable: a resolved `save` was acknowledged by all in-sync replicas.
 *
 * A `save` of several changes is not atomic: when some records are
 * acknowledged and others are not, it rejects with a `PartialWriteError`
 * (`targets: "changes"`) whose `written`, `uncertain` and `failed` index the
 * saved changes; saving them again is safe.
 * @example
 * await using store = await KafkaStore.open({ brokers: "kafka-1:9092", topic: "workspace-changelog" });
 */
export class KafkaStore extends BaseStore {
  readonly capabilities: StoreCapabilities = { compact: false, listNamespaces: true, durable: true, watch: true };
  readonly topic: string;
  readonly #producer: ChangelogProducer;
  readonly #reader: ChangelogReader;
  /** What a feed's own consumer is opened with. */
  readonly #consumerSettings: FeedConsumerSettings;
  #partitions: number | undefined;

  private constructor(
    options: KafkaStoreOptions,
    topic: string,
    partitions: number | undefined,
    producer: ChangelogProducer,
    reader: ChangelogReader,
    consumerSettings: FeedConsumerSettings,
  ) {
    super("Kafka store", options, "KafkaStore");
    this.topic = topic;
    this.#partitions = partitions;
    this.#producer = producer;
    this.#reader = reader;
    this.#consumerSettings = consumerSettings;
  }

  /**
   * A store on the changelog topic. Checks the options and loads the Kafka
   * client; it connects on the first call.
   * @throws ConfigurationError for an invalid option; PeerMissingError
   *   when `@confluentinc/kafka-javascript` cannot be loaded
   */
  static async open(options: KafkaStoreOptions = {}): Promise<KafkaStore> {
    const { check, brokers, topic } = checkKafkaOptions(
      "KafkaStore",
      options,
      KAFKA_STORE_DEFAULTS,
      STORE_OPTION_NAMES,
    );
    const partitions = checkPartitions(check, options);
    const producerConfig = checkProducerConfig(check, "producerConfig", options.producerConfig);
    const consumerConfig = checkKafkaConfig(check, "consumerConfig", options.consumerConfig, CHANGELOG_CONSUMER_CONFIG);
    const groupId = resolveGroupId(check, options);
    const stallTimeoutMs = check.integer("stallTimeoutMs", { min: 1 });
    const { Producer, KafkaConsumer } = await loadKafkaClient();
    checkAccepted(
      check,
      "consumerConfig",
      options.consumerConfig,
      () => new KafkaConsumer(consumerConf(consumerConfig, brokers, groupId), {}),
    );
    checkAccepted(
      check,
      "producerConfig",
      options.producerConfig,
      () => new Producer(producerConf(producerConfig, brokers)),
    );
    const reader = await ChangelogReader.open({
      brokers,
      topic,
      groupId,
      consumerConfig,
      stallTimeoutMs,
      ...(partitions === undefined ? {} : { partitions }),
    });
    try {
      const producer = new ChangelogProducer(brokers, topic, producerConfig, partitions);
      const store = new KafkaStore(options, topic, partitions, producer, reader, {
        brokers,
        groupId,
        consumerConfig,
        stallTimeoutMs,
      });
      // A value the producer cannot send would be refused only while a save is written, after its other records.
      const given = options.maxValueBytes !== undefined;
      store.lowerMaxValueBytes(checkValueRoom(check, producerConfig, store.maxValueBytes, given));
      return store;
    } catch (error) {
      await reader.close();
      throw error;
    }
  }

  /**
   * Writes one record per change to its namespace's partition and resolves
   * once the broker acknowledged them all.
   * @throws PartialWriteError (`targets: "changes"`) when a save of several
   *   changes reached some records but not all; KafkaDeliveryError when the
   *   only record of a save was not acknowledged
   */
  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    const prepared = this.prepare(changes, options);
    if (prepared.length === 0) return;
    const timestamps = prepared.map((p, i) => recordTimestamp(p.timestamp, `changes[${i}].timestamp`));
    const count = await this.#producer.connect();
    this.#partitions ??= count;
    this.checkOpen(undefined, options);
    const partitions = this.#partitions;
    const records: OutRecord[] = prepared.map((p, i) => ({
      partition: partitionForNamespace(p.namespace, partitions),
      key: changeLogKey(p.namespace, p.entityType, p.entityId),
      value: p.json ?? null,
      timestamp: timestamps[i]!,
    }));
    const outcomes = await this.#producer.sendAll(records);
    for (const namespace of new Set(prepared.map((p) => p.namespace))) this.feedNotifier.notify(namespace);
    throwIfNotAllWritten(outcomes);
  }

  /**
   * A live feed of `namespace`: its current state, the caught-up barrier
   * (also for an empty namespace), then every later change, including
   * those of other producers. A position is an offset of the namespace's
   * partition (the one after a change's record); the feed asks for the
   * partition's end offset every `pollIntervalMs`. Each feed has its own
   * consumer. See docs/kafka.md, "Change feeds", for when a position is
   * behind (`FeedBehindError`).
   */
  watch(namespace: string, options?: WatchOptions): ChangeFeed {
    return this.openFeed(namespace, options, (pollIntervalMs, batchSize) => {
      const { brokers, groupId, consumerConfig, stallTimeoutMs } = this.#consumerSettings;
      return new KafkaFeedSource({
        namespace,
        batchSize,
        consumer: new ChangelogConsumer(brokers, this.topic, groupId, consumerConfig, stallTimeoutMs),
        partition: async () => partitionForNamespace(namespace, await this.#partitionCount()),
        decode: (key, message) => this.loaded(this.#decode(namespace, key, message)),
        notifier: this.feedNotifier,
        pollIntervalMs,
      });
    });
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.checkOpen(namespace, options);
    const n = await this.#partitionCount();
    const partition = partitionForNamespace(namespace, n);
    const prefix = `${namespace}/`;
    const compacted = await this.#reader.readCompacted([partition], (key) => key.startsWith(prefix), {
      signal: options?.signal,
    });
    const liveOnly = options?.liveOnly === true;
    const out: Change[] = [];
    for (const [key, message] of compacted.get(partition)!) {
      if (liveOnly && message.value === null) continue;
      out.push(this.loaded(this.#decode(namespace, key, message)));
    }
    return out;
  }

  async #partitionCount(): Promise<number> {
    // Asked of the reader even when `partitions` was given: it checks a given count against the topic's once.
    const count = await this.#reader.partitions();
    this.#partitions ??= count;
    return this.#partitions;
  }

  /** Every namespace with at least one record in the topic: reads every partition. */
  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.checkOpen(undefined, options);
    const n = await this.#partitionCount();
    throwIfAborted(options?.signal);
    const compacted = await this.#reader.readCompacted(
      Array.from({ length: n }, (_, i) => i),
      undefined,
      { signal: options?.signal },
    );
    const names = new Set<string>();
    for (const latest of compacted.values()) {
      for (const key of latest.keys()) names.add(parseChangeLogKey(key).namespace);
    }
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

  /** Flushes pending writes (at most 10 s) and disconnects. */
  protected async closeResources(): Promise<void> {
    await Promise.all([this.#producer.close(), this.#reader.close()]);
  }
}

/** The settings of a feed's consumer. */
interface FeedConsumerSettings {
  readonly brokers: string;
  readonly groupId: string;
  readonly consumerConfig: KafkaConfig;
  readonly stallTimeoutMs: number;
}

/**
 * Rejects a save whose records were not all acknowledged: the only
 * record's own error, or a {@link PartialWriteError} over the changes.
 */
function throwIfNotAllWritten(outcomes: readonly RecordOutcome[]): void {
  const written: number[] = [];
  const uncertain: number[] = [];
  const failed: WriteFailure[] = [];
  let cause: unknown;
  outcomes.forEach((outcome, index) => {
    if (outcome.error === undefined) {
      written.push(index);
      return;
    }
    cause ??= outcome.error;
    if (isKafkaDeliveryError(outcome.error) && outcome.error.mayBeWritten) uncertain.push(index);
    else failed.push({ index, error: outcome.error });
  });
  if (written.length === outcomes.length) return;
  // Nothing written and nothing that may be: the save failed as a whole, with its first record's error.
  if (outcomes.length === 1 || (written.length === 0 && uncertain.length === 0)) throw cause;
  throw new PartialWriteError(
    { operation: "Kafka store save", targets: "changes", written, uncertain, failed, cause },
    failed.length === 0 ? ` (${messageOf(cause)})` : "",
  );
}
