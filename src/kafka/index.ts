/**
 * `statelog/kafka`: the workspace changelog on a compacted Kafka topic
 * (seed 3) and a Store over it. Needs the optional peer dependency
 * `@confluentinc/kafka-javascript`, loaded on first use. See docs/kafka.md.
 */
export {
  type Changeloggable,
  type ChangelogKeyParts,
  changeLogKey,
  keyInWorkspace,
  parseChangeLogKey,
} from "./codec.js";
export {
  DEFAULT_CONSUMER_CONFIG,
  DEFAULT_PRODUCER_CONFIG,
  type KafkaConfig,
  type KafkaConnectionOptions,
  KafkaDefaults,
  resolveConnection,
  resolveGroupId,
} from "./config.js";
export {
  isKafkaAdminUnsupportedError,
  isKafkaClientMissingError,
  isKafkaCommitError,
  isKafkaDeliveryError,
  isKafkaReadError,
  isKafkaTopicError,
  KafkaAdminUnsupportedError,
  KafkaClientMissingError,
  KafkaCommitError,
  KafkaDeliveryError,
  KafkaErrorCode,
  KafkaReadError,
  KafkaTopicError,
} from "./errors.js";
export { murmur2, partitionForWorkspace } from "./murmur2.js";
export {
  type ChangelogChanges,
  ChangelogEntry,
  ChangelogReader,
  type ChangelogReaderOptions,
  type LoadCallOptions,
  type LoadChangesOptions,
  type LoadProgress,
  type PartitionOffsets,
} from "./reader.js";
export { KafkaStore, type KafkaStoreOptions } from "./store.js";
export {
  CHANGELOG_TOPIC_CONFIG,
  type EnsureTopicOptions,
  type EnsureTopicResult,
  ensureChangelogTopic,
} from "./topic.js";
export { ChangelogWriter, type ChangelogWriterOptions, type Delivery, type WriteOptions } from "./writer.js";
