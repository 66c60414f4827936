/**
 * `statelog/testing`: the conformance suites every backend passes, for
 * use with vitest. Run them against your own Store implementation too.
 */
export {
  describeStoreContract,
  HOSTILE_IDS,
  HOSTILE_NAMES,
  type StoreContractOptions,
  uniqueName,
} from "./store-contract.js";
