/** Opens (or creates) the KV bucket of a NATS repository and checks its settings. */
import type { JetStreamManager } from "@nats-io/jetstream";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { ConfigurationError } from "../core/errors.js";
import { DEFAULT_MAX_VALUE_BYTES, validateEntityType } from "../core/validation.js";
import { checkRepositoryLimits } from "../repository/types.js";
import { natsError } from "./errors.js";
import { requirePayloadFits } from "./payload.js";
import type { NatsKvRepositoryOptions } from "./repository.js";
import { NatsFeature, requireFeature } from "./server.js";

/**
 * An upper bound of what a repository write adds to an aggregate's JSON, in
 * bytes: the record `{"version":…,"savedAt":"…","aggregate":…}` (81 at most)
 * and the headers (`Nats-Expected-Last-Subject-Sequence`, `Nats-TTL`: 96 at most).
 */
export const REPOSITORY_ENVELOPE_BYTES = 256;

/** What {@link openBucket} found. */
export interface OpenedBucket {
  jsm: JetStreamManager;
  durable: boolean;
  /** Direct gets may serve reads: an R1 bucket (on a replicated one a follower could answer stale). */
  direct: boolean;
  /** More than one replica: reads go to the stream leader or are checked against it (reader.ts). */
  replicated: boolean;
}

/**
 * Creates the bucket if missing, or checks that the existing one has the
 * requested history and TTL.
 * @throws ConfigurationError | UnsupportedError | UnavailableError
 */
export async function openBucket<T>(options: NatsKvRepositoryOptions<T>): Promise<OpenedBucket> {
  if (!options?.client) throw new ConfigurationError("a NATS repository needs a `client` (an open NATS connection)");
  if (typeof options.bucketName !== "string" || !/^[-\w]+$/.test(options.bucketName)) {
    throw new ConfigurationError(`invalid KV bucket name ${JSON.stringify(options.bucketName)}: use [-_a-zA-Z0-9]`);
  }
  validateEntityType(options.aggregateType);
  const history = options.history ?? 1;
  const ttlSeconds = options.ttlSeconds ?? 0;
  try {
    checkRepositoryLimits(history, ttlSeconds);
  } catch (error) {
    throw new ConfigurationError((error as Error).message, { cause: error });
  }
  requirePayloadFits(
    options.client,
    options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
    REPOSITORY_ENVELOPE_BYTES,
    "maxValueBytes",
    `NATS repository bucket ${JSON.stringify(options.bucketName)}`,
  );
  if (options.perSaveTtl) requireFeature(options.client, NatsFeature.PerMessageTtl);
  const ttlMs = Math.round(ttlSeconds * 1000);
  try {
    const jsm = await jetstreamManager(options.client);
    const kv = await new Kvm(options.client).create(options.bucketName, {
      history,
      ttl: ttlMs,
      replicas: options.replicas ?? 1,
      storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
    });
    const status = await kv.status();
    if (status.history !== history || status.ttl !== ttlMs) {
      throw new ConfigurationError(
        `KV bucket ${JSON.stringify(options.bucketName)} exists with history ${status.history} and TTL ${status.ttl / 1000}s, ` +
          `not the requested history ${history} and TTL ${ttlSeconds}s: use another bucket or the same settings`,
      );
    }
    if (options.perSaveTtl && status.streamInfo.config.allow_msg_ttl !== true) {
      const update = { ...status.streamInfo.config, allow_msg_ttl: true };
      await jsm.streams.update(update.name, update);
    }
    const config = status.streamInfo.config;
    return {
      jsm,
      durable: status.storage === StorageType.File,
      direct: config.allow_direct === true && config.num_replicas === 1,
      replicated: config.num_replicas !== 1,
    };
  } catch (error) {
    throw natsError(error, `opening KV bucket ${JSON.stringify(options.bucketName)}`);
  }
}
