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
import { ChangelogConsumer, type PartitionOffsets, type ScanOptions } from "./consumer.js";
import { KafkaReadError } from "./errors.js";
import { partitionForWorkspace } from "./murmur2.js";

export type { LoadProgress, PartitionOffsets } from "./consumer.js";

/** Options of {@link ChangelogReader}. */
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
   * `loadAllIntoMap`, `loadForWorkspace`, `loadChanges`), commit for
   * {@link ChangelogReaderOptions.groupId} the end offsets the load read up
   * to, for each partition it read. Commits without joining the group, so
   * the group must not be used by subscribing consumers at the same time.
   * @default false (nothing is ever committed)
   */
  commitOffsets?: boolean;
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
  /** Read only this workspace's partition and keys. @default every partition and key */
  workspaceId?: string;
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

/** One record of the changelog: the latest of its key. */
export class ChangelogEntry {
  /** The full key `{workspaceId}/{entityType}/{entityId}`. */
  readonly key: string;
  readonly workspaceId: string;
  readonly entityType: string;
  readonly entityId: string;
  /** The raw value; `null` for a tombstone. */
  readonly value: Buffer | null;
  /** The topic the record was read from. */
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The record timestamp (when the change happened). */
  readonly timestamp: Date;

  constructor(
    key: string,
    message: Pick<RdKafka.Message, "value" | "partition" | "offset" | "timestamp"> & { topic?: string },
  ) {
    const parts = parseChangeLogKey(key);
    this.key = key;
    this.workspaceId = parts.workspaceId;
    this.entityType = parts.entityType;
    this.entityId = parts.entityId;
    this.value = message.value;
    this.topic = message.topic ?? "";
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
      throw new KafkaReadError(this.topic, `${JSON.stringify(this.key)} is a tombstone: it has no value`);
    try {
      return JSON.parse(this.value.toString("utf8")) as T;
    } catch (error) {
      throw new KafkaReadError(
        this.topic,
        `value of ${JSON.stringify(this.key)} in partition ${this.partition} at offset ${this.offset} is not JSON: ${messageOf(error)}`,
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
  /** Completed loads commit their end offsets for {@link groupId}. */
  readonly commitOffsets: boolean;
  readonly #consumer: ChangelogConsumer;
  #partitions: number | undefined;
  #closed = false;

  constructor(options: ChangelogReaderOptions = {}) {
    const { brokers, topic } = resolveConnection(options);
    this.topic = topic;
    this.brokers = brokers;
    this.groupId = resolveGroupId(options.groupId, options.env);
    this.commitOffsets = options.commitOffsets ?? false;
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
    const n = await this.partitions();
    const { workspaceId } = options;
    const partitions = workspaceId === undefined ? range(n) : [partitionForWorkspace(workspaceId, n)];
    const prefix = `${workspaceId}/`;
    const accept = workspaceId === undefined ? undefined : (key: string) => key.startsWith(prefix);
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
   * The live entries of one workspace, by key; reads only the workspace's
   * partition (and with `commitOffsets` commits only that partition's end).
   */
  async loadForWorkspace(workspaceId: string, options?: LoadCallOptions): Promise<Map<string, ChangelogEntry>> {
    const n = await this.partitions();
    const prefix = `${workspaceId}/`;
    const partition = partitionForWorkspace(workspaceId, n);
    const { compacted, ends } = await this.#readRange([partition], (key) => key.startsWith(prefix), options);
    await this.#commitIfAsked(ends, options);
    return live(compacted);
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
