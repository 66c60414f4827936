/**
 * `statelog/nats`: NATS JetStream backends. A KV-backed Store, versioned
 * repositories with TTL and history, a JetStream event store and a
 * read-model store. Needs the optional peer dependencies
 * `@nats-io/transport-node`, `@nats-io/jetstream` and `@nats-io/kv` (3.x),
 * loaded when an object opens: without them, `open` fails with a
 * `PeerMissingError` that says what to install. See docs/nats.md.
 */
export {
  isNatsSaveError,
  NatsErrorCode,
  NatsSaveError,
  type NatsSaveReport,
} from "./errors.js";
export { NatsEventStore } from "./event-store.js";
export { NATS_EVENT_STORE_DEFAULTS, type NatsEventStoreOptions } from "./event-store-options.js";
export { NatsKvStore } from "./kv-store.js";
export { NATS_KV_STORE_DEFAULTS, type NatsKvStoreOptions } from "./kv-store-options.js";
export { NatsStorage } from "./options.js";
export {
  NATS_READ_MODEL_STORE_DEFAULTS,
  NatsReadModelStore,
  type NatsReadModelStoreOptions,
} from "./read-model-store.js";
export { NatsKvRepository, NatsSimpleRepository } from "./repository.js";
export { NATS_KV_REPOSITORY_DEFAULTS, type NatsKvRepositoryOptions } from "./repository-bucket.js";
export type { NatsKvRepositoryBuilder } from "./repository-builder.js";
export {
  NATS_KV_SNAPSHOT_STORE_DEFAULTS,
  NatsKvSnapshotStore,
  type NatsKvSnapshotStoreOptions,
} from "./snapshot-store.js";
