/**
 * `ReadModels`: reading the models a {@link Projector} keeps, through each
 * projection's active generation. During a rebuild the new generation is
 * written under another stored model type (`OrderSummary~2`); queries made
 * here read the active one until the switch and the new one after it, so a
 * query never mixes two generations.
 */
import type { CallOptions } from "../index.js";
import { generationModelType } from "./projection.js";
import type { Query, QueryResult, ReadModelStore, StoredReadModel } from "./types.js";

/** Read access to projected models by their projection's model type. */
export class ReadModels {
  readonly #generationOf: (modelType: string) => number;

  /** @internal the projector creates it (`projector.models`) */
  constructor(
    /** The store the models are in. */
    readonly store: ReadModelStore,
    generationOf: (modelType: string) => number,
  ) {
    this.#generationOf = generationOf;
  }

  /** The stored model type the projection's `modelType` is read from now. */
  storedModelType(modelType: string): string {
    return generationModelType(modelType, this.#generationOf(modelType));
  }

  #relabel<M>(modelType: string, stored: StoredReadModel<M>): StoredReadModel<M> {
    return stored.metadata.modelType === modelType
      ? stored
      : { ...stored, metadata: { ...stored.metadata, modelType } };
  }

  /** The model, its metadata and revision, or `undefined`. */
  async load<M>(modelType: string, id: string, options?: CallOptions): Promise<StoredReadModel<M> | undefined> {
    const stored = await this.store.load<M>(this.storedModelType(modelType), id, options);
    return stored && this.#relabel(modelType, stored);
  }

  /** The ids of the models of `modelType`, sorted. */
  list(modelType: string, options?: CallOptions): Promise<string[]> {
    return this.store.list(this.storedModelType(modelType), options);
  }

  /** Runs a query on the active generation of `query.modelType`. */
  async query<M>(query: Query, options?: CallOptions): Promise<QueryResult<M>> {
    const result = await this.store.query<M>({ ...query, modelType: this.storedModelType(query.modelType) }, options);
    return { ...result, items: result.items.map((m) => this.#relabel(query.modelType, m)) };
  }
}
