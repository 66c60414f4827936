/**
 * `statelog/kafka`: the changelog of namespaces on a compacted Kafka topic
 * (`ChangelogWriter`, `ChangelogReader`, `ensureChangelogTopic`) and a
 * Store over it (`KafkaStore`). Needs the optional peer dependency
 * `@confluentinc/kafka-javascript`, loaded on first use (without it, a
 * `PeerMissingError` says what to install). See docs/kafka.md.
 */
export {
  type Changeloggable,
  type ChangelogKeyParts,
  changeLogKey,
  keyInNamespace,
  parseChangeLogKey,
} from "./codec.js";
export type { KafkaConfig, KafkaConnectionOptions } from "./config.js";
export type { ScanOptions } from "./consumer.js";
export {
  isKafkaAdminUnsupportedError,
  isKafkaCommitError,
  isKafkaDeliveryError,
  isKafkaReadError,
  isKafkaTopicError,
  KafkaAdminUnsupportedError,
  KafkaCommitError,
  KafkaDeliveryError,
  type KafkaDeliveryErrorOptions,
  KafkaErrorCode,
  KafkaReadError,
  KafkaTopicError,
} from "./errors.js";
export { murmur2, partitionForNamespace, partitionForWorkspace } from "./murmur2.js";
export {
  CHANGELOG_READER_DEFAULTS,
  type ChangelogChanges,
  ChangelogEntry,
  ChangelogReader,
  type ChangelogReaderOptions,
  type LoadCallOptions,
  type LoadChangesOptions,
  type LoadProgress,
  type PartitionOffsets,
} from "./reader.js";
export { KAFKA_STORE_DEFAULTS, KafkaStore, type KafkaStoreOptions } from "./store.js";
export {
  ENSURE_CHANGELOG_TOPIC_DEFAULTS,
  type EnsureChangelogTopicOptions,
  type EnsureChangelogTopicResult,
  ensureChangelogTopic,
  TopicConfigCheck,
} from "./topic.js";
export {
  CHANGELOG_WRITER_DEFAULTS,
  ChangelogWriter,
  type ChangelogWriterOptions,
  type Delivery,
  type WriteOptions,
} from "./writer.js";
