/** The seed's builder for {@link NatsKvRepository}. */
import type { NatsConnection } from "@nats-io/transport-node";
import { ConfigurationError } from "../core/errors.js";
import { NatsKvRepository, type NatsKvRepositoryOptions } from "./repository.js";

/** The seed's builder: `.client(nc).bucketName("b").aggregateType("T").history(20).ttlSeconds(3600).build()`. */
export class NatsKvRepositoryBuilder<T> {
  #options: Partial<NatsKvRepositoryOptions<T>> = {};
  /** The NATS connection (required). */
  client(client: NatsConnection): this {
    this.#options.client = client;
    return this;
  }
  /** The KV bucket (required). */
  bucketName(name: string): this {
    this.#options.bucketName = name;
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
  /** Other options (replicas, storage, perSaveTtl…). */
  options(options: Partial<NatsKvRepositoryOptions<T>>): this {
    this.#options = { ...this.#options, ...options };
    return this;
  }
  /** @throws ConfigurationError when client, bucketName or aggregateType is missing */
  build(): Promise<NatsKvRepository<T>> {
    const o = this.#options;
    const missing = (["client", "bucketName", "aggregateType"] as const).filter((k) => !o[k]);
    if (missing.length > 0) {
      return Promise.reject(
        new ConfigurationError(`NatsKvRepositoryBuilder needs ${missing.join(", ")} before build()`),
      );
    }
    return NatsKvRepository.create(o as NatsKvRepositoryOptions<T>);
  }
}
