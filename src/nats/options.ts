/** Option checks every NATS class shares: the client, bucket and stream names, replicas, storage. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { OptionChecker } from "../index.js";

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

/** A bucket or stream name option: one legal token, `[-_a-zA-Z0-9]`. */
export function checkStreamName<O extends object, K extends keyof O & string>(
  check: OptionChecker<O>,
  name: K,
  what: "KV bucket" | "JetStream stream",
): string {
  return check.custom<K, string>(name, (v) =>
    typeof v === "string" && /^[-\w]+$/.test(v) ? undefined : `a ${what} name of [-_a-zA-Z0-9] (one or more)`,
  );
}
