/**
 * `ChangelogEntry`: one record of the changelog as a reader hands it over,
 * the latest record of its key.
 */
import { messageOf } from "../index.js";
import type { RdKafka } from "./client.js";
import { parseChangeLogKey } from "./codec.js";
import { KafkaReadError } from "./errors.js";

/** One record of the changelog: the latest of its key. */
export class ChangelogEntry {
  /** The full key `{namespace}/{entityType}/{entityId}`. */
  readonly key: string;
  readonly namespace: string;
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
    this.namespace = parts.namespace;
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
   * The value parsed as JSON.
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
