/**
 * What every Kafka class of statelog shares in its options: brokers and
 * topic (option, then environment variable, then default), the consumer
 * group id, librdkafka's settings of the changelog's producer and
 * consumer, and the checks of these options.
 */
import { OptionChecker } from "../index.js";
import { KafkaTopicError } from "./errors.js";

/** librdkafka settings, by their librdkafka names. */
export type KafkaConfig = Record<string, string | number | boolean>;

/** Options every Kafka client of statelog accepts. */
export interface KafkaConnectionOptions {
  /**
   * Bootstrap servers: `"host:port"`, several comma-separated, or a list.
   * @default `$KAFKA_BROKERS`, else `"localhost:9092"`
   */
  brokers?: string | readonly string[];
  /** The changelog topic. @default `$KAFKA_CHANGELOG_TOPIC`, else `"workspace-changelog"` */
  topic?: string;
  /** Environment to read `KAFKA_BROKERS`, `KAFKA_CHANGELOG_TOPIC` and `KAFKA_CHANGELOG_GROUP_ID` from. @default `process.env` */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The option names of {@link KafkaConnectionOptions}, for `OptionChecker.known`. */
const CONNECTION_OPTION_NAMES: readonly string[] = ["brokers", "topic", "env"];

/** Old or foreign spellings of Kafka options, with their name here: the hint of `OptionChecker.known`. */
export const RENAMED_OPTIONS: Readonly<Record<string, string>> = {
  broker: "brokers",
  bootstrapServers: "brokers",
  "bootstrap.servers": "brokers",
  topicName: "topic",
  partitionCount: "partitions",
  numPartitions: "partitions",
  group: "groupId",
  "group.id": "groupId",
  maxBytes: "maxValueBytes",
  maxValueSize: "maxValueBytes",
  stallTimeout: "stallTimeoutMs",
  timeout: "timeoutMs",
  producer: "producerConfig",
  consumer: "consumerConfig",
  workspace: "namespace",
  workspaceId: "namespace",
};

/**
 * The changelog producer's librdkafka settings: idempotent, acks from all
 * in-sync replicas, snappy, at most 5 requests in flight (keeps order with
 * idempotence), retries with backoff until `message.timeout.ms` (30 s).
 */
export const CHANGELOG_PRODUCER_CONFIG: Readonly<KafkaConfig> = Object.freeze({
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
 * The changelog consumer's librdkafka settings: read from the earliest
 * offset, never commit on its own. Restores assign partitions explicitly,
 * so no group is joined; `partition.assignment.strategy` matters only to
 * callers that subscribe with a group.
 */
export const CHANGELOG_CONSUMER_CONFIG: Readonly<KafkaConfig> = Object.freeze({
  "auto.offset.reset": "earliest",
  "enable.auto.commit": false,
  "enable.auto.offset.store": false,
  "partition.assignment.strategy": "cooperative-sticky",
  "session.timeout.ms": 45_000,
  "max.poll.interval.ms": 300_000,
  "enable.partition.eof": true,
  "fetch.wait.max.ms": 100,
});

/**
 * The defaults the Kafka classes share, used when neither the option nor
 * its environment variable is set; each class exports them in its own
 * defaults object (`CHANGELOG_WRITER_DEFAULTS`, …).
 */
export const SHARED_DEFAULTS = {
  /** Used when `$KAFKA_BROKERS` is not set either. @default "localhost:9092" */
  brokers: "localhost:9092",
  /** Used when `$KAFKA_CHANGELOG_TOPIC` is not set either. @default "workspace-changelog" */
  topic: "workspace-changelog",
  /** Used when `$KAFKA_CHANGELOG_GROUP_ID` is not set either. @default "workspace-changelog-consumer" */
  groupId: "workspace-changelog-consumer",
  /** A load fails after this long without progress, in ms. @default 60000 */
  stallTimeoutMs: 60_000,
} as const;

/** Brokers and topic as resolved: option, then environment, then default. */
export interface Connection {
  readonly brokers: string;
  readonly topic: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Starts the option check of every Kafka class: refuses option names that
 * `owner` does not know (its `ownNames` and the connection's, with the
 * hints of {@link RENAMED_OPTIONS}), then checks and resolves the
 * connection. The caller goes on with `check` for its own options.
 * @throws ConfigurationError
 */
export function checkKafkaOptions<O extends KafkaConnectionOptions, D extends Partial<Record<keyof O, unknown>>>(
  owner: string,
  options: O,
  defaults: D,
  ownNames: readonly string[],
): { check: OptionChecker<O, D> } & Connection {
  const check = new OptionChecker<O, D>(owner, options, defaults).known(
    [...CONNECTION_OPTION_NAMES, ...ownNames],
    RENAMED_OPTIONS,
  );
  return { check, ...resolveConnection(check, options) };
}

/** The checks the connection options need, of any class's {@link OptionChecker}. */
type ConnectionChecker = Pick<OptionChecker<KafkaConnectionOptions>, "error">;

/**
 * Checks the connection options of `check`'s owner and resolves them:
 * option, then environment variable, then default.
 * @throws ConfigurationError
 */
function resolveConnection(check: ConnectionChecker, options: KafkaConnectionOptions): Connection {
  const env = checkEnv(check, options);
  let brokers: string | undefined;
  if (options.brokers !== undefined) {
    const list = typeof options.brokers === "string" ? [options.brokers] : options.brokers;
    const ok =
      Array.isArray(list) && list.length > 0 && list.every((b) => typeof b === "string" && nonEmpty(b) !== undefined);
    if (!ok) throw check.error("brokers", 'a non-empty "host:port" string (comma-separated) or a list of them');
    brokers = list.map((b) => (b as string).trim()).join(",");
  }
  if (options.topic !== undefined && nonEmpty(options.topic) === undefined) {
    throw check.error("topic", "a non-empty string", options.topic);
  }
  return {
    brokers: brokers ?? nonEmpty(env.KAFKA_BROKERS) ?? SHARED_DEFAULTS.brokers,
    topic: nonEmpty(options.topic) ?? nonEmpty(env.KAFKA_CHANGELOG_TOPIC) ?? SHARED_DEFAULTS.topic,
  };
}

/**
 * Checks `groupId` and resolves it: option, then `$KAFKA_CHANGELOG_GROUP_ID`, then the default.
 * @throws ConfigurationError
 */
export function resolveGroupId(
  check: ConnectionChecker,
  options: KafkaConnectionOptions & { groupId?: string },
): string {
  const env = checkEnv(check, options);
  if (options.groupId !== undefined && nonEmpty(options.groupId) === undefined) {
    throw check.error("groupId", "a non-empty string", options.groupId);
  }
  return nonEmpty(options.groupId) ?? nonEmpty(env.KAFKA_CHANGELOG_GROUP_ID) ?? SHARED_DEFAULTS.groupId;
}

/**
 * Checks a librdkafka settings option (an object of strings, numbers and
 * booleans) and returns it merged over `base`.
 * @throws ConfigurationError
 */
export function checkKafkaConfig<O extends object>(
  check: OptionChecker<O>,
  name: keyof O & string,
  given: unknown,
  base: Readonly<KafkaConfig>,
): KafkaConfig {
  if (given === undefined) return { ...base };
  if (!isSettings(given, ["string", "number", "boolean"])) {
    throw check.error(name, "an object of librdkafka settings (string, number or boolean values)", given);
  }
  return { ...base, ...given };
}

/**
 * {@link checkKafkaConfig} of a changelog producer's settings, over
 * {@link CHANGELOG_PRODUCER_CONFIG}, refusing settings that would let
 * Kafka store two writes of a partition in another order than they were
 * made: without idempotence, a retried request lands after a later one
 * when more than one is in flight, and the older value of a key would
 * then win. The rule holds with retries off too (the check does not read
 * them).
 * @throws ConfigurationError
 */
export function checkProducerConfig<O extends object>(
  check: OptionChecker<O>,
  name: keyof O & string,
  given: unknown,
): KafkaConfig {
  const config = checkKafkaConfig(check, name, given, CHANGELOG_PRODUCER_CONFIG);
  if (!isOff(config["enable.idempotence"])) {
    // What librdkafka refuses with idempotence on, refused here (it would be an error of the first write).
    for (const setting of ACKS_SETTINGS) {
      const acks = config[setting];
      if (acks !== undefined && !/^(all|-1)$/i.test(String(acks))) {
        throw check.error(name, `with "enable.idempotence": true, "${setting}": "all" (-1)`, given);
      }
    }
    for (const setting of IN_FLIGHT_SETTINGS) {
      const inFlight = config[setting];
      if (inFlight !== undefined && !(Number(inFlight) >= 1 && Number(inFlight) <= 5)) {
        throw check.error(name, `with "enable.idempotence": true, "${setting}" from 1 to 5`, given);
      }
    }
    return config;
  }
  // The settings given win over the defaults (librdkafka takes either name; the later one counts).
  const own = given as KafkaConfig;
  const names = IN_FLIGHT_SETTINGS.filter((n) => own[n] !== undefined);
  for (const setting of names.length > 0 ? names : IN_FLIGHT_SETTINGS) {
    const inFlight = config[setting];
    if (inFlight !== undefined && Number(inFlight) !== 1) {
      throw check.error(
        name,
        `idempotent ("enable.idempotence": true), or with one request in flight ("${setting}": 1): ` +
          "a retry must not store a write after a later one",
        given,
      );
    }
  }
  return config;
}

/** librdkafka's names of the acknowledgements a write waits for. */
const ACKS_SETTINGS = ["acks", "request.required.acks"] as const;

/** librdkafka's names of the requests in flight per connection. */
const IN_FLIGHT_SETTINGS = ["max.in.flight.requests.per.connection", "max.in.flight"] as const;

/** Whether a librdkafka boolean setting is off, as librdkafka reads it (`false`, `0`, "false", "f", "0", any case). */
function isOff(value: string | number | boolean | undefined): boolean {
  return value === false || value === 0 || (typeof value === "string" && /^(false|f|0)$/i.test(value));
}

/** True for a plain object whose values have one of `types`. */
export function isSettings(value: unknown, types: readonly string[]): value is Record<string, never> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => types.includes(typeof v))
  );
}

/**
 * Checks `partitions` (when given): a positive integer.
 * @throws ConfigurationError
 */
export function checkPartitions<O extends { partitions?: number }>(
  check: OptionChecker<O>,
  options: O,
): number | undefined {
  return options.partitions === undefined ? undefined : check.integer("partitions" as keyof O & string, { min: 1 });
}

function checkEnv(check: ConnectionChecker, options: KafkaConnectionOptions): Env {
  if (options.env === undefined) return process.env;
  if (!isSettings(options.env, ["string", "undefined"])) {
    throw check.error("env", "an object of environment variables (string values)", options.env);
  }
  return options.env;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

/**
 * The producer's `message.max.bytes` unless `producerConfig` sets it: a
 * record (key, value and framing) of a 1 MiB value fits.
 */
export const PRODUCER_MESSAGE_MAX_BYTES = 1_100_000;

/**
 * Room kept next to a value in one record, in bytes: the key
 * (`namespace/entityType/entityId`, at most 3 × 255 UTF-8 bytes and two
 * "/") and the record's framing in its batch.
 */
export const RECORD_OVERHEAD_BYTES = 1024;

/**
 * The largest value the producer can send with the producer settings
 * given: `message.max.bytes` less {@link RECORD_OVERHEAD_BYTES}. A
 * `maxValueBytes` over it is refused (else a save of several changes
 * could be written in part before the producer refuses one).
 * @returns the limit in effect: `maxValueBytes` when given, else the smaller of the default and the room
 * @throws ConfigurationError
 */
export function checkValueRoom<O extends object>(
  check: OptionChecker<O>,
  producerConfig: KafkaConfig,
  maxValueBytes: number,
  given: boolean,
): number {
  const messageMax = Number(producerConfig["message.max.bytes"] ?? PRODUCER_MESSAGE_MAX_BYTES);
  const room = messageMax - RECORD_OVERHEAD_BYTES;
  if (maxValueBytes <= room) return maxValueBytes;
  if (!given && room >= 1) return room;
  throw check.error(
    "maxValueBytes" as keyof O & string,
    `at most ${Math.max(0, room)} with the producer's message.max.bytes of ${messageMax} ` +
      `(${RECORD_OVERHEAD_BYTES} bytes are kept for the key and the record's framing): ` +
      "lower maxValueBytes, or raise message.max.bytes in producerConfig (and the topic's max.message.bytes)",
    maxValueBytes,
  );
}

/**
 * Throws unless an existing topic's partition count (`actual`; undefined:
 * no such topic yet) is the `partitions` given.
 * @throws KafkaTopicError
 */
export function checkPartitionCount(topic: string, given: number, actual: number | undefined): void {
  if (actual === undefined || actual === given) return;
  throw new KafkaTopicError(
    topic,
    `has ${actual} partitions, but the option partitions is ${given}: namespaces would go to other partitions ` +
      "than other clients use (leave partitions out to follow the topic)",
  );
}
