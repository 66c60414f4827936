/**
 * `statelog/testing`: the conformance suites every backend passes, for
 * use with vitest. Run them against your own Store implementation too.
 */

export { describeEventStoreContract, type EventStoreContractOptions } from "./event-store-contract.js";
export {
  type ContractAggregate,
  describeRepositoryContract,
  type RepositoryConfig,
  type RepositoryContractOptions,
} from "./repository-contract.js";
export {
  describeStoreContract,
  HOSTILE_IDS,
  HOSTILE_NAMES,
  type StoreContractOptions,
  uniqueName,
} from "./store-contract.js";
