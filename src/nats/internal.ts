/**
 * Internal options of the NATS classes, for statelog's own tests. They are
 * not part of any class's options and `statelog/nats` does not export this
 * module: a test imports it by path and passes them with
 * {@link withNatsInternals}.
 *
 * @example
 * const repo = await NatsKvRepository.open(
 *   withNatsInternals({ client, bucket, aggregateType, replicas: 3 }, { replicatedCasOnAnyServer: true }),
 * );
 */

/**
 * The key of the internal options in an options object: a symbol of this module alone (not of the global
 * registry), so that only code that imports this module can pass them.
 */
export const NATS_INTERNAL: unique symbol = Symbol("statelog.nats.internal");

/** The internal options. */
export interface NatsInternals {
  /**
   * Open a repository, event store, read-model store or snapshot store on a
   * replicated bucket or stream even when the connected server is older
   * than the compare-and-set on replicated streams needs
   * (`NatsFeature.ReplicatedCompareAndSet`). The cluster tests run on such a
   * server, and test what does not rest on concurrent compare-and-sets.
   * @default false
   */
  readonly replicatedCasOnAnyServer?: boolean | undefined;
}

/** `options` with internal options added. */
export function withNatsInternals<T extends object>(options: T, internals: NatsInternals): T {
  return Object.assign({ ...options }, { [NATS_INTERNAL]: internals });
}

/** The internal options given with `options` (none: `{}`). */
export function natsInternalsOf(options: object | undefined): NatsInternals {
  const internals = (options as { [NATS_INTERNAL]?: NatsInternals } | undefined)?.[NATS_INTERNAL];
  return typeof internals === "object" && internals !== null ? internals : {};
}
