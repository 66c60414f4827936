/**
 * `ChangelogReader`: restores the changelog. A load reads each partition
 * from its start to the end offset captured when the load began and then
 * ends. Compaction happens on the read path too: the latest record per key
 * (by offset) wins and tombstones remove keys, so duplicates the broker has
 * not compacted yet are invisible.
 */
import { ClosedError, OptionChecker } from "../index.js";
import { checkAccepted, loadKafkaClient, type RdKafka } from "./client.js";
import {
  CHANGELOG_CONSUMER_CONFIG,
  checkKafkaConfig,
  checkKafkaOptions,
  checkPartitionCount,
  checkPartitions,
  type KafkaConfig,
  type KafkaConnectionOptions,
  RENAMED_OPTIONS,
  resolveGroupId,
  SHARED_DEFAULTS,
} from "./config.js";
import { ChangelogConsumer, consumerConf, type PartitionOffsets, type ScanOptions } from "./consumer.js";
import { ChangelogEntry } from "./entry.js";
import { partitionForNamespace } from "./murmur2.js";

export type { LoadProgress, PartitionOffsets } from "./consumer.js";
export { ChangelogEntry } from "./entry.js";

/** Options of {@link ChangelogReader.open}. */
export interface ChangelogReaderOptions extends KafkaConnectionOptions {
  /**
   * The consumer group whose committed offsets this reader commits
   * ({@link ChangelogReaderOptions.commitOffsets}) and reads
   * ({@link ChangelogReader.committedOffsets}, `loadChanges({ from: "committed" })`).
   * The group is never joined: reads assign partitions explicitly. Without
   * `commitOffsets`, a plain load never uses it (librdkafka merely requires
   * a `group.id` to be set).
   * @default `$KAFKA_CHANGELOG_GROUP_ID`, else `"workspace-changelog-consumer"`
   */
  groupId?: string;
  /**
   * After every completed load (`loadAll` once its handler calls are done,
   * `loadAllIntoMap`, `loadForNamespace`, `loadChanges`), commit for
   * {@link ChangelogReaderOptions.groupId} the end offsets the load read up
   * to, for each partition it read. Commits without joining the group, so
   * the group must not be used by subscribing consumers at the same time.
   * @default false (nothing is ever committed)
   */
  commitOffsets?: boolean;
  /** The topic's partition count, a positive integer. @default read from the topic's metadata */
  partitions?: number;
  /**
   * librdkafka consumer settings, merged over
   * {@link CHANGELOG_READER_DEFAULTS}`.consumerConfig`.
   * @default CHANGELOG_READER_DEFAULTS.consumerConfig
   */
  consumerConfig?: KafkaConfig;
  /**
   * A load fails with a `KafkaReadError` after this long without progress
   * (brokers unreachable), in ms. Not an end-of-data time-out: a load ends
   * at the captured end offsets. A positive integer. @default 60000
   */
  stallTimeoutMs?: number;
}

/** Defaults of {@link ChangelogReaderOptions}. */
export const CHANGELOG_READER_DEFAULTS = {
  /** Used when `$KAFKA_BROKERS` is not set either. @default "localhost:9092" */
  brokers: SHARED_DEFAULTS.brokers,
  /** Used when `$KAFKA_CHANGELOG_TOPIC` is not set either. @default "workspace-changelog" */
  topic: SHARED_DEFAULTS.topic,
  /** Used when `$KAFKA_CHANGELOG_GROUP_ID` is not set either. @default "workspace-changelog-consumer" */
  groupId: SHARED_DEFAULTS.groupId,
  /** @default false */
  commitOffsets: false,
  /** In ms. @default 60000 */
  stallTimeoutMs: SHARED_DEFAULTS.stallTimeoutMs,
  /**
   * Read from the earliest offset, never commit on its own; restores
   * assign partitions explicitly, so no group is joined.
   * @default { "auto.offset.reset": "earliest", "enable.auto.commit": false, … }
   */
  consumerConfig: CHANGELOG_CONSUMER_CONFIG,
} as const;

/** The reader's options besides the connection's. */
const READER_OPTION_NAMES: readonly string[] = [
  "groupId",
  "commitOffsets",
  "partitions",
  "consumerConfig",
  "stallTimeoutMs",
];

const LOAD_CHANGES_OPTION_NAMES: readonly string[] = ["from", "namespace", "signal", "onProgress"];

/** Options of one load. */
export interface LoadCallOptions extends ScanOptions {}

/** Options of {@link ChangelogReader.loadChanges}. */
export interface LoadChangesOptions extends LoadCallOptions {
  /**
   * Where to start, per partition: `"committed"` = the group's committed
   * offsets (partitions without one from their start), `"beginning"` = every
   * partition from its start, or explicit offsets (e.g. a previous result's
   * `ends`; partitions left out start at their beginning).
   * @default "committed"
   */
  from?: "committed" | "beginning" | PartitionOffsets;
  /** Read only this namespace's partition and keys. @default every partition and key */
  namespace?: string;
}

/** The result of {@link ChangelogReader.loadChanges}. */
export interface ChangelogChanges {
  /**
   * The latest record of every key written in the range read, tombstones
   * included (`entry.isTombstone`), partition by partition in offset order
   * of the winners.
   */
  readonly entries: ChangelogEntry[];
  /** Per partition read: the offset the read started at. */
  readonly starts: ReadonlyMap<number, number>;
  /** Per partition read: the end offset captured when the read began (the next offset to read; pass as `from` to continue). */
  readonly ends: ReadonlyMap<number, number>;
  /** The ends were committed for the group (`commitOffsets`). */
  readonly committed: boolean;
}

/** Latest message per key, per partition, in the order the winners were written. @internal */
export type CompactedPartitions = Map<number, Map<string, RdKafka.Message>>;

/** What {@link ChangelogReader.open} checked. */
interface ReaderSettings {
  readonly brokers: string;
  readonly topic: string;
  readonly groupId: string;
  readonly commitOffsets: boolean;
  readonly partitions: number | undefined;
  readonly consumerConfig: KafkaConfig;
  readonly stallTimeoutMs: number;
}

/**
 * Restores the changelog.
 * @example
 * await using reader = await ChangelogReader.open({ topic: "workspace-changelog" });
 * const entries = await reader.loadForNamespace("ws-123");   // Map key → entry, live entities only
 */
export class ChangelogReader implements AsyncDisposable {
  readonly topic: string;
  readonly brokers: string;
  readonly groupId: string;
  /** Completed loads commit their end offsets for {@link groupId}. */
  readonly commitOffsets: boolean;
  readonly #consumer: ChangelogConsumer;
  #partitions: number | undefined;
  /** Whether a configured partition count was checked against the topic's. */
  #partitionsChecked = false;
  #closed = false;

  private constructor(settings: ReaderSettings) {
    this.topic = settings.topic;
    this.brokers = settings.brokers;
    this.groupId = settings.groupId;
    this.commitOffsets = settings.commitOffsets;
    this.#partitions = settings.partitions;
    this.#consumer = new ChangelogConsumer(
      settings.brokers,
      settings.topic,
      settings.groupId,
      settings.consumerConfig,
      settings.stallTimeoutMs,
    );
  }

  /**
   * A reader of the changelog topic. Checks the options and loads the
   * Kafka client; it connects on the first read.
   * @throws ConfigurationError for an invalid option; PeerMissingError
   *   when `@confluentinc/kafka-javascript` cannot be loaded
   */
  static async open(options: ChangelogReaderOptions = {}): Promise<ChangelogReader> {
    const { check, brokers, topic } = checkKafkaOptions(
      "ChangelogReader",
      options,
      CHANGELOG_READER_DEFAULTS,
      READER_OPTION_NAMES,
    );
    const settings: ReaderSettings = {
      brokers,
      topic,
      groupId: resolveGroupId(check, options),
      commitOffsets: check.boolean("commitOffsets"),
      partitions: checkPartitions(check, options),
      consumerConfig: checkKafkaConfig(check, "consumerConfig", options.consumerConfig, CHANGELOG_CONSUMER_CONFIG),
      stallTimeoutMs: check.integer("stallTimeoutMs", { min: 1 }),
    };
    const { KafkaConsumer } = await loadKafkaClient();
    checkAccepted(
      check,
      "consumerConfig",
      options.consumerConfig,
      () => new KafkaConsumer(consumerConf(settings.consumerConfig, brokers, settings.groupId), {}),
    );
    return new ChangelogReader(settings);
  }

  /**
   * The topic's partition count (configured, or from the broker's
   * metadata). A configured count is checked once against an existing
   * topic's: with another count, namespaces would be read from partitions
   * their records are not in.
   * @throws KafkaTopicError when the topic does not exist, or has another count than `partitions`
   */
  async partitions(): Promise<number> {
    this.#check();
    if (this.#partitionsChecked) return this.#partitions as number;
    // A missing topic is a KafkaTopicError also with `partitions` given (its partitions cannot be read).
    const count = await this.#consumer.partitionCount();
    if (this.#partitions === undefined) this.#partitions = count;
    else checkPartitionCount(this.topic, this.#partitions, count);
    this.#partitionsChecked = true;
    return this.#partitions;
  }

  /**
   * Reads `partitions` and compacts on the way: latest message per key
   * (tombstones included), per partition. `accept` filters keys.
   * @internal (for `KafkaStore`)
   */
  async readCompacted(
    partitions: readonly number[],
    accept: ((key: string) => boolean) | undefined,
    options?: LoadCallOptions,
  ): Promise<CompactedPartitions> {
    return (await this.#readRange(partitions, accept, options)).compacted;
  }

  async #readRange(
    partitions: readonly number[],
    accept: ((key: string) => boolean) | undefined,
    options: LoadCallOptions | undefined,
    from?: PartitionOffsets,
  ): Promise<{ compacted: CompactedPartitions; starts: Map<number, number>; ends: Map<number, number> }> {
    this.#check();
    const compacted: CompactedPartitions = new Map(partitions.map((p) => [p, new Map()]));
    const range = await this.#consumer.read(
      partitions,
      (key, message) => {
        if (accept && !accept(key)) return;
        compacted.get(message.partition)!.set(key, message);
      },
      options,
      from,
    );
    // Winners in the order they were written (offset order within a partition): one sort here is
    // cheaper than moving every re-written key to the end of its map as it is read.
    for (const [partition, latest] of compacted) {
      compacted.set(partition, new Map([...latest].sort((a, b) => a[1].offset - b[1].offset)));
    }
    return { compacted, ...range };
  }

  /** With `commitOffsets`, commits the end offsets a completed load read up to. */
  async #commitIfAsked(ends: PartitionOffsets, options: LoadCallOptions | undefined): Promise<boolean> {
    if (!this.commitOffsets) return false;
    await this.commit(ends, options);
    return true;
  }

  /**
   * Commits `offsets` (per partition: the next offset to read) for
   * {@link groupId}, without joining the group; what `commitOffsets` does
   * after each load. Use it to commit a `loadChanges` result only once you
   * applied it.
   * @throws KafkaCommitError when the coordinator refuses or does not answer
   */
  async commit(offsets: PartitionOffsets, options?: { signal?: AbortSignal | undefined }): Promise<void> {
    this.#check();
    await this.#consumer.commit(offsets, options?.signal);
  }

  /**
   * The offsets {@link groupId} has committed, per partition (the next
   * offset to read); partitions without a committed offset are left out, so
   * an empty map means nothing was ever committed. Joins no group.
   */
  async committedOffsets(options?: { signal?: AbortSignal | undefined }): Promise<Map<number, number>> {
    const n = await this.partitions();
    return this.#consumer.committed(range(n), options?.signal);
  }

  /**
   * Reads what was written after `from` (default: the group's committed
   * offsets) up to the end offsets captured when the read began: the latest
   * record per key in that range, tombstones included. With `commitOffsets`
   * the ends are committed once the read completed — before you apply the
   * entries; to commit only after applying, leave `commitOffsets` off and
   * call {@link commit} with `ends`.
   */
  async loadChanges(options: LoadChangesOptions = {}): Promise<ChangelogChanges> {
    const check = new OptionChecker("ChangelogReader.loadChanges", options).known(
      LOAD_CHANGES_OPTION_NAMES,
      RENAMED_OPTIONS,
    );
    check.custom("from", (v) =>
      v === undefined || v === "committed" || v === "beginning" || (v instanceof Map && isOffsetMap(v))
        ? undefined
        : '"committed", "beginning" or a Map of partition → offset (integers >= 0)',
    );
    const namespace = options.namespace === undefined ? undefined : check.string("namespace");
    const n = await this.partitions();
    const partitions = namespace === undefined ? range(n) : [partitionForNamespace(namespace, n)];
    const prefix = `${namespace}/`;
    const accept = namespace === undefined ? undefined : (key: string) => key.startsWith(prefix);
    const from = options.from ?? "committed";
    const starts =
      from === "beginning"
        ? undefined
        : from === "committed"
          ? await this.#consumer.committed(partitions, options.signal)
          : from;
    const read = await this.#readRange(partitions, accept, options, starts);
    const entries: ChangelogEntry[] = [];
    for (const latest of read.compacted.values()) {
      for (const [key, message] of latest) entries.push(new ChangelogEntry(key, message));
    }
    const committed = await this.#commitIfAsked(read.ends, options);
    return { entries, starts: read.starts, ends: read.ends, committed };
  }

  /**
   * Calls `handler` once per key with its latest record, tombstones
   * included (`entry.isTombstone`), partition by partition in offset order
   * of the winners. Resolves with the number of entries handled.
   */
  async loadAll(handler: (entry: ChangelogEntry) => void | Promise<void>, options?: LoadCallOptions): Promise<number> {
    const n = await this.partitions();
    const { compacted, ends } = await this.#readRange(range(n), undefined, options);
    let count = 0;
    for (const latest of compacted.values()) {
      for (const [key, message] of latest) {
        await handler(new ChangelogEntry(key, message));
        count++;
      }
    }
    await this.#commitIfAsked(ends, options);
    return count;
  }

  /** Every live entry of the topic, by key (tombstoned keys are left out). */
  async loadAllIntoMap(options?: LoadCallOptions): Promise<Map<string, ChangelogEntry>> {
    const n = await this.partitions();
    const { compacted, ends } = await this.#readRange(range(n), undefined, options);
    await this.#commitIfAsked(ends, options);
    return live(compacted);
  }

  /**
   * The live entries of one namespace, by key; reads only the namespace's
   * partition (and with `commitOffsets` commits only that partition's end).
   */
  async loadForNamespace(namespace: string, options?: LoadCallOptions): Promise<Map<string, ChangelogEntry>> {
    const n = await this.partitions();
    const prefix = `${namespace}/`;
    const partition = partitionForNamespace(namespace, n);
    const { compacted, ends } = await this.#readRange([partition], (key) => key.startsWith(prefix), options);
    await this.#commitIfAsked(ends, options);
    return live(compacted);
  }

  /**
   * Alias of {@link loadForNamespace} (the changelog's original spelling,
   * where a namespace was called a workspace).
   */
  loadForWorkspace(namespace: string, options?: LoadCallOptions): Promise<Map<string, ChangelogEntry>> {
    return this.loadForNamespace(namespace, options);
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

/** True for a Map whose keys (partitions) and values (offsets) are integers >= 0. */
function isOffsetMap(map: ReadonlyMap<unknown, unknown>): boolean {
  for (const [partition, offset] of map) {
    if (!Number.isSafeInteger(partition) || (partition as number) < 0) return false;
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) return false;
  }
  return true;
}
