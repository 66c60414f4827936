/**
 * Errors of `statelog/kafka`: one code table, {@link KafkaErrorCode}, and a
 * type guard per error class. Codes are stable; the guards check the code,
 * so they work across duplicate installs of statelog. The Kafka backend
 * also throws core errors: `ConfigurationError` (options),
 * `ValidationError`, `InvalidValueError`, `TooLargeError` (input),
 * `ClosedError`, `AbortError`, `CorruptionError` (a record `KafkaStore`
 * cannot read), `PartialWriteError` (a `KafkaStore.save` that reached
 * some records but not all) and `PeerMissingError` (the client package
 * `@confluentinc/kafka-javascript` is not installed or its native binding
 * is not built).
 */
import { isStatelogError, StatelogError, type StatelogErrorOptions } from "../index.js";

/** Stable error codes of the Kafka backend. */
export const KafkaErrorCode = {
  /** The broker did not acknowledge a record (timed out, broker down, rejected). */
  Delivery: "STATELOG_KAFKA_DELIVERY",
  /** The topic is missing or configured in a way the changelog cannot use. */
  Topic: "STATELOG_KAFKA_TOPIC",
  /** The broker does not offer an admin API that was needed (e.g. the mock cluster's missing CreateTopics). */
  AdminUnsupported: "STATELOG_KAFKA_ADMIN_UNSUPPORTED",
  /** Reading the changelog failed (connection, offsets, fetch). */
  Read: "STATELOG_KAFKA_READ",
  /** Committing offsets for a consumer group failed (coordinator unreachable, group in use by members). */
  Commit: "STATELOG_KAFKA_COMMIT",
} as const;
export type KafkaErrorCode = (typeof KafkaErrorCode)[keyof typeof KafkaErrorCode];

/** librdkafka's code of a record that was not acknowledged within `message.timeout.ms`. */
const ERR_MSG_TIMED_OUT = -192;

/** Options of a {@link KafkaDeliveryError}. */
export interface KafkaDeliveryErrorOptions extends StatelogErrorOptions {
  /**
   * The broker may hold the record: it was handed to librdkafka and no
   * answer came. @default true for librdkafka's time-out (-192), else false
   */
  mayBeWritten?: boolean;
}

/**
 * A record was not acknowledged by the broker. When {@link mayBeWritten},
 * it may still have been written (a time-out after the broker wrote it but
 * before the acknowledgement arrived); else the broker did not take it.
 * Either way, writing the same key and value again is safe: the latest
 * record wins.
 */
export class KafkaDeliveryError extends StatelogError {
  /** The broker may hold the record (sent, unanswered); `false`: it certainly does not. */
  readonly mayBeWritten: boolean;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly key: string,
    /** librdkafka's error code (e.g. -192 for a message time-out), when known. */
    readonly kafkaCode: number | undefined,
    message: string,
    options?: KafkaDeliveryErrorOptions,
  ) {
    super(
      KafkaErrorCode.Delivery,
      `record ${JSON.stringify(key)} to ${topic}[${partition}] was not acknowledged: ${message}`,
      options,
    );
    this.name = "KafkaDeliveryError";
    this.mayBeWritten = options?.mayBeWritten ?? kafkaCode === ERR_MSG_TIMED_OUT;
  }
}

/** The topic is missing or does not fit the changelog (partition count, cleanup policy). */
export class KafkaTopicError extends StatelogError {
  constructor(
    readonly topic: string,
    message: string,
    options?: StatelogErrorOptions,
  ) {
    super(KafkaErrorCode.Topic, `topic ${JSON.stringify(topic)}: ${message}`, options);
    this.name = "KafkaTopicError";
  }
}

/** The broker lacks an admin API (the librdkafka mock cluster has no CreateTopics). */
export class KafkaAdminUnsupportedError extends StatelogError {
  constructor(
    readonly operation: string,
    message: string,
    options?: StatelogErrorOptions,
  ) {
    super(KafkaErrorCode.AdminUnsupported, `${operation}: ${message}`, options);
    this.name = "KafkaAdminUnsupportedError";
  }
}

/** Reading the changelog failed. */
export class KafkaReadError extends StatelogError {
  constructor(
    readonly topic: string,
    message: string,
    options?: StatelogErrorOptions,
  ) {
    super(KafkaErrorCode.Read, `reading ${JSON.stringify(topic)} failed: ${message}`, options);
    this.name = "KafkaReadError";
  }
}

/**
 * Committing offsets for a consumer group failed. Nothing of the read is
 * lost: the group keeps its previous offsets. "Unknown member" means the
 * group is in use by consumers that joined it (subscribed); commits of a
 * `ChangelogReader` need a group of their own.
 */
export class KafkaCommitError extends StatelogError {
  constructor(
    readonly topic: string,
    readonly groupId: string,
    message: string,
    options?: StatelogErrorOptions,
  ) {
    super(
      KafkaErrorCode.Commit,
      `committing offsets of ${JSON.stringify(topic)} for group ${JSON.stringify(groupId)} failed: ${message}`,
      options,
    );
    this.name = "KafkaCommitError";
  }
}

/** True for a {@link KafkaDeliveryError}. */
export const isKafkaDeliveryError = (e: unknown): e is KafkaDeliveryError =>
  isStatelogError(e, KafkaErrorCode.Delivery);
/** True for a {@link KafkaTopicError}. */
export const isKafkaTopicError = (e: unknown): e is KafkaTopicError => isStatelogError(e, KafkaErrorCode.Topic);
/** True for a {@link KafkaAdminUnsupportedError}. */
export const isKafkaAdminUnsupportedError = (e: unknown): e is KafkaAdminUnsupportedError =>
  isStatelogError(e, KafkaErrorCode.AdminUnsupported);
/** True for a {@link KafkaReadError}. */
export const isKafkaReadError = (e: unknown): e is KafkaReadError => isStatelogError(e, KafkaErrorCode.Read);
/** True for a {@link KafkaCommitError}. */
export const isKafkaCommitError = (e: unknown): e is KafkaCommitError => isStatelogError(e, KafkaErrorCode.Commit);
