/** Option checks every NATS class shares: the client, bucket and stream names, replicas, storage, the value limit. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { OptionChecker } from "../index.js";
import { valueLimitFor } from "./payload.js";

/** Where a bucket or stream this package creates keeps its data. */
export const NatsStorage = {
  /** On disk: survives a server restart. */
  File: "file",
  /** In the server's memory: lost when it restarts. */
  Memory: "memory",
} as const;
export type NatsStorage = (typeof NatsStorage)[keyof typeof NatsStorage];

/** Most replicas JetStream allows for a stream. */
export const MAX_REPLICAS = 5;

/** The `client` option: an open NATS connection. */
export function checkClient<O extends { client: NatsConnection }>(check: OptionChecker<O>): NatsConnection {
  return check.custom<"client" & keyof O, NatsConnection>("client", (v) =>
    typeof v === "object" &&
    v !== null &&
    typeof (v as NatsConnection).publish === "function" &&
    typeof (v as NatsConnection).request === "function"
      ? undefined
      : "an open NATS connection (a NatsConnection from connect() of @nats-io/transport-node)",
  );
}

/** The shortest `max_age` of a stream or bucket nats-server takes, in ms. */
export const MIN_MAX_AGE_MS = 100;
/** The longest `max_age` nats-server can hold (2^63 − 1 ns), in whole ms. */
export const MAX_MAX_AGE_MS = 9_223_372_036_854;

/** The longest JetStream stream name the server accepts. */
const MAX_STREAM_NAME_LENGTH = 255;

/**
 * A bucket or stream name option: one legal token, `[-_a-zA-Z0-9]`, that
 * the server accepts as a stream name (a bucket's stream is `KV_<bucket>`).
 */
export function checkStreamName<O extends object, K extends keyof O & string>(
  check: OptionChecker<O>,
  name: K,
  what: "KV bucket" | "JetStream stream",
): string {
  const max = MAX_STREAM_NAME_LENGTH - (what === "KV bucket" ? "KV_".length : 0);
  return check.custom<K, string>(name, (v) =>
    typeof v === "string" && /^[-\w]+$/.test(v) && v.length <= max
      ? undefined
      : `a ${what} name of [-_a-zA-Z0-9] (1 to ${max} characters)`,
  );
}

/** The options every NATS class has: where its data lives, and its value limit. */
export interface NatsPlacementOptions {
  client: NatsConnection;
  replicas?: number;
  storage?: NatsStorage;
  maxValueBytes?: number;
}

/** The checked {@link NatsPlacementOptions}, with the bucket or stream name. */
export interface NatsPlacement {
  readonly client: NatsConnection;
  /** The bucket or stream. */
  readonly name: string;
  readonly replicas: number;
  readonly storage: NatsStorage;
  /** The `maxValueBytes` option checked against the server, or the largest the server carries (at most the default). */
  readonly maxValueBytes: number;
  /** Whether `maxValueBytes` was given (else the limit follows the server, and the bucket: see `bucketValueLimit`). */
  readonly maxValueBytesGiven: boolean;
}

/**
 * Checks what every NATS class checks first, without I/O: `client`, the
 * `bucket` or `stream` option, `replicas`, `storage`, and `maxValueBytes`
 * against the server's `max_payload` less `envelopeBytes`.
 * @throws ConfigurationError naming `check`'s owner and the option
 */
export function checkPlacement<O extends NatsPlacementOptions>(
  check: OptionChecker<O>,
  options: O,
  /** A KV bucket (option `bucket`) or a JetStream stream (option `stream`). */
  what: "KV bucket" | "JetStream stream",
  /** Room for the envelope around a value, in bytes. */
  envelopeBytes: number,
): NatsPlacement {
  const c = check as unknown as OptionChecker<NatsPlacementOptions & Record<string, unknown>>;
  const option = what === "KV bucket" ? "bucket" : "stream";
  const client = checkClient(c);
  const name = checkStreamName(c, option, what);
  // Without the option, the limit follows the server (at most the default).
  const given = options.maxValueBytes === undefined ? undefined : c.integer("maxValueBytes", { min: 1 });
  return {
    client,
    name,
    replicas: c.integer("replicas", { min: 1, max: MAX_REPLICAS }),
    storage: c.oneOf("storage", NatsStorage),
    maxValueBytes: valueLimitFor(
      client,
      given,
      (c.defaults as { maxValueBytes: number }).maxValueBytes,
      envelopeBytes,
      `${c.owner} ${option} ${JSON.stringify(name)}`,
    ),
    maxValueBytesGiven: given !== undefined,
  };
}
