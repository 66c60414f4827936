/**
 * `ensureChangelogTopic`: creates the changelog topic with
 * `cleanup.policy=compact` and the seed's settings through the admin API,
 * or checks that an existing topic has the expected partition count and
 * `cleanup.policy=compact`.
 */
import { ConfigurationError, messageOf } from "../core/errors.js";
import { loadKafkaClient, type RdKafka } from "./client.js";
import { type KafkaConnectionOptions, resolveConnection } from "./config.js";
import { KafkaAdminUnsupportedError, KafkaTopicError } from "./errors.js";
import { checkCleanupPolicy, describeTopicConfig } from "./topic-config.js";

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
  /**
   * Whether to check an existing topic's `cleanup.policy` (DescribeConfigs,
   * through the optional peer dependency `@platformatic/kafka`):
   * - `"require"`: check it; throw `KafkaTopicError` unless it is `compact`, and
   *   `KafkaAdminUnsupportedError` when it cannot be checked (the broker has
   *   no DescribeConfigs API, as librdkafka's mock cluster, or
   *   `@platformatic/kafka` is not installed);
   * - `"skip"`: do not check it (check it by hand with `kafka-configs`).
   * @default "require"
   */
  checkConfig?: "require" | "skip";
  /**
   * librdkafka settings of the admin client over `bootstrap.servers`
   * (e.g. `security.protocol`, `sasl.mechanisms`, `sasl.username`).
   */
  clientConfig?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Options of `@platformatic/kafka`'s `Admin` for the DescribeConfigs check
   * (e.g. `sasl: { mechanism, username, password }`, `tls`), over
   * `bootstrapBrokers` and the time-outs. `clientConfig` is librdkafka's and
   * is not translated: a secured cluster needs its settings here too.
   */
  configAdminOptions?: Readonly<Record<string, unknown>>;
}

/** What {@link ensureChangelogTopic} found or did. */
export interface EnsureTopicResult {
  readonly topic: string;
  /** The topic was created by this call (with `cleanup.policy=compact`). */
  readonly created: boolean;
  readonly partitions: number;
  /**
   * The topic's `cleanup.policy`: as created, or as the broker described it;
   * `undefined` when the check was skipped (`checkConfig: "skip"`).
   */
  readonly cleanupPolicy: string | undefined;
}

const ERR_TOPIC_ALREADY_EXISTS = 36;
/** Errors that mean "this broker has no such API". */
const UNSUPPORTED = new Set([
  35 /* UNSUPPORTED_VERSION */, -165 /* _UNSUPPORTED_FEATURE */, -193 /* _NOT_IMPLEMENTED */,
]);

/**
 * Creates the changelog topic if it does not exist, else checks its
 * partition count and its `cleanup.policy`.
 * @throws KafkaTopicError when an existing topic has another partition count
 *   or a cleanup policy other than `compact`;
 *   KafkaAdminUnsupportedError when the broker has no CreateTopics API (the librdkafka mock cluster)
 *   or the cleanup policy cannot be checked (see {@link EnsureTopicOptions.checkConfig})
 */
export async function ensureChangelogTopic(options: EnsureTopicOptions = {}): Promise<EnsureTopicResult> {
  const { brokers, topic } = resolveConnection(options);
  const partitions = options.partitions ?? 10;
  const timeout = options.timeoutMs ?? 30_000;
  const checkConfig = options.checkConfig ?? "require";
  if (checkConfig !== "require" && checkConfig !== "skip") {
    throw new ConfigurationError(`checkConfig must be "require" or "skip", got ${JSON.stringify(checkConfig)}`);
  }
  const config = { ...CHANGELOG_TOPIC_CONFIG, ...options.config };
  if (config["cleanup.policy"] !== "compact") {
    throw new ConfigurationError(
      `config["cleanup.policy"] must be "compact" for a changelog topic, got ${JSON.stringify(config["cleanup.policy"])}`,
    );
  }
  const { AdminClient } = await loadKafkaClient();
  const admin = AdminClient.create({
    ...options.clientConfig,
    "bootstrap.servers": brokers,
  } as RdKafka.GlobalConfig);
  try {
    const existing = await describe(admin, topic, timeout);
    if (existing === undefined) {
      const error = await new Promise<RdKafka.LibrdKafkaError | undefined>((resolve) =>
        admin.createTopic(
          {
            topic,
            num_partitions: partitions,
            replication_factor: options.replicationFactor ?? 3,
            config,
          },
          timeout,
          (err) => resolve(err ?? undefined),
        ),
      );
      if (!error) return { topic, created: true, partitions, cleanupPolicy: config["cleanup.policy"] };
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
    if (checkConfig === "skip") return { topic, created: false, partitions: actual, cleanupPolicy: undefined };
    const described = await describeTopicConfig(brokers, topic, ["cleanup.policy"], {
      timeoutMs: timeout,
      adminOptions: options.configAdminOptions,
    });
    const cleanupPolicy = checkCleanupPolicy(topic, described.get("cleanup.policy"));
    return { topic, created: false, partitions: actual, cleanupPolicy };
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
