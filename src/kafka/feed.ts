/**
 * The change feed of a `KafkaStore` namespace (docs/kafka.md, "Change
 * feeds"). A namespace lives in one partition of the changelog topic; a
 * position is an offset of that partition: the offset just after a
 * change's record (Kafka's "next offset to read"), and the barrier's is
 * the partition's end offset when the read began. The epoch is always
 * `""`.
 *
 * - The initial part reads the partition from its first offset to its end
 *   offset captured when the read began, keeping the namespace's latest
 *   record per key (as `load` does, tombstones included).
 * - Each later read delivers every record of the namespace from the
 *   cursor to the end offset captured when that read began: reads never
 *   overlap, so no change is missed or repeated.
 * - The feed learns of new records by asking the partition's end offset
 *   every `pollIntervalMs` (at once after a save of this store).
 * - A position is behind (`FeedBehindError`) when the partition no longer
 *   starts at or before it (records removed by retention or
 *   `DeleteRecords`: Kafka's "offset out of range"), or when it is past
 *   the partition's end (the topic was created again).
 */
import {
  type Change,
  type FeedBatch,
  FeedBehindError,
  type FeedChange,
  type FeedCursor,
  FeedEventType,
  type FeedNotifier,
  type FeedSource,
  type FeedStart,
} from "../index.js";
import type { RdKafka } from "./client.js";
import type { ChangelogConsumer } from "./consumer.js";

/** What the feed needs from its store. */
export interface KafkaFeedContext {
  readonly namespace: string;
  /** The feed's own consumer (closed with the feed). */
  readonly consumer: ChangelogConsumer;
  /** The namespace's partition. */
  partition(): Promise<number>;
  /** Decodes a record of the namespace (and checks it as `load` does). */
  decode(key: string, message: RdKafka.Message): Change;
  readonly notifier: FeedNotifier;
  readonly pollIntervalMs: number;
  /** The most records of the namespace a read after the current state takes (`WatchOptions.batchSize`). */
  readonly batchSize: number;
}

/** The feed source of one namespace of a Kafka store. */
export class KafkaFeedSource implements FeedSource {
  readonly #prefix: string;

  constructor(private readonly ctx: KafkaFeedContext) {
    this.#prefix = `${ctx.namespace}/`;
  }

  async read(cursor: FeedStart | FeedCursor | undefined, signal: AbortSignal): Promise<FeedBatch> {
    const { ctx } = this;
    const partition = await ctx.partition();
    if (cursor !== undefined) await this.#check(partition, cursor);
    const records: [string, RdKafka.Message][] = [];
    const latest = new Map<string, RdKafka.Message>();
    const range = await ctx.consumer.read(
      [partition],
      (key, message) => {
        if (!key.startsWith(this.#prefix)) return;
        if (cursor === undefined) latest.set(key, message);
        // Past the current state: `batchSize` records of the namespace, then the read ends.
        else return records.push([key, message]) < ctx.batchSize;
      },
      { signal },
      cursor === undefined ? undefined : new Map([[partition, cursor.position]]),
    );
    if (cursor !== undefined && (range.starts.get(partition) ?? 0) > cursor.position) {
      this.#behind(cursor.position, `the records from offset ${cursor.position} were removed (retention) meanwhile`);
    }
    // The initial part: the latest record per key, in offset order; later reads: every record.
    const delivered = cursor === undefined ? [...latest].sort(([, a], [, b]) => a.offset - b.offset) : records;
    const items: FeedChange[] = delivered.map(([key, message]) => ({
      type: FeedEventType.Change,
      change: ctx.decode(key, message),
      position: message.offset + 1,
      epoch: "",
    }));
    const end = range.ends.get(partition) ?? cursor?.position ?? 0;
    const position = Math.max(end, cursor?.position ?? 0);
    // The partition's end offset when the read began: past the cursor when the read stopped at `batchSize`.
    const head = Math.max(position, range.highs.get(partition) ?? position);
    return { items, cursor: { position, epoch: "" }, head, more: range.limited.has(partition) };
  }

  async wait(cursor: FeedCursor, signal: AbortSignal): Promise<void> {
    const partition = await this.ctx.partition();
    while (!signal.aborted) {
      let high: number;
      try {
        high = (await this.ctx.consumer.watermarks(partition)).highOffset;
      } catch {
        return; // the next read reports it
      }
      if (high !== cursor.position) return;
      await this.ctx.notifier.wait(this.ctx.namespace, signal, this.ctx.pollIntervalMs);
    }
  }

  close(): Promise<void> {
    return this.ctx.consumer.close();
  }

  async #check(partition: number, cursor: FeedStart | FeedCursor): Promise<void> {
    const { position, epoch } = cursor;
    if (epoch !== undefined && epoch !== "")
      this.#behind(position, `position of another numbering (epoch ${JSON.stringify(epoch)})`);
    const { lowOffset, highOffset } = await this.ctx.consumer.watermarks(partition);
    if (position > highOffset) {
      this.#behind(position, `partition ${partition} ends at offset ${highOffset} (was the topic created again?)`);
    }
    if (position < lowOffset) {
      this.#behind(
        position,
        `partition ${partition} starts at offset ${lowOffset}: the records before it were removed (retention)`,
      );
    }
  }

  #behind(position: number, reason: string): never {
    throw new FeedBehindError(this.ctx.namespace, position, reason);
  }
}
