/**
 * Reads an existing topic's settings (DescribeConfigs), for
 * `ensureChangelogTopic`'s check of `cleanup.policy`.
 *
 * `@confluentinc/kafka-javascript` (1.10) has no DescribeConfigs call, so
 * this one request goes through `@platformatic/kafka`, a maintained
 * pure-JavaScript Kafka client, loaded on first use as a second optional
 * peer dependency. Nothing else of statelog uses it.
 */
import { messageOf } from "../index.js";
import { KafkaAdminUnsupportedError, KafkaTopicError } from "./errors.js";

/** The parts of `@platformatic/kafka` this module uses. */
interface ConfigAdminModule {
  Admin: new (
    options: Record<string, unknown>,
  ) => {
    describeConfigs(options: {
      resources: { resourceType: number; resourceName: string; configurationKeys?: string[] }[];
    }): Promise<{ resourceName: string; configs: { name: string; value: string | null }[] }[]>;
    close(): Promise<void>;
  };
}

/** `ConfigResourceTypes.TOPIC` of the Kafka protocol. */
const RESOURCE_TOPIC = 2;

let loading: Promise<ConfigAdminModule> | undefined;

function loadConfigAdmin(topic: string): Promise<ConfigAdminModule> {
  loading ??= import("@platformatic/kafka").then(
    (mod) => mod as unknown as ConfigAdminModule,
    (error: unknown) => {
      loading = undefined;
      throw new KafkaAdminUnsupportedError(
        "DescribeConfigs",
        `cannot check the cleanup.policy of the existing topic ${JSON.stringify(topic)}: ` +
          "@confluentinc/kafka-javascript has no DescribeConfigs call, and the optional peer dependency " +
          "@platformatic/kafka that statelog uses for it is not installed (`npm install @platformatic/kafka`). " +
          "Or check the topic by hand (`kafka-configs --describe --entity-type topics --entity-name " +
          `${topic}\`) and pass \`checkConfig: "skip"\``,
        { cause: error },
      );
    },
  );
  return loading;
}

/** Options of {@link describeTopicConfig}. */
export interface DescribeTopicConfigOptions {
  /** Time-out of the request, in ms. */
  timeoutMs: number;
  /** Options of `@platformatic/kafka`'s `Admin` over the defaults (e.g. `sasl`, `tls`). */
  adminOptions?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * The topic's settings by name (only those asked for), from the broker.
 * @throws KafkaAdminUnsupportedError when the broker has no DescribeConfigs
 *   API (librdkafka's mock cluster) or `@platformatic/kafka` is not installed;
 *   KafkaTopicError when the request fails otherwise
 */
export async function describeTopicConfig(
  brokers: string,
  topic: string,
  names: readonly string[],
  options: DescribeTopicConfigOptions,
): Promise<Map<string, string | null>> {
  const { Admin } = await loadConfigAdmin(topic);
  const admin = new Admin({
    clientId: "statelog-ensure-topic",
    bootstrapBrokers: brokers.split(",").map((b) => b.trim()),
    timeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
    retries: 2,
    ...options.adminOptions,
  });
  try {
    const described = await admin.describeConfigs({
      resources: [{ resourceType: RESOURCE_TOPIC, resourceName: topic, configurationKeys: [...names] }],
    });
    const resource = described.find((r) => r.resourceName === topic);
    if (resource === undefined) {
      throw new KafkaTopicError(topic, "the broker's DescribeConfigs response does not name the topic");
    }
    return new Map(resource.configs.map((c) => [c.name, c.value]));
  } catch (error) {
    if (isUnsupported(error)) {
      throw new KafkaAdminUnsupportedError(
        "DescribeConfigs",
        `the broker at ${brokers} cannot describe topic settings (${messageOf(error)}), so the cleanup.policy ` +
          `of ${JSON.stringify(topic)} cannot be checked. librdkafka's mock cluster has no DescribeConfigs API: ` +
          `against it pass \`checkConfig: "skip"\``,
        { cause: error },
      );
    }
    if (error instanceof KafkaTopicError) throw error;
    throw new KafkaTopicError(topic, `cannot describe its settings: ${describeError(error)}`, { cause: error });
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/**
 * Checks the value of `cleanup.policy`: the changelog needs exactly
 * `compact`. `delete` (Kafka's default) and `compact,delete` both drop
 * records older than `retention.ms`, including the only record of an
 * entity that has not changed since: a later restore would lose it.
 * @throws KafkaTopicError when the policy is anything else
 */
export function checkCleanupPolicy(topic: string, policy: string | null | undefined): string {
  const parts = (policy ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 1 && parts[0] === "compact") return "compact";
  throw new KafkaTopicError(
    topic,
    `has cleanup.policy=${policy ?? "(not reported)"}, the changelog needs cleanup.policy=compact: ` +
      (parts.includes("delete")
        ? "with `delete`, Kafka drops records older than retention.ms, so entities that did not change " +
          "since would be missing from a restore. "
        : "") +
      `Change it with \`kafka-configs --alter --entity-type topics --entity-name ${topic} ` +
      "--add-config cleanup.policy=compact`",
  );
}

/** Errors of `@platformatic/kafka` that mean "the broker has no such API or version". */
function isUnsupported(error: unknown): boolean {
  return someInTree(error, (e) => {
    const code = (e as { code?: unknown }).code;
    const apiId = (e as { apiId?: unknown }).apiId;
    return code === "PLT_KFK_UNSUPPORTED_API" || code === "PLT_KFK_UNSUPPORTED" || apiId === "UNSUPPORTED_VERSION";
  });
}

/** The innermost messages of an error tree (`@platformatic/kafka` nests them in `errors`). */
function describeError(error: unknown): string {
  const leaves: string[] = [];
  someInTree(error, (e) => {
    const children = (e as { errors?: unknown }).errors;
    if (!Array.isArray(children) || children.length === 0) leaves.push(messageOf(e));
    return false;
  });
  return [...new Set(leaves)].join("; ") || messageOf(error);
}

function someInTree(error: unknown, test: (e: object) => boolean, depth = 0): boolean {
  if (typeof error !== "object" || error === null || depth > 8) return false;
  if (test(error)) return true;
  const children = (error as { errors?: unknown }).errors;
  if (Array.isArray(children) && children.some((c) => someInTree(c, test, depth + 1))) return true;
  return someInTree((error as { cause?: unknown }).cause, test, depth + 1);
}
