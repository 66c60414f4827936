/**
 * Projections: how events become read models. A projection names the
 * event types it handles, which model an event belongs to (`id`) and how
 * the model changes (`evolve`); the {@link Projector} runs it.
 */

import type { RecordedEvent } from "../events/index.js";
import type { ReadModelStore } from "./types.js";

/** A projection: events of some types, from some streams, folded into one read model per id. */
export interface Projection<M = unknown, D = unknown> {
  /** Unique name (its status and checkpoint are kept under it). No `~`. */
  readonly name: string;
  /** The event types it handles; others are skipped (its checkpoint still advances). */
  readonly handles: readonly string[];
  /** The model type it writes, e.g. `"OrderSummary"`. No `~`. */
  readonly modelType: string;
  /** The version of the model's schema, stored in each model's metadata. @default 1 */
  readonly schemaVersion?: number | undefined;
  /** Only events of this stream. @default every stream */
  readonly stream?: string | undefined;
  /** Only events of streams whose id starts with this. @default every stream */
  readonly streamPrefix?: string | undefined;
  /** The id of the model `event` changes. */
  id(event: RecordedEvent<D>): string;
  /**
   * The model after `event` (`model` is `undefined` when there is none
   * yet); `null` deletes it (`undefined` fails the projection at that
   * event: an `ApplyError` whose cause is a `ValidationError`). Must not mutate `model` (return a new one):
   * a failed call is retried on the same input. What it returns must not
   * change after it returns: a store that keeps its models in memory may
   * keep that object as the stored model.
   */
  evolve(model: M | undefined, event: RecordedEvent<D>): M | null | Promise<M | null>;
}

/** A read-model store that writes models and a projection's status in one atomic step (`capabilities.atomicCheckpoint`). */
export type AtomicCheckpointStore = ReadModelStore & Required<Pick<ReadModelStore, "saveWithCheckpoint">>;

/** True when `store` can write models and a checkpoint atomically. */
export function hasAtomicCheckpoint(store: ReadModelStore): store is AtomicCheckpointStore {
  return store.capabilities.atomicCheckpoint && typeof store.saveWithCheckpoint === "function";
}

/** The model type under which the projector keeps each projection's active generation (id: the projection's name). */
export const GENERATION_MODEL_TYPE = "statelog.projection";

/** The separator of generations in stored model types and status names: `OrderSummary~2`. */
export const GENERATION_SEPARATOR = "~";

/** The stored model type of `modelType`'s generation `generation` (generation 0: `modelType` itself). */
export function generationModelType(modelType: string, generation: number): string {
  return generation === 0 ? modelType : `${modelType}${GENERATION_SEPARATOR}${generation}`;
}

/** The status record holding the checkpoint of a projection's generation (generation 0: its name). */
export function generationStatusName(name: string, generation: number): string {
  return generation === 0 ? name : `${name}${GENERATION_SEPARATOR}${generation}`;
}

/** What the projector stores under {@link GENERATION_MODEL_TYPE}: the active generation, and a rebuild's. */
export interface GenerationPointer {
  /** The generation queries read. */
  readonly active: number;
  /** A rebuild in progress into this generation. */
  readonly rebuilding?: number | undefined;
  /** Older generations whose models are still being removed. */
  readonly retired?: readonly number[] | undefined;
}
