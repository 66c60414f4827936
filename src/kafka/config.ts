/**
 * Connection settings: environment variables with the seed's defaults, and
 * the producer and consumer settings the seed lists. Explicit options win
 * over the environment, which wins over the defaults.
 */
import { ConfigurationError } from "../core/errors.js";

/** The seed's defaults, used when neither an option nor the environment gives a value. */
export const KafkaDefaults = {
  /** `KAFKA_BROKERS` */
  brokers: "localhost:9092",
  /** `KAFKA_CHANGELOG_TOPIC` */
  topic: "workspace-changelog",
  /** `KAFKA_CHANGELOG_GROUP_ID` */
  groupId: "workspace-changelog-consumer",
} as const;

/** Options every Kafka client of statelog accepts. */
export interface KafkaConnectionOptions {
  /** Bootstrap servers, comma-separated `host:port`. @default `$KAFKA_BROKERS`, else `"localhost:9092"` */
  brokers?: string | readonly string[];
  /** The changelog topic. @default `$KAFKA_CHANGELOG_TOPIC`, else `"workspace-changelog"` */
  topic?: string;
  /** Environment to read the variables from. @default `process.env` */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Resolves brokers and topic: option, then environment, then default. */
export function resolveConnection(options: KafkaConnectionOptions): { brokers: string; topic: string } {
  const env = options.env ?? process.env;
  const brokersOption = Array.isArray(options.brokers)
    ? options.brokers.join(",")
    : (options.brokers as string | undefined);
  const brokers = nonEmpty(brokersOption) ?? nonEmpty(env.KAFKA_BROKERS) ?? KafkaDefaults.brokers;
  const topic = nonEmpty(options.topic) ?? nonEmpty(env.KAFKA_CHANGELOG_TOPIC) ?? KafkaDefaults.topic;
  if (options.topic !== undefined && nonEmpty(options.topic) === undefined) {
    throw new ConfigurationError("topic must be a non-empty string");
  }
  return { brokers, topic };
}

/** Resolves the consumer group id: option, then `$KAFKA_CHANGELOG_GROUP_ID`, then the default. */
export function resolveGroupId(
  groupId: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  return nonEmpty(groupId) ?? nonEmpty(env.KAFKA_CHANGELOG_GROUP_ID) ?? KafkaDefaults.groupId;
}

function nonEmpty(value: string | undefined): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

/** librdkafka settings, by their librdkafka names. */
export type KafkaConfig = Record<string, string | number | boolean>;

/**
 * The changelog producer's settings (the seed's): idempotent, acks from all
 * in-sync replicas, snappy, at most 5 requests in flight (keeps order with
 * idempotence), retries with backoff until `message.timeout.ms`.
 */
export const DEFAULT_PRODUCER_CONFIG: Readonly<KafkaConfig> = Object.freeze({
  "enable.idempotence": true,
  acks: "all",
  "compression.type": "snappy",
  "max.in.flight.requests.per.connection": 5,
  retries: 2147483647,
  "retry.backoff.ms": 100,
  "retry.backoff.max.ms": 1000,
  "linger.ms": 5,
  "message.timeout.ms": 30_000,
});

/**
 * The changelog consumer's settings (the seed's): read from the earliest
 * offset, never commit on its own. Restores assign partitions explicitly,
 * so no group is joined; `partition.assignment.strategy` matters only to
 * callers that subscribe with a group.
 */
export const DEFAULT_CONSUMER_CONFIG: Readonly<KafkaConfig> = Object.freeze({
  "auto.offset.reset": "earliest",
  "enable.auto.commit": false,
  "enable.auto.offset.store": false,
  "partition.assignment.strategy": "cooperative-sticky",
  "session.timeout.ms": 45_000,
  "max.poll.interval.ms": 300_000,
  "enable.partition.eof": true,
  "fetch.wait.max.ms": 100,
});
