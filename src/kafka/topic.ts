/**
 * `ensureChangelogTopic`: creates the changelog topic with
 * `cleanup.policy=compact` and the changelog's settings through the admin
 * API, or checks that an existing topic has the expected partition count
 * and `cleanup.policy=compact`.
 */
import { messageOf } from "../index.js";
import { loadKafkaClient, type RdKafka } from "./client.js";
import { checkKafkaOptions, isSettings, type KafkaConnectionOptions } from "./config.js";
import { KafkaAdminUnsupportedError, KafkaTopicError } from "./errors.js";
import { checkCleanupPolicy, describeTopicConfig } from "./topic-config.js";

/** Whether {@link ensureChangelogTopic} checks an existing topic's `cleanup.policy`. */
export const TopicConfigCheck = {
  /**
   * Check it: throw `KafkaTopicError` unless it is `compact`, and
   * `KafkaAdminUnsupportedError` when it cannot be checked.
   */
  Require: "require",
  /** Do not check it (check it by hand with `kafka-configs`). */
  Skip: "skip",
} as const;
export type TopicConfigCheck = (typeof TopicConfigCheck)[keyof typeof TopicConfigCheck];

/** Options of {@link ensureChangelogTopic}. */
export interface EnsureChangelogTopicOptions extends KafkaConnectionOptions {
  /** Partitions of a new topic; an existing topic must have exactly this many. A positive integer. @default 10 */
  partitions?: number;
  /** Replication factor of a new topic, a positive integer. @default 3 */
  replicationFactor?: number;
  /**
   * Topic settings (Kafka's names, string values) over
   * {@link ENSURE_CHANGELOG_TOPIC_DEFAULTS}`.config`, e.g.
   * `{ "delete.retention.ms": "86400000" }`. `cleanup.policy` must stay `compact`.
   * @default ENSURE_CHANGELOG_TOPIC_DEFAULTS.config
   */
  config?: Readonly<Record<string, string>>;
  /** Time-out of each admin request, in ms. A positive integer. @default 30000 */
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
  checkConfig?: TopicConfigCheck;
  /**
   * librdkafka settings of the admin client over `bootstrap.servers`
   * (e.g. `security.protocol`, `sasl.mechanisms`, `sasl.username`).
   * @default {}
   */
  clientConfig?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Options of `@platformatic/kafka`'s `Admin` for the DescribeConfigs check
   * (e.g. `sasl: { mechanism, username, password }`, `tls`), over
   * `bootstrapBrokers` and the time-outs. `clientConfig` is librdkafka's and
   * is not translated: a secured cluster needs its settings here too.
   * @default {}
   */
  configAdminOptions?: Readonly<Record<string, unknown>>;
}

/** Defaults of {@link EnsureChangelogTopicOptions}. */
export const ENSURE_CHANGELOG_TOPIC_DEFAULTS = {
  /** @default 10 */
  partitions: 10,
  /** @default 3 */
  replicationFactor: 3,
  /** In ms. @default 30000 */
  timeoutMs: 30_000,
  /** @default "require" */
  checkConfig: TopicConfigCheck.Require,
  /**
   * The topic settings the changelog needs, by Kafka's names.
   * @default { "cleanup.policy": "compact", "compression.type": "snappy", "min.compaction.lag.ms": "60000" }
   */
  config: Object.freeze({
    "cleanup.policy": "compact",
    "compression.type": "snappy",
    "min.compaction.lag.ms": "60000",
  }) as Readonly<Record<string, string>>,
} as const;

/** The options of `ensureChangelogTopic` besides the connection's. */
const ENSURE_OPTION_NAMES: readonly string[] = [
  "partitions",
  "replicationFactor",
  "config",
  "timeoutMs",
  "checkConfig",
  "clientConfig",
  "configAdminOptions",
];

/** What {@link ensureChangelogTopic} found or did. */
export interface EnsureChangelogTopicResult {
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
 *   or the cleanup policy cannot be checked (see {@link EnsureChangelogTopicOptions.checkConfig});
 *   ConfigurationError for an invalid option
 */
export async function ensureChangelogTopic(
  options: EnsureChangelogTopicOptions = {},
): Promise<EnsureChangelogTopicResult> {
  const { check, brokers, topic } = checkKafkaOptions(
    "ensureChangelogTopic",
    options,
    ENSURE_CHANGELOG_TOPIC_DEFAULTS,
    ENSURE_OPTION_NAMES,
  );
  const partitions = check.integer("partitions", { min: 1 });
  const replicationFactor = check.integer("replicationFactor", { min: 1 });
  const timeout = check.integer("timeoutMs", { min: 1 });
  const checkConfig = check.oneOf("checkConfig", TopicConfigCheck);
  if (options.config !== undefined && !isSettings(options.config, ["string"])) {
    throw check.error("config", "an object of topic settings (string values)");
  }
  const config = { ...ENSURE_CHANGELOG_TOPIC_DEFAULTS.config, ...options.config };
  if (config["cleanup.policy"] !== "compact") {
    throw check.error('config["cleanup.policy"]', '"compact" for a changelog topic', config["cleanup.policy"]);
  }
  if (options.clientConfig !== undefined && !isSettings(options.clientConfig, ["string", "number", "boolean"])) {
    throw check.error("clientConfig", "an object of librdkafka settings (string, number or boolean values)");
  }
  const adminOptions = options.configAdminOptions;
  if (adminOptions !== undefined && (typeof adminOptions !== "object" || adminOptions === null)) {
    throw check.error("configAdminOptions", "an object of @platformatic/kafka Admin options");
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
            replication_factor: replicationFactor,
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
        `has ${actual} partitions, expected ${partitions}: namespaces would map to other partitions than the ` +
          "ones their changes were written to (use the topic's count, or a new topic)",
      );
    }
    if (checkConfig === TopicConfigCheck.Skip)
      return { topic, created: false, partitions: actual, cleanupPolicy: undefined };
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
