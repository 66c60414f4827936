/**
 * `statelog/testing`: the conformance suites every backend passes, for
 * use with vitest (a peer dependency, like fast-check for the
 * property-based tests: a missing one is reported by name). Run them
 * against your own Store, EventStore, Repository or ReadModelStore implementation too
 * (see docs/backends.md).
 */

export { type ChangeFeedContractOptions, describeChangeFeedContract } from "./change-feed-contract.js";
export { type Decider, type DeciderOutcome, deciderSpec } from "./decider-spec.js";
export {
  type AggregateBackend,
  describeEventSourcedRepositoryContract,
  type EventSourcedRepositoryContractOptions,
} from "./event-sourced-contract.js";
export {
  describeEventStoreContract,
  type EventStoreContractOptions,
  type EventStoreFactory,
} from "./event-store-contract.js";
export {
  describeReadModelStoreContract,
  type ReadModelStoreContractOptions,
  type ReadModelStoreFactoryOptions,
  readModelMetadata,
} from "./read-model-contract.js";
export type { ReadModelStoreFactory } from "./read-model-fixtures.js";
export {
  type ContractAggregate,
  describeRepositoryContract,
  type RepositoryContractOptions,
  type RepositoryFactoryOptions,
} from "./repository-contract.js";
export { describeSnapshotStoreContract, type SnapshotStoreContractOptions } from "./snapshot-store-contract.js";
export {
  describeStoreContract,
  HOSTILE_IDS,
  HOSTILE_NAMES,
  type StoreContractOptions,
  uniqueName,
} from "./store-contract.js";
