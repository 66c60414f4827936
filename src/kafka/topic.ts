/**
 * `ensureChangelogTopic`: creates the changelog topic with
 * `cleanup.policy=compact` and the seed's settings through the admin API,
 * or checks that an existing topic has the expected partition count.
 */
import { messageOf } from "../core/errors.js";
import { loadKafkaClient, type RdKafka } from "./client.js";
import { type KafkaConnectionOptions, resolveConnection } from "./config.js";
import { KafkaAdminUnsupportedError, KafkaTopicError } from "./errors.js";

/** The topic settings the changelog needs (the seed's), by Kafka's names. */
export const CHANGELOG_TOPIC_CONFIG: Readonly<Record<string, string>> = Object.freeze({
  "cleanup.policy": "compact",
  "compression.type": "snappy",
  "min.compaction.lag.ms": "60000",
});

/** Options of {@link ensureChangelogTopic}. */
export interface EnsureTopicOptions extends KafkaConnectionOptions {
  /** Partitions of a new topic; an existing topic must have exactly this many. @default 10 */
  partitions?: number;
  /** Replication factor of a new topic. @default 3 */
  replicationFactor?: number;
  /** Topic settings over {@link CHANGELOG_TOPIC_CONFIG} (e.g. `{ "delete.retention.ms": "86400000" }`). */
  config?: Record<string, string>;
  /** Time-out of each admin request, in ms. @default 30000 */
  timeoutMs?: number;
}

/** What {@link ensureChangelogTopic} found or did. */
export interface EnsureTopicResult {
  readonly topic: string;
  /** The topic was created by this call (with `cleanup.policy=compact`). */
  readonly created: boolean;
  readonly partitions: number;
}

const ERR_TOPIC_ALREADY_EXISTS = 36;
/** Errors that mean "this broker has no such API". */
const UNSUPPORTED = new Set([
  35 /* UNSUPPORTED_VERSION */, -165 /* _UNSUPPORTED_FEATURE */, -193 /* _NOT_IMPLEMENTED */,
]);

/**
 * Creates the changelog topic if it does not exist, else checks its
 * partition count.
 * @throws KafkaTopicError when an existing topic has another partition count;
 *   KafkaAdminUnsupportedError when the broker has no CreateTopics API (the librdkafka mock cluster)
 */
export async function ensureChangelogTopic(options: EnsureTopicOptions = {}): Promise<EnsureTopicResult> {
  const { brokers, topic } = resolveConnection(options);
  const partitions = options.partitions ?? 10;
  const timeout = options.timeoutMs ?? 30_000;
  const { AdminClient } = await loadKafkaClient();
  const admin = AdminClient.create({ "bootstrap.servers": brokers } as RdKafka.GlobalConfig);
  try {
    const existing = await describe(admin, topic, timeout);
    if (existing === undefined) {
      const error = await new Promise<RdKafka.LibrdKafkaError | undefined>((resolve) =>
        admin.createTopic(
          {
            topic,
            num_partitions: partitions,
            replication_factor: options.replicationFactor ?? 3,
            config: { ...CHANGELOG_TOPIC_CONFIG, ...options.config },
          },
          timeout,
          (err) => resolve(err ?? undefined),
        ),
      );
      if (!error) return { topic, created: true, partitions };
      if (error.code !== ERR_TOPIC_ALREADY_EXISTS) {
        if (UNSUPPORTED.has(error.code)) {
          throw new KafkaAdminUnsupportedError(
            "CreateTopics",
            `the broker at ${brokers} cannot create topics (${error.message}); the librdkafka mock cluster has no ` +
              `CreateTopics API: create ${JSON.stringify(topic)} on the mock (its \`topic NAME PARTITIONS\` command)`,
            { cause: error },
          );
        }
        throw new KafkaTopicError(topic, `cannot create: ${error.message}`, { cause: error });
      }
    }
    const actual = existing ?? (await describe(admin, topic, timeout)) ?? 0;
    if (actual !== partitions) {
      throw new KafkaTopicError(
        topic,
        `has ${actual} partitions, expected ${partitions}: workspaces would map to other partitions than the ` +
          "ones their changes were written to (use the topic's count, or a new topic)",
      );
    }
    return { topic, created: false, partitions: actual };
  } finally {
    admin.disconnect();
  }
}

/** The topic's partition count, or `undefined` when it does not exist. */
async function describe(admin: RdKafka.IAdminClient, topic: string, timeout: number): Promise<number | undefined> {
  const topics = await new Promise<string[]>((resolve, reject) =>
    admin.listTopics({ timeout }, (err, list) => (err ? reject(err) : resolve(list))),
  ).catch((error: unknown) => {
    throw new KafkaTopicError(topic, `cannot list topics: ${messageOf(error)}`, { cause: error });
  });
  if (!topics.includes(topic)) return undefined;
  const described = await new Promise<RdKafka.TopicDescription[]>((resolve, reject) =>
    admin.describeTopics([topic], { timeout }, (err, result) => (err ? reject(err) : resolve(result))),
  ).catch((error: unknown) => {
    throw new KafkaTopicError(topic, `cannot describe: ${messageOf(error)}`, { cause: error });
  });
  return described[0]?.partitions.length;
}
