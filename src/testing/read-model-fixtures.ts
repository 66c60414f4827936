/** What the read-model suite shares between its files: its options, its factory and its fixtures. */
import type { ProjectionStatusRecord, ReadModelMetadata, ReadModelStore } from "../read-models/index.js";

/** What the suite asks its factory for. */
export interface ReadModelStoreFactoryOptions {
  /** Index paths to declare (a store without indexes ignores them). */
  indexes: readonly string[];
}

/** Options of `describeReadModelStoreContract`. */
export interface ReadModelStoreContractOptions {
  /**
   * Closes `store` and opens it again on the same data: enables the
   * durability tests (for a store whose capabilities say `durable`).
   */
  reopen?: (store: ReadModelStore, config: ReadModelStoreFactoryOptions) => Promise<ReadModelStore>;
  /** Random model sets of the model-based query test. @default 40 */
  queryRuns?: number;
  /** Per-test timeout in ms. @default 30000 */
  timeoutMs?: number;
}

export type ReadModelStoreFactory = (config: ReadModelStoreFactoryOptions) => Promise<ReadModelStore>;

/** Metadata for model `id` of `modelType`. */
export function readModelMetadata(modelType: string, id: string, lastEventPosition = 1): ReadModelMetadata {
  return {
    id,
    modelType,
    schemaVersion: 2,
    lastUpdated: new Date("2025-03-04T05:06:07.089Z"),
    lastEventPosition,
    metadata: { source: "contract" },
  };
}

export const statusRecord = (name: string, checkpoint: number): ProjectionStatusRecord => ({
  name,
  status: "up_to_date",
  checkpoint,
  updatedAt: new Date("2025-01-02T03:04:05.006Z"),
});
