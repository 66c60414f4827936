/**
 * The options of a NATS repository, their checks, and opening (or
 * creating) its KV bucket with the settings checked against an existing one.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { ConfigurationError, messageOf, OptionChecker, STORE_DEFAULTS, validateEntityType } from "../index.js";
import { checkRepositoryOptions, type RepositoryOptions } from "../repository/index.js";
import { loadNatsModules } from "./client.js";
import { bucketCreation, creationRefusal, natsError } from "./errors.js";
import { natsInternalsOf } from "./internal.js";
import { checkPlacement, MAX_MAX_AGE_MS, MIN_MAX_AGE_MS, NatsStorage } from "./options.js";
import { bucketValueLimit } from "./payload.js";
import { kvBucketPlacement, NatsFeature, requireFeature, requireReplicatedCompareAndSet } from "./server.js";

/** Options of `NatsKvRepository.open` and `NatsSimpleRepository.open`. */
export interface NatsKvRepositoryOptions<T> extends RepositoryOptions<T> {
  /** An open NATS connection (required); the repository never closes it. */
  client: NatsConnection;
  /** KV bucket (`[-_a-zA-Z0-9]`, required), created with `history` and `ttlSeconds` if missing. */
  bucket: string;
  /** Aggregate type (required): the first key token, so several types can share a bucket. */
  aggregateType: string;
  /** Versions kept per aggregate (saves and deletes), 1–64. @default 1 */
  history?: number;
  /** Seconds after which a saved version expires (the bucket's `max_age`); 0 = never. @default 0 */
  ttlSeconds?: number;
  /**
   * Largest aggregate, in bytes of UTF-8 JSON. Without it, the largest the
   * server carries: its `max_payload` minus {@link REPOSITORY_ENVELOPE_BYTES},
   * at most 1 MiB. A limit the server cannot carry is refused by `open`.
   * @default min(1048576, max_payload - 256)
   */
  maxValueBytes?: number;
  /** Replicas of a bucket this call creates (1 to 5). @default 1 */
  replicas?: number;
  /** Storage of a bucket this call creates. @default "file" */
  storage?: NatsStorage;
  /**
   * Allow `save(…, { ttlSeconds })` (per-message TTL). Needs nats-server
   * 2.11+; on an older server `open` fails with an `UnsupportedError`.
   * @default false
   */
  perSaveTtl?: boolean;
  /** Compare-and-set attempts of a save without `expectedVersion` under contention (an integer >= 1). @default 100 */
  maxCasAttempts?: number;
}

/** Defaults of {@link NatsKvRepositoryOptions}. */
export const NATS_KV_REPOSITORY_DEFAULTS = {
  /** @default 1 */
  history: 1,
  /** @default 0 (no expiry) */
  ttlSeconds: 0,
  /** The largest default limit; less when the server's `max_payload` cannot carry it. @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /** @default 1 */
  replicas: 1,
  /** @default "file" */
  storage: NatsStorage.File,
  /** @default false */
  perSaveTtl: false,
  /** @default 100 */
  maxCasAttempts: 100,
} as const;

/** The options a NATS repository adds to those of every repository (`REPOSITORY_OPTION_NAMES`). */
const OWN_OPTION_NAMES = ["client", "bucket", "aggregateType", "replicas", "storage", "perSaveTtl", "maxCasAttempts"];
/** The builder's spelling of `bucket` (the old spellings of every repository are known to `checkRepositoryOptions`). */
const RENAMED_OPTIONS: Readonly<Record<string, string>> = { bucketName: "bucket" };

/**
 * An upper bound of what a repository write adds to an aggregate's JSON, in
 * bytes: the record `{"version":…,"savedAt":"…","aggregate":…}` (81 at most)
 * and the headers (`Nats-Expected-Last-Subject-Sequence`, `Nats-TTL`: 96 at most).
 */
export const REPOSITORY_ENVELOPE_BYTES = 256;

/** The checked options of a repository. */
export interface RepositorySettings<T> {
  readonly client: NatsConnection;
  readonly bucket: string;
  readonly aggregateType: string;
  readonly idOf: (aggregate: T) => string;
  readonly history: number;
  readonly ttlSeconds: number;
  readonly maxValueBytes: number;
  readonly maxValueBytesGiven: boolean;
  readonly replicas: number;
  readonly storage: NatsStorage;
  readonly perSaveTtl: boolean;
  readonly maxCasAttempts: number;
  /** The class, for messages. */
  readonly owner: string;
  /** The internal opt-in of statelog's tests: a replicated bucket on any server (see internal.ts). */
  readonly replicatedCasOnAnyServer: boolean;
}

/** The shortest TTL nats-server takes (its shortest `max_age`), in seconds. */
const MIN_TTL_SECONDS = MIN_MAX_AGE_MS / 1000;
/** The longest TTL nats-server can hold (its longest `max_age`), in whole seconds. */
export const MAX_TTL_SECONDS = Math.floor(MAX_MAX_AGE_MS / 1000);

/**
 * Checks a repository's options, without I/O.
 * @param owner the class name, for messages
 * @throws ConfigurationError naming the option, what it accepts and what it got
 * @throws UnsupportedError when `perSaveTtl` needs a newer server, or `replicas` > 1 one whose compare-and-set holds
 *   on replicated streams (`NatsFeature.ReplicatedCompareAndSet`)
 */
export function checkNatsRepositoryOptions<T>(
  options: NatsKvRepositoryOptions<T>,
  owner: string,
): RepositorySettings<T> {
  // The options of every repository (names, idOf, history, ttlSeconds, maxValueBytes), then this backend's.
  const shared = checkRepositoryOptions(owner, options, OWN_OPTION_NAMES, RENAMED_OPTIONS);
  const check = new OptionChecker(owner, options, NATS_KV_REPOSITORY_DEFAULTS);
  const { name: bucket, ...place } = checkPlacement(check, options, "KV bucket", REPOSITORY_ENVELOPE_BYTES);
  const aggregateType = check.custom<"aggregateType", string>("aggregateType", (v) => {
    try {
      validateEntityType(v);
      return undefined;
    } catch (error) {
      return `an aggregate type name (${messageOf(error)})`;
    }
  });
  // The bucket's max_age: the server refuses less than 100 ms, and counts nanoseconds in an int64.
  check.custom("ttlSeconds", (v) =>
    v === undefined || v === 0 || ((v as number) >= MIN_TTL_SECONDS && (v as number) <= MAX_TTL_SECONDS)
      ? undefined
      : `0 (never) or a number of seconds from ${MIN_TTL_SECONDS} to ${MAX_TTL_SECONDS} (the bucket's max_age)`,
  );
  const settings: RepositorySettings<T> = {
    ...place,
    bucket,
    aggregateType,
    idOf: shared.idOf,
    history: shared.history,
    ttlSeconds: shared.ttlSeconds,
    perSaveTtl: check.boolean("perSaveTtl"),
    maxCasAttempts: check.integer("maxCasAttempts", { min: 1 }),
    owner,
    replicatedCasOnAnyServer: natsInternalsOf(options).replicatedCasOnAnyServer === true,
  };
  if (settings.perSaveTtl) requireFeature(place.client, NatsFeature.PerMessageTtl);
  // Every write is a compare-and-set: refused before anything is created on a server where it does not hold.
  requireReplicatedCompareAndSet(place.client, casPlacement(settings, settings.replicas, false));
  return settings;
}

/** The bucket of `settings` as {@link requireReplicatedCompareAndSet} takes it. */
function casPlacement<T>(settings: RepositorySettings<T>, replicas: number, found: boolean) {
  return kvBucketPlacement(settings.owner, settings.bucket, settings.replicatedCasOnAnyServer, replicas, found);
}

/** What {@link openBucket} found. */
export interface OpenedBucket {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** New message headers (the client's `headers()`). */
  headers: () => MsgHdrs;
  durable: boolean;
  /** Direct gets may serve reads: an R1 bucket (on a replicated one a follower could answer stale). */
  direct: boolean;
  /** More than one replica: reads go to the stream leader or are checked against it (reader.ts). */
  replicated: boolean;
  /** The size limit in effect: the settings' `maxValueBytes`, lowered to fit the bucket's own largest message. */
  maxValueBytes: number;
}

/**
 * Creates the bucket if missing, or checks that the existing one has the
 * requested history and TTL.
 * @throws UnsupportedError for an existing replicated bucket on a server whose compare-and-set does not hold there
 * @throws ConfigurationError | PeerMissingError | UnavailableError
 */
export async function openBucket<T>(settings: RepositorySettings<T>): Promise<OpenedBucket> {
  const { client, bucket, history, ttlSeconds } = settings;
  const nats = await loadNatsModules();
  const ttlMs = Math.round(ttlSeconds * 1000);
  try {
    const jsm = await nats.jetstream.jetstreamManager(client);
    const kv = await new nats.kv.Kvm(client)
      .create(bucket, { history, ttl: ttlMs, replicas: settings.replicas, storage: settings.storage })
      .catch((error: unknown) => {
        throw creationRefusal(error, bucketCreation(settings.owner, bucket, settings.replicas));
      });
    const status = await kv.status();
    // An existing bucket's replicas, before anything is changed in it.
    requireReplicatedCompareAndSet(client, casPlacement(settings, status.streamInfo.config.num_replicas, true));
    if (status.history !== history || status.ttl !== ttlMs) {
      throw new ConfigurationError(
        `KV bucket ${JSON.stringify(bucket)} exists with history ${status.history} and TTL ${status.ttl / 1000}s, ` +
          `not the requested history ${history} and TTL ${ttlSeconds}s: use another bucket or the same settings`,
      );
    }
    if (settings.perSaveTtl && status.streamInfo.config.allow_msg_ttl !== true) {
      const update = { ...status.streamInfo.config, allow_msg_ttl: true };
      await jsm.streams.update(update.name, update);
    }
    const config = status.streamInfo.config;
    return {
      js: nats.jetstream.jetstream(client),
      jsm,
      headers: nats.transport.headers,
      durable: status.storage === NatsStorage.File,
      direct: config.allow_direct === true && config.num_replicas === 1,
      replicated: config.num_replicas !== 1,
      // An existing bucket's own largest message bounds an aggregate as the server's max_payload does.
      maxValueBytes: bucketValueLimit(
        settings.maxValueBytes,
        settings.maxValueBytesGiven,
        config.max_msg_size,
        REPOSITORY_ENVELOPE_BYTES,
        `KV bucket ${JSON.stringify(bucket)}`,
      ),
    };
  } catch (error) {
    throw natsError(error, `opening KV bucket ${JSON.stringify(bucket)}`);
  }
}
