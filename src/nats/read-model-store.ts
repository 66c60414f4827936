/**
 * `NatsReadModelStore`: CQRS read models with their metadata, and one
 * projection status per model type, in a KV bucket.
 *
 * Keys: a read model is `m.<modelType>.<id>`, a projection status is
 * `s.<modelType>` (each name encoded by `encodeToken`). The first token
 * differs, so no read-model id can ever collide with a status.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CallOptions,
  ClosedError,
  CorruptionError,
  OptionChecker,
  STORE_DEFAULTS,
  TooLargeError,
  throwIfAborted,
  toJsonWithin,
  ValidationError,
  validateEntityId,
  validateEntityType,
} from "../index.js";
import { loadNatsModules } from "./client.js";
import { natsError } from "./errors.js";
import { decodeToken, encodeToken } from "./keys.js";
import { checkPlacement, NatsStorage } from "./options.js";
import { serverMaxPayload } from "./payload.js";
import { keepLastPerKey, readFiltered } from "./reader.js";

/** Where a projection stands. */
export const ProjectionStatus = {
  /** Every event up to the stream's end is applied. */
  UpToDate: "up_to_date",
  /** Applying a backlog of events. */
  CatchingUp: "catching_up",
  /** Rebuilding from the start. */
  Rebuilding: "rebuilding",
  /** Stopped on an error. */
  Failed: "failed",
} as const;
export type ProjectionStatus = (typeof ProjectionStatus)[keyof typeof ProjectionStatus];

/** Metadata stored with a read model. */
export interface ReadModelMetadata {
  /** The read model's id. */
  readonly id: string;
  /** Its type, e.g. `"ProductStats"`. */
  readonly modelType: string;
  /** Version of the model's schema, for evolving read models. */
  readonly schemaVersion: number;
  /** When it was last updated. */
  readonly lastUpdated: Date;
  /** Global position of the last event applied to it. */
  readonly lastEventPosition: number;
  /** Free-form string metadata. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A stored projection status. */
export interface ProjectionStatusRecord {
  readonly modelType: string;
  readonly status: ProjectionStatus;
  /** When it was set. */
  readonly updatedAt: Date;
}

/** Options of {@link NatsReadModelStore.open}. */
export interface NatsReadModelStoreOptions {
  /** An open NATS connection (required); never closed by the store. */
  client: NatsConnection;
  /** KV bucket (`[-_a-zA-Z0-9]`), created if missing. @default "read-models" */
  bucket?: string;
  /** Replicas of a bucket this call creates (1 to 5). @default 1 */
  replicas?: number;
  /** Storage of a bucket this call creates. @default "file" */
  storage?: NatsStorage;
  /**
   * Largest read model, in bytes of UTF-8 JSON. Without it, the largest the
   * server carries: its `max_payload` minus {@link READ_MODEL_ENVELOPE_BYTES},
   * at most 1 MiB. A limit the server cannot carry is refused by `open`.
   * @default min(1048576, max_payload - 4096)
   */
  maxValueBytes?: number;
}

/** Defaults of {@link NatsReadModelStoreOptions}. */
export const NATS_READ_MODEL_STORE_DEFAULTS = {
  /** @default "read-models" */
  bucket: "read-models",
  /** @default 1 */
  replicas: 1,
  /** @default "file" */
  storage: NatsStorage.File,
  /** The largest default limit; less when the server's `max_payload` cannot carry it. @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
} as const;

const OPTION_NAMES = ["client", "bucket", "replicas", "storage", "maxValueBytes"];

/**
 * Room `open` reserves next to a model of `maxValueBytes` in one message, in
 * bytes: the value `{"metadata":…,"model":…}` (22) and metadata up to about 4 KiB.
 * A save whose whole value is still over the server's `max_payload` is a `TooLargeError`.
 */
export const READ_MODEL_ENVELOPE_BYTES = 4096;

const STATUSES = new Set<string>(Object.values(ProjectionStatus));
const TD = new TextDecoder();

/** A key's latest value: its KV operation ("PUT", "DEL", "PURGE") and text. */
interface Latest {
  operation: string;
  text: string;
}

/** Read models and projection statuses in a NATS KV bucket. Open it with {@link NatsReadModelStore.open}. */
export class NatsReadModelStore {
  /** The KV bucket. */
  readonly bucket: string;
  /**
   * The largest read model, in bytes of UTF-8 JSON: the `maxValueBytes`
   * option, or the largest the server carries (at most 1 MiB).
   */
  readonly maxValueBytes: number;
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #maxPayload: number;
  /**
   * More than one replica: gets go to the stream leader (the KV client's
   * direct gets may be answered by a follower that is behind) and `ids` is
   * checked against it (reader.ts).
   */
  readonly #replicated: boolean;
  #closed = false;

  private constructor(
    client: NatsConnection,
    bucket: string,
    maxValueBytes: number,
    opened: { kv: KV; js: JetStreamClient; jsm: JetStreamManager; replicated: boolean },
  ) {
    this.bucket = bucket;
    this.maxValueBytes = maxValueBytes;
    this.#replicated = opened.replicated;
    this.#kv = opened.kv;
    this.#jsm = opened.jsm;
    this.#js = opened.js;
    this.#maxPayload = serverMaxPayload(client);
  }

  /**
   * Opens (and creates if missing) the bucket. Every option is checked
   * before anything is created.
   * @throws ConfigurationError for an invalid or unknown option, or when the
   *   server's `max_payload` cannot carry `maxValueBytes` plus {@link READ_MODEL_ENVELOPE_BYTES}
   * @throws PeerMissingError when the NATS client packages are not installed
   * @throws UnavailableError when the server cannot be reached
   */
  static async open(options: NatsReadModelStoreOptions): Promise<NatsReadModelStore> {
    const check = new OptionChecker("NatsReadModelStore", options, NATS_READ_MODEL_STORE_DEFAULTS).known(OPTION_NAMES, {
      bucketName: "bucket",
    });
    const place = checkPlacement(check, options, "KV bucket", READ_MODEL_ENVELOPE_BYTES);
    const { client, name: bucket, replicas, storage, maxValueBytes } = place;
    const nats = await loadNatsModules();
    try {
      const jsm = await nats.jetstream.jetstreamManager(client);
      const kv = await new nats.kv.Kvm(client).create(bucket, { history: 1, replicas, storage });
      const status = await kv.status();
      return new NatsReadModelStore(client, bucket, maxValueBytes, {
        kv,
        jsm,
        js: nats.jetstream.jetstream(client),
        replicated: status.streamInfo.config.num_replicas !== 1,
      });
    } catch (error) {
      throw natsError(error, `opening KV bucket ${JSON.stringify(bucket)}`);
    }
  }

  /** Stores a read model with its metadata (the metadata's `id` and `modelType` say where). */
  async save<M>(model: M, metadata: ReadModelMetadata, options?: CallOptions): Promise<void> {
    this.#check(options);
    validateEntityType(metadata?.modelType);
    validateEntityId(metadata.id);
    if (!(metadata.lastUpdated instanceof Date) || Number.isNaN(metadata.lastUpdated.getTime())) {
      throw new ValidationError("metadata.lastUpdated", "must be a valid Date");
    }
    const json = toJsonWithin(model, this.maxValueBytes, `read model ${JSON.stringify(metadata.id)}`, "model");
    const meta = toJsonWithin(
      { ...metadata, lastUpdated: metadata.lastUpdated.toISOString() },
      this.maxValueBytes,
      "metadata",
    );
    const value = `{"metadata":${meta},"model":${json}}`;
    const size = Buffer.byteLength(value, "utf8");
    if (size > this.#maxPayload) {
      throw new TooLargeError(size, this.#maxPayload, `read model ${JSON.stringify(metadata.id)} with its metadata`);
    }
    try {
      await this.#kv.put(modelKey(metadata.modelType, metadata.id), value);
    } catch (error) {
      throw natsError(error, `save of read model ${JSON.stringify(metadata.id)}`);
    }
  }

  /** A read model and its metadata, or `undefined`. */
  async load<M>(
    modelType: string,
    id: string,
    options?: CallOptions,
  ): Promise<{ model: M; metadata: ReadModelMetadata } | undefined> {
    this.#check(options);
    validateEntityType(modelType);
    validateEntityId(id);
    const key = modelKey(modelType, id);
    let entry: Latest | undefined;
    try {
      entry = await this.#get(key);
    } catch (error) {
      throw natsError(error, `load of read model ${JSON.stringify(id)}`);
    }
    if (entry?.operation !== "PUT") return undefined;
    const value = parse<{ metadata: ReadModelMetadata & { lastUpdated: string }; model: M }>(entry.text, key);
    return { model: value.model, metadata: { ...value.metadata, lastUpdated: new Date(value.metadata.lastUpdated) } };
  }

  /** Deletes a read model; true when it existed. */
  async delete(modelType: string, id: string, options?: CallOptions): Promise<boolean> {
    const existed = (await this.load(modelType, id, options)) !== undefined;
    if (existed)
      await this.#kv.delete(modelKey(modelType, id)).catch((e: unknown) => Promise.reject(natsError(e, "delete")));
    return existed;
  }

  /** The ids of every stored read model of `modelType`, in write order. */
  async ids(modelType: string, options?: CallOptions): Promise<string[]> {
    this.#check(options);
    validateEntityType(modelType);
    const prefix = `$KV.${this.bucket}.m.${encodeToken(modelType)}.`;
    let keys: { id: string; deleted: boolean }[] = [];
    try {
      const read = await readFiltered(
        this.#js,
        this.#jsm,
        `KV_${this.bucket}`,
        `${prefix}*`,
        (m) => {
          const op = m.headers?.get("KV-Operation");
          keys.push({ id: decodeToken(m.subject.slice(prefix.length)), deleted: op === "DEL" || op === "PURGE" });
        },
        { headersOnly: true, signal: options?.signal, replicated: this.#replicated },
      );
      // Past a lagging replica an id may come twice: the later one is its newer revision.
      if (read.lagged) keys = keepLastPerKey(keys, (k) => k.id);
    } catch (error) {
      throw natsError(error, `listing read models of ${modelType}`);
    }
    return keys.filter((k) => !k.deleted).map((k) => k.id);
  }

  /** Records where the projection of `modelType` stands. */
  async updateProjectionStatus(modelType: string, status: ProjectionStatus, options?: CallOptions): Promise<void> {
    this.#check(options);
    validateEntityType(modelType);
    if (!STATUSES.has(status)) {
      throw new ValidationError("status", `must be one of ${[...STATUSES].join(", ")}, got ${JSON.stringify(status)}`);
    }
    const record = { modelType, status, updatedAt: new Date().toISOString() };
    try {
      await this.#kv.put(statusKey(modelType), JSON.stringify(record));
    } catch (error) {
      throw natsError(error, `update of the projection status of ${modelType}`);
    }
  }

  /** The projection status of `modelType`, or `undefined` when none was recorded. */
  async getProjectionStatus(modelType: string, options?: CallOptions): Promise<ProjectionStatusRecord | undefined> {
    this.#check(options);
    validateEntityType(modelType);
    const key = statusKey(modelType);
    let entry: Latest | undefined;
    try {
      entry = await this.#get(key);
    } catch (error) {
      throw natsError(error, `read of the projection status of ${modelType}`);
    }
    if (entry?.operation !== "PUT") return undefined;
    const value = parse<{ modelType: string; status: ProjectionStatus; updatedAt: string }>(entry.text, key);
    return { modelType: value.modelType, status: value.status, updatedAt: new Date(value.updatedAt) };
  }

  /** Closes the store (not the connection). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * A key's latest value: a direct get on an R1 bucket (the KV client),
   * otherwise a get the stream leader answers, so an acknowledged write is
   * always seen.
   */
  async #get(key: string): Promise<Latest | undefined> {
    if (!this.#replicated) {
      const entry = await this.#kv.get(key);
      return entry ? { operation: entry.operation, text: entry.string() } : undefined;
    }
    const sm = await this.#jsm.streams.getMessage(`KV_${this.bucket}`, { last_by_subj: `$KV.${this.bucket}.${key}` });
    if (!sm) return undefined;
    return { operation: sm.header?.get("KV-Operation") || "PUT", text: TD.decode(sm.data) };
  }

  #check(options: CallOptions | undefined): void {
    if (this.#closed) throw new ClosedError("read-model store");
    throwIfAborted(options?.signal);
  }
}

function modelKey(modelType: string, id: string): string {
  return `m.${encodeToken(modelType)}.${encodeToken(id)}`;
}

function statusKey(modelType: string): string {
  return `s.${encodeToken(modelType)}`;
}

function parse<T>(text: string, key: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new CorruptionError(`NATS KV key ${key}`, undefined, "value is not JSON", { cause: error });
  }
}
