/**
 * `statelog/nats`: NATS JetStream backends. A KV-backed Store, versioned
 * repositories with TTL and history, and a JetStream event store. Needs the
 * optional peer dependencies `@nats-io/transport-node`, `@nats-io/jetstream`
 * and `@nats-io/kv` (3.x). See docs/nats.md.
 */
export {
  actualLastSequence,
  isWrongLastSequence,
  NatsSaveError,
  natsError,
  WRONG_LAST_SEQUENCE,
} from "./errors.js";
export { EVENT_ENVELOPE_BYTES, NatsEventStore, type NatsEventStoreConfig } from "./event-store.js";
export { decodeToken, encodeToken, entityKey, parseEntityKey } from "./keys.js";
export { DEFAULT_STORE_BUCKET, NatsKvStore, type NatsKvStoreOptions, STORE_ENVELOPE_BYTES } from "./kv-store.js";
export { requirePayloadFits, serverMaxPayload } from "./payload.js";
export {
  NatsReadModelStore,
  type NatsReadModelStoreOptions,
  ProjectionStatus,
  type ProjectionStatusRecord,
  READ_MODEL_ENVELOPE_BYTES,
  type ReadModelMetadata,
} from "./read-model-store.js";
export { keepLastPerKey, type ReadFilteredOptions, type ReadFilteredResult, ReadMode, readFiltered } from "./reader.js";
export { NatsKvRepository, type NatsKvRepositoryOptions, NatsSimpleRepository } from "./repository.js";
export { REPOSITORY_ENVELOPE_BYTES } from "./repository-bucket.js";
export { NatsKvRepositoryBuilder } from "./repository-builder.js";
export {
  NatsFeature,
  parseServerVersion,
  requireFeature,
  type ServerVersion,
  serverVersion,
  supports,
} from "./server.js";
