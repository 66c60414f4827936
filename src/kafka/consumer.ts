/**
 * Reads partitions of the changelog from their start (or given offsets) up
 * to the end offset captured when the read began, then stops: no idle
 * time-outs. Uses explicit partition assignment, so no consumer group is
 * ever joined; offsets are committed only by an explicit {@link ChangelogConsumer.commit}
 * (a "simple" commit for the group id, without membership).
 */
import { ClosedError, isAbortError, isClosedError, messageOf, throwIfAborted } from "../index.js";
import { disconnectQuietly, loadKafkaClient, type RdKafka } from "./client.js";
import type { KafkaConfig } from "./config.js";
import { KafkaCommitError, KafkaReadError, KafkaTopicError } from "./errors.js";

/** Progress of a load. */
export interface LoadProgress {
  /** Records read so far. */
  readonly read: number;
  /** Offsets to read in all: the sum of (end − start) per partition, captured when the load began; an upper bound (compaction leaves gaps). */
  readonly total: number;
  /** Partitions read to their end. */
  readonly partitionsDone: number;
  /** Partitions to read. */
  readonly partitions: number;
}

/** Options of one read. */
export interface ScanOptions {
  /** Aborts the read. */
  signal?: AbortSignal | undefined;
  /** Called after every batch of records, and once at the end. */
  onProgress?: ((progress: LoadProgress) => void) | undefined;
}

/** Offsets by partition number. */
export type PartitionOffsets = ReadonlyMap<number, number>;

/** The offsets one read covered, per partition read. */
export interface ReadRange {
  /** Where the read began: the given offset, else the partition's first offset. */
  readonly starts: Map<number, number>;
  /** The end offset captured when the read began, or where the sink ended the read (exclusive: the next offset to read). */
  readonly ends: Map<number, number>;
  /** The partitions whose sink ended the read before their end offset: they hold more. */
  readonly limited: Set<number>;
  /** The end offset of each partition captured when the read began. */
  readonly highs: Map<number, number>;
}

/**
 * Called with every record in offset order per partition; `key` is the
 * UTF-8 key. Returning `false` ends the read of the record's partition
 * after it (the range's end is then the next offset, and the partition
 * `limited`).
 */
export type RecordSink = (key: string, message: RdKafka.Message) => unknown;

/** The changelog's consumer: reads ranges of partitions, commits and fetches a group's offsets, one call at a time. */
export class ChangelogConsumer {
  #consumer: RdKafka.KafkaConsumer | undefined;
  #connecting: Promise<RdKafka.KafkaConsumer> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The calls waiting in {@link #untilClosed}: each is told when {@link close} is called, and leaves when done. */
  readonly #onClose = new Set<() => void>();

  constructor(
    readonly brokers: string,
    readonly topic: string,
    readonly groupId: string,
    /** librdkafka settings (the defaults already merged in). */
    readonly config: KafkaConfig,
    /** Longest wait without any progress (no record, no end of partition) before a read fails. */
    readonly stallTimeoutMs: number,
    readonly batchSize = 10_000,
  ) {}

  #client(): Promise<RdKafka.KafkaConsumer> {
    if (this.#closed) return Promise.reject(new ClosedError("Kafka changelog reader"));
    if (this.#consumer) return Promise.resolve(this.#consumer);
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    // A connect waits up to 15 s for a broker that is down: close() does not (the connect, once done, disconnects).
    return this.#untilClosed(this.#connecting);
  }

  async #open(): Promise<RdKafka.KafkaConsumer> {
    const { KafkaConsumer } = await loadKafkaClient();
    const consumer = new KafkaConsumer(consumerConf(this.config, this.brokers, this.groupId), {});
    consumer.on("event.error", () => undefined); // transient broker errors: the read retries until stallTimeoutMs
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ topic: this.topic, timeout: 15_000 } as RdKafka.MetadataOptions, (err) =>
        err ? reject(err) : resolve(),
      ),
    ).catch((error: unknown) => {
      disconnectQuietly(consumer);
      throw new KafkaReadError(this.topic, `cannot connect to ${this.brokers}: ${messageOf(error)}`, { cause: error });
    });
    consumer.setDefaultConsumeTimeout(100);
    (
      consumer as unknown as { setDefaultIsTimeoutOnlyForFirstMessage(v: boolean): void }
    ).setDefaultIsTimeoutOnlyForFirstMessage(true);
    if (this.#closed) {
      consumer.disconnect(() => undefined);
      throw new ClosedError("Kafka changelog reader");
    }
    this.#consumer = consumer;
    return consumer;
  }

  /** The topic's partition count, from the broker's metadata. */
  async partitionCount(): Promise<number> {
    const count = await this.topicPartitions();
    if (count === undefined) {
      throw new KafkaTopicError(this.topic, "does not exist (create it with ensureChangelogTopic)");
    }
    return count;
  }

  /** The topic's partition count from the broker's metadata; undefined when the topic does not exist. */
  async topicPartitions(): Promise<number | undefined> {
    const consumer = await this.#client();
    const metadata = await new Promise<RdKafka.Metadata>((resolve, reject) =>
      consumer.getMetadata({ topic: this.topic, timeout: 10_000 }, (err, data) => (err ? reject(err) : resolve(data))),
    ).catch((error: unknown) => {
      throw new KafkaReadError(this.topic, `metadata: ${messageOf(error)}`, { cause: error });
    });
    const meta = metadata.topics.find((t) => t.name === this.topic);
    return meta && meta.partitions.length > 0 ? meta.partitions.length : undefined;
  }

  /** Runs `task` after every earlier read, commit or offset fetch of this consumer. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Reads `partitions` from `from` (per partition; else from its first
   * offset) to the end offsets captured now, or until the sink ends a
   * partition ({@link RecordSink}); one read at a time per consumer.
   */
  read(
    partitions: readonly number[],
    sink: RecordSink,
    options: ScanOptions = {},
    from?: PartitionOffsets,
  ): Promise<ReadRange> {
    return this.#serial(() => this.#read(partitions, sink, options, from));
  }

  async #read(
    partitions: readonly number[],
    sink: RecordSink,
    options: ScanOptions,
    from: PartitionOffsets | undefined,
  ): Promise<ReadRange> {
    const { signal, onProgress } = options;
    throwIfAborted(signal);
    const consumer = await this.#client();
    const range: ReadRange = { starts: new Map(), ends: new Map(), limited: new Set(), highs: new Map() };
    const ends = new Map<number, number>(); // partitions still to read
    const assignment: RdKafka.TopicPartitionOffset[] = [];
    let total = 0;
    // Raced against close(): with the broker down each query waits up to its 10 s time-out.
    const marks = await this.#untilClosed(Promise.all(partitions.map((p) => this.#watermarks(consumer, p))));
    partitions.forEach((partition, i) => {
      const { lowOffset, highOffset } = marks[i]!;
      const given = from?.get(partition);
      if (given !== undefined && given > highOffset) {
        throw new KafkaReadError(
          this.topic,
          `start offset ${given} of partition ${partition} is past its end offset ${highOffset} (was the topic re-created?)`,
        );
      }
      const start = Math.max(given ?? lowOffset, lowOffset);
      range.starts.set(partition, start);
      range.ends.set(partition, highOffset);
      range.highs.set(partition, highOffset);
      if (highOffset > start) {
        ends.set(partition, highOffset);
        assignment.push({ topic: this.topic, partition, offset: start });
        total += highOffset - start;
      }
    });
    let read = 0;
    const progress = () =>
      onProgress?.({ read, total, partitionsDone: partitions.length - ends.size, partitions: partitions.length });
    if (ends.size === 0) {
      progress();
      return range;
    }
    // End-of-partition events of a batch are emitted before the batch's messages are handed over:
    // note them, and retire the partition after the batch's messages are processed.
    const eofs: RdKafka.EofEvent[] = [];
    const onEof = (e: RdKafka.EofEvent) => {
      if (e.topic === this.topic) eofs.push(e);
    };
    consumer.on("partition.eof", onEof);
    consumer.assign(assignment);
    try {
      let lastProgress = Date.now();
      while (ends.size > 0) {
        throwIfAborted(signal);
        // close() does not wait for a read to reach its end (or its stall time-out, with the broker down).
        if (this.#closed) throw new ClosedError("Kafka changelog reader");
        let messages: RdKafka.Message[];
        const before = ends.size;
        try {
          messages = await new Promise<RdKafka.Message[]>((resolve, reject) =>
            consumer.consume(this.batchSize, (err, m) => (err ? reject(err) : resolve(m))),
          );
        } catch (error) {
          if ((error as { isFatal?: boolean }).isFatal) throw error;
          messages = []; // transient (broker down, transport): retry until stalled
          if (Date.now() - lastProgress > this.stallTimeoutMs) {
            throw new KafkaReadError(this.topic, `no progress for ${this.stallTimeoutMs} ms: ${messageOf(error)}`, {
              cause: error,
            });
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        for (const m of messages) {
          const end = ends.get(m.partition);
          if (end === undefined) continue; // partition done
          if (m.offset >= end) {
            // Past the end (written after the read began): every offset before it came.
            ends.delete(m.partition);
            continue;
          }
          read++;
          if (
            m.key !== null &&
            m.key !== undefined &&
            sink(typeof m.key === "string" ? m.key : m.key.toString("utf8"), m) === false &&
            m.offset < end - 1
          ) {
            // The sink has what it wanted: this partition's read ends after this record.
            range.ends.set(m.partition, m.offset + 1);
            range.limited.add(m.partition);
            ends.delete(m.partition);
            continue;
          }
          if (m.offset >= end - 1) ends.delete(m.partition);
        }
        for (const e of eofs.splice(0)) {
          const end = ends.get(e.partition);
          if (end !== undefined && e.offset >= end) ends.delete(e.partition);
        }
        if (messages.length > 0 || ends.size < before) {
          lastProgress = Date.now();
          progress();
        } else if (Date.now() - lastProgress > this.stallTimeoutMs) {
          throw new KafkaReadError(this.topic, `no records for ${this.stallTimeoutMs} ms before the end offsets`);
        }
      }
      progress();
      return range;
    } catch (error) {
      if (isAbortError(error) || isClosedError(error) || error instanceof KafkaReadError) throw error;
      throw new KafkaReadError(this.topic, messageOf(error), { cause: error });
    } finally {
      consumer.removeListener("partition.eof", onEof);
      try {
        consumer.unassign();
      } catch {
        // disconnected meanwhile
      }
    }
  }

  /**
   * Commits `offsets` (the next offset to read, per partition) for the
   * group, without joining it. Resolves once the coordinator accepted them.
   */
  commit(offsets: PartitionOffsets, signal?: AbortSignal): Promise<void> {
    return this.#serial(async () => {
      throwIfAborted(signal);
      if (offsets.size === 0) return;
      const consumer = await this.#client();
      const list = [...offsets].map(([partition, offset]) => ({ topic: this.topic, partition, offset }));
      let outcome: { error?: unknown } | undefined;
      try {
        consumer.once("offset.commit", (err, result) => {
          const failed = (result as unknown[] | undefined)?.find((r) => r instanceof Error);
          outcome = err || failed ? { error: err ?? failed } : {};
        });
        consumer.commit(list);
        // librdkafka hands the commit result over while the consumer is polled. The consumer has no
        // assignment now; polls run one at a time and the last one has returned when this loop ends,
        // so none is left that could take a record of the next read.
        const started = Date.now();
        while (outcome === undefined) {
          if (Date.now() - started > this.stallTimeoutMs) {
            throw new Error(`no answer from the group coordinator within ${this.stallTimeoutMs} ms`);
          }
          await new Promise<void>((resolve) => consumer.consume(1, () => resolve()));
        }
        if (outcome.error !== undefined) throw outcome.error;
      } catch (error) {
        throw new KafkaCommitError(this.topic, this.groupId, messageOf(error), { cause: error });
      } finally {
        consumer.removeAllListeners("offset.commit");
      }
    });
  }

  /** The group's committed offsets of `partitions`; partitions without a committed offset are left out. */
  committed(partitions: readonly number[], signal?: AbortSignal): Promise<Map<number, number>> {
    return this.#serial(async () => {
      throwIfAborted(signal);
      const consumer = await this.#client();
      const list = partitions.map((partition) => ({ topic: this.topic, partition }));
      const result = await new Promise<RdKafka.TopicPartitionOffsetAndMetadata[]>((resolve, reject) =>
        consumer.committed(list, 10_000, (err, offsets) => (err ? reject(err) : resolve(offsets))),
      ).catch((error: unknown) => {
        throw new KafkaReadError(
          this.topic,
          `committed offsets of group ${JSON.stringify(this.groupId)}: ${messageOf(error)}`,
          {
            cause: error,
          },
        );
      });
      const out = new Map<number, number>();
      for (const r of result) {
        if (r.topic === this.topic && typeof r.offset === "number" && r.offset >= 0) out.set(r.partition, r.offset);
      }
      return out;
    });
  }

  /** The first offset `partition` still holds (`lowOffset`) and the next offset to be written (`highOffset`). */
  async watermarks(partition: number): Promise<RdKafka.WatermarkOffsets> {
    return this.#watermarks(await this.#client(), partition);
  }

  #watermarks(consumer: RdKafka.KafkaConsumer, partition: number): Promise<RdKafka.WatermarkOffsets> {
    return new Promise<RdKafka.WatermarkOffsets>((resolve, reject) =>
      consumer.queryWatermarkOffsets(this.topic, partition, 10_000, (err, offsets) =>
        err ? reject(err) : resolve(offsets),
      ),
    ).catch((error: unknown) => {
      throw new KafkaReadError(this.topic, `end offsets of partition ${partition}: ${messageOf(error)}`, {
        cause: error,
      });
    });
  }

  /**
   * `work`, or a `ClosedError` as soon as {@link close} is called (`work`
   * is left to settle by itself).
   */
  #untilClosed<T>(work: Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError("Kafka changelog reader"));
    // A listener of its own, removed when the work settles: nothing stays behind per call (reads are many).
    return new Promise<T>((resolve, reject) => {
      const onClose = () => reject(new ClosedError("Kafka changelog reader"));
      this.#onClose.add(onClose);
      work.then(resolve, reject).finally(() => this.#onClose.delete(onClose));
    });
  }

  /**
   * Disconnects, once a read in progress stopped: a read stops at its next
   * batch (about 100 ms) with a `ClosedError`, and does not wait for its
   * end offsets any longer. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const onClose of [...this.#onClose]) onClose();
    await this.#queue;
    // A connect still in progress disconnects its consumer once done (#open sees #closed): not waited for.
    void this.#connecting?.catch(() => undefined);
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (consumer) await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/** What a consumer of the changelog is made with: `config` (checked) under statelog's own settings. */
export function consumerConf(config: KafkaConfig, brokers: string, groupId: string): RdKafka.ConsumerGlobalConfig {
  return {
    ...config,
    "bootstrap.servers": brokers,
    // librdkafka's consumer needs a group id; with explicit assignment it never joins the group.
    "group.id": groupId,
    // Offsets are committed only by commit(), never on their own.
    "enable.auto.commit": false,
    // A read learns it reached a partition's end from these events when the last offsets hold no record it is
    // handed (a transaction's commit marker, records compacted away): without them it would wait for its stall time-out.
    "enable.partition.eof": true,
    offset_commit_cb: true,
  } as RdKafka.ConsumerGlobalConfig;
}
