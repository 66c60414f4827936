/**
 * Reads partitions of the changelog from their start up to the end offset
 * captured when the read began, then stops: no idle time-outs. Uses
 * explicit partition assignment, so no consumer group is joined and no
 * offsets are committed.
 */
import { ClosedError, messageOf, throwIfAborted } from "../core/errors.js";
import { loadKafkaClient, type RdKafka } from "./client.js";
import { DEFAULT_CONSUMER_CONFIG, type KafkaConfig } from "./config.js";
import { KafkaReadError, KafkaTopicError } from "./errors.js";

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

/** Called with every record in offset order per partition; `key` is the UTF-8 key. */
export type RecordSink = (key: string, message: RdKafka.Message) => void;

export class ChangelogConsumer {
  #consumer: RdKafka.KafkaConsumer | undefined;
  #connecting: Promise<RdKafka.KafkaConsumer> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(
    readonly brokers: string,
    readonly topic: string,
    readonly groupId: string,
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
    return this.#connecting;
  }

  async #open(): Promise<RdKafka.KafkaConsumer> {
    const { KafkaConsumer } = await loadKafkaClient();
    const conf = {
      ...DEFAULT_CONSUMER_CONFIG,
      ...this.config,
      "bootstrap.servers": this.brokers,
      // librdkafka's consumer needs a group id; with explicit assignment it never joins the group.
      "group.id": this.groupId,
    } as RdKafka.ConsumerGlobalConfig;
    const consumer = new KafkaConsumer(conf, {});
    consumer.on("event.error", () => undefined); // transient broker errors: the read retries until stallTimeoutMs
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ topic: this.topic, timeout: 15_000 } as RdKafka.MetadataOptions, (err) =>
        err ? reject(err) : resolve(),
      ),
    ).catch((error: unknown) => {
      consumer.disconnect(() => undefined);
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
    const consumer = await this.#client();
    const metadata = await new Promise<RdKafka.Metadata>((resolve, reject) =>
      consumer.getMetadata({ topic: this.topic, timeout: 10_000 }, (err, data) => (err ? reject(err) : resolve(data))),
    ).catch((error: unknown) => {
      throw new KafkaReadError(this.topic, `metadata: ${messageOf(error)}`, { cause: error });
    });
    const meta = metadata.topics.find((t) => t.name === this.topic);
    if (!meta || meta.partitions.length === 0) {
      throw new KafkaTopicError(
        this.topic,
        "does not exist (create it with ensureChangelogTopic or pass `partitions`)",
      );
    }
    return meta.partitions.length;
  }

  /** Reads `partitions` to the end offsets captured now; one read at a time per consumer. */
  read(partitions: readonly number[], sink: RecordSink, options: ScanOptions = {}): Promise<void> {
    const run = this.#queue.then(() => this.#read(partitions, sink, options));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #read(partitions: readonly number[], sink: RecordSink, options: ScanOptions): Promise<void> {
    const { signal, onProgress } = options;
    throwIfAborted(signal);
    const consumer = await this.#client();
    const ends = new Map<number, number>();
    const assignment: RdKafka.TopicPartitionOffset[] = [];
    let total = 0;
    const marks = await Promise.all(partitions.map((p) => this.#watermarks(consumer, p)));
    partitions.forEach((partition, i) => {
      const { lowOffset, highOffset } = marks[i]!;
      if (highOffset > lowOffset) {
        ends.set(partition, highOffset);
        assignment.push({ topic: this.topic, partition, offset: lowOffset });
        total += highOffset - lowOffset;
      }
    });
    let read = 0;
    const progress = () =>
      onProgress?.({ read, total, partitionsDone: partitions.length - ends.size, partitions: partitions.length });
    if (ends.size === 0) {
      progress();
      return;
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
          if (end === undefined || m.offset >= end) continue; // written after the read began, or partition done
          read++;
          if (m.key !== null && m.key !== undefined)
            sink(typeof m.key === "string" ? m.key : m.key.toString("utf8"), m);
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
    } catch (error) {
      if ((error as { code?: unknown }).code === "STATELOG_ABORTED" || error instanceof KafkaReadError) throw error;
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

  /** Disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await this.#connecting?.catch(() => undefined);
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (consumer) await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}
