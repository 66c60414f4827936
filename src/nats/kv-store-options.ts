/** The options of `NatsKvStore.open`, their defaults and their checks. */
import type { NatsConnection } from "@nats-io/transport-node";
import { BASE_STORE_OPTION_NAMES, type BaseStoreOptions, OptionChecker, STORE_DEFAULTS } from "../index.js";
import { checkPlacement, NatsStorage } from "./options.js";

/** Options of `NatsKvStore.open`. */
export interface NatsKvStoreOptions extends BaseStoreOptions {
  /** An open NATS connection (required). The store never closes it. */
  client: NatsConnection;
  /**
   * KV bucket name (`[-_a-zA-Z0-9]`); created if missing, its stream is `KV_<bucket>`.
   * @default "statelog"
   */
  bucket?: string;
  /** Replicas of a bucket this call creates (1 to 5; 3 in a cluster). @default 1 */
  replicas?: number;
  /**
   * Storage of a bucket this call creates: `"file"` survives a server
   * restart, `"memory"` does not. @default "file"
   */
  storage?: NatsStorage;
  /** Publishes awaiting their acknowledgement at once during a `save` (an integer >= 1). @default 1024 */
  maxInFlight?: number;
  /**
   * Revisions kept per key by a bucket this call creates (1–64). With 1 the
   * bucket compacts itself on every write; more keeps older revisions
   * (`nats kv history`) until `compact`. @default 1
   */
  history?: number;
  /**
   * Largest entity, in bytes of UTF-8 JSON. Without it, the largest value
   * the server carries: its `max_payload` minus {@link STORE_ENVELOPE_BYTES},
   * at most 1 MiB. A limit the server cannot carry is refused by `open`.
   * @default min(1048576, max_payload - 72)
   */
  maxValueBytes?: number;
}

/** Defaults of {@link NatsKvStoreOptions}. */
export const NATS_KV_STORE_DEFAULTS = {
  /** @default "statelog" */
  bucket: "statelog",
  /** @default 1 */
  replicas: 1,
  /** @default "file" */
  storage: NatsStorage.File,
  /** @default 1024 */
  maxInFlight: 1024,
  /** @default 1 */
  history: 1,
  /** The largest default limit; less when the server's `max_payload` cannot carry it. @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
} as const;

/** The option names `NatsKvStore.open` accepts. */
const OPTION_NAMES = [...BASE_STORE_OPTION_NAMES, "client", "bucket", "replicas", "storage", "maxInFlight", "history"];

/**
 * The largest envelope around an entity's JSON, in bytes:
 * `{"changeType":"set","timestamp":"<27 chars at most>","entity":` and `}`.
 * A KV put carries no headers.
 */
export const STORE_ENVELOPE_BYTES = 72;

/** The checked options of a {@link NatsKvStore}. */
export interface KvStoreSettings {
  client: NatsConnection;
  bucket: string;
  replicas: number;
  storage: NatsStorage;
  maxInFlight: number;
  history: number;
  maxValueBytes: number;
  maxValueBytesGiven: boolean;
}

/**
 * Checks the options of a store, without I/O (the common ones are checked
 * again by `BaseStore`).
 * @throws ConfigurationError naming the option, what it accepts and what it got
 */
export function checkKvStoreOptions(options: NatsKvStoreOptions): KvStoreSettings {
  const check = new OptionChecker("NatsKvStore", options, NATS_KV_STORE_DEFAULTS).known(OPTION_NAMES, {
    bucketName: "bucket",
  });
  const { name: bucket, ...place } = checkPlacement(check, options, "KV bucket", STORE_ENVELOPE_BYTES);
  return {
    ...place,
    bucket,
    maxInFlight: check.integer("maxInFlight", { min: 1 }),
    history: check.integer("history", { min: 1, max: 64 }),
  };
}
