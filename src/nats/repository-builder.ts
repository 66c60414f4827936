/**
 * The builder of a {@link NatsKvRepository}, a chained spelling of
 * `NatsKvRepository.open(options)`:
 * `NatsKvRepository.builder().client(nc).bucketName("b").aggregateType("T").history(20).ttlSeconds(3600).build()`.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { ConfigurationError } from "../index.js";
import type { NatsKvRepository } from "./repository.js";
import type { NatsKvRepositoryOptions } from "./repository-bucket.js";

/** Builds a {@link NatsKvRepository}; get one from `NatsKvRepository.builder()`. */
export class NatsKvRepositoryBuilder<T> {
  #options: Partial<NatsKvRepositoryOptions<T>> = {};
  readonly #open: (options: NatsKvRepositoryOptions<T>) => Promise<NatsKvRepository<T>>;

  /** @internal `NatsKvRepository.builder()` creates builders. */
  constructor(open: (options: NatsKvRepositoryOptions<T>) => Promise<NatsKvRepository<T>>) {
    this.#open = open;
  }

  /** The NATS connection (required): the `client` option. */
  client(client: NatsConnection): this {
    this.#options.client = client;
    return this;
  }
  /** The KV bucket (required): the `bucket` option. */
  bucketName(name: string): this {
    this.#options.bucket = name;
    return this;
  }
  /** The aggregate type (required). */
  aggregateType(name: string): this {
    this.#options.aggregateType = name;
    return this;
  }
  /** Versions kept per aggregate, 1–64. @default 1 */
  history(n: number): this {
    this.#options.history = n;
    return this;
  }
  /** Expiry in seconds; 0 = never. @default 0 */
  ttlSeconds(seconds: number): this {
    this.#options.ttlSeconds = seconds;
    return this;
  }
  /** How to get an aggregate's id. @default `aggregate.id` */
  idOf(fn: (aggregate: T) => string): this {
    this.#options.idOf = fn;
    return this;
  }
  /** Other options of {@link NatsKvRepositoryOptions} (replicas, storage, perSaveTtl…). */
  options(options: Partial<NatsKvRepositoryOptions<T>>): this {
    this.#options = { ...this.#options, ...options };
    return this;
  }
  /**
   * Opens the repository: `NatsKvRepository.open` with the options set so far.
   * @throws ConfigurationError when client, bucketName or aggregateType is missing, or an option is invalid
   */
  build(): Promise<NatsKvRepository<T>> {
    const o = this.#options;
    const missing = [
      o.client === undefined ? "client" : "",
      o.bucket === undefined ? "bucketName" : "",
      o.aggregateType === undefined ? "aggregateType" : "",
    ].filter(Boolean);
    if (missing.length > 0) {
      return Promise.reject(
        new ConfigurationError(`NatsKvRepositoryBuilder needs ${missing.join(", ")} before build()`),
      );
    }
    return this.#open(o as NatsKvRepositoryOptions<T>);
  }
}
