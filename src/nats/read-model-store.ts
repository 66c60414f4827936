/**
 * `NatsReadModelStore`: read models with their metadata, and projection
 * statuses, in a KV bucket — the `ReadModelStore` contract on NATS.
 *
 * Keys: a read model is `m.<modelType>.<id>`, a projection status is
 * `s.<name>` (each name encoded by `encodeToken`). The first token
 * differs, so no read-model id can ever collide with a status.
 *
 * A model's revision is its KV revision (the stream sequence of its last
 * write); `expectedRevision` is a KV create (0) or update (n), checked by
 * the server. A query reads the latest value of every key of the model
 * type (one ordered consumer) and runs the shared query engine on them:
 * its cost grows with the number of models of the type; there are no
 * indexes. KV has no transaction over several keys, so there is no atomic
 * checkpoint (`capabilities.atomicCheckpoint` is false): a projector keeps
 * exactly-once through each model's `lastEventPosition`.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CallOptions,
  CorruptionError,
  OpenState,
  OptionChecker,
  STORE_DEFAULTS,
  TooLargeError,
  throwIfAborted,
  validateEntityId,
  validateEntityType,
  validateName,
} from "../index.js";
import {
  checkQuery,
  copyMetadata,
  metadataFromJson,
  type ProjectionStatusRecord,
  prepareDelete,
  prepareSave,
  prepareStatus,
  type Query,
  type QueryResult,
  type ReadModelDeleteOptions,
  type ReadModelMetadata,
  type ReadModelSaveOptions,
  type ReadModelStore,
  type ReadModelStoreCapabilities,
  revisionConflict,
  runQuery,
  type StoredReadModel,
  statusFromJson,
  statusToJson,
} from "../read-models/index.js";
import { loadNatsModules } from "./client.js";
import { bucketCreation, creationRefusal, isWrongLastSequence, natsError } from "./errors.js";
import { natsInternalsOf } from "./internal.js";
import { decodeToken, encodeToken } from "./keys.js";
import { checkPlacement, NatsStorage } from "./options.js";
import { bucketValueLimit, serverMaxPayload } from "./payload.js";
import { keepLastPerKey, readFiltered, retryingGet } from "./reader.js";
import { kvBucketPlacement, requireReplicatedCompareAndSet } from "./server.js";

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

/**
 * Bytes a conditional write (`expectedRevision`: `kv.create`, `kv.update`)
 * adds to its message in headers (`Nats-Expected-Last-Subject-Sequence`),
 * which `max_payload` counts too: room kept for them, rounded up.
 */
const CAS_HEADER_BYTES = 128;

const TD = new TextDecoder();

/** A key's latest value: its KV operation ("PUT", "DEL", "PURGE"), revision and text. */
interface Latest {
  operation: string;
  revision: number;
  text: string;
}

/** Read models and projection statuses in a NATS KV bucket. Open it with {@link NatsReadModelStore.open}. */
export class NatsReadModelStore implements ReadModelStore {
  readonly capabilities: ReadModelStoreCapabilities = { atomicCheckpoint: false, indexes: false, durable: true };
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
   * direct gets may be answered by a follower that is behind) and reads
   * are checked against it (reader.ts).
   */
  readonly #replicated: boolean;
  readonly #state = new OpenState("read-model store");
  /** Writes in flight: `close()` waits for them. */
  readonly #writes = new Set<Promise<unknown>>();
  private constructor(
    client: NatsConnection,
    bucket: string,
    maxValueBytes: number,
    opened: { kv: KV; js: JetStreamClient; jsm: JetStreamManager; replicated: boolean; maxMsgSize?: number },
  ) {
    this.bucket = bucket;
    this.maxValueBytes = maxValueBytes;
    this.#replicated = opened.replicated;
    this.#kv = opened.kv;
    this.#jsm = opened.jsm;
    this.#js = opened.js;
    const bucketMax = opened.maxMsgSize !== undefined && opened.maxMsgSize > 0 ? opened.maxMsgSize : Infinity;
    this.#maxPayload = Math.min(serverMaxPayload(client), bucketMax);
  }

  /**
   * Opens (and creates if missing) the bucket. Every option is checked
   * before anything is created.
   * @throws ConfigurationError for an invalid or unknown option, or when the
   *   server's `max_payload` cannot carry `maxValueBytes` plus {@link READ_MODEL_ENVELOPE_BYTES}
   * @throws ConfigurationError when the server refuses to create the bucket for the options: its subjects
   *   (`$KV.<bucket>.>`) overlap another stream's (option `bucket`), or `replicas` > 1 on a server that is not
   *   clustered; the server's error is the `cause`
   * @throws UnsupportedError for a replicated bucket (`replicas` > 1, or an existing one) on a server whose
   *   compare-and-set does not hold there (`NatsFeature.ReplicatedCompareAndSet`)
   * @throws PeerMissingError when the NATS client packages are not installed
   * @throws UnavailableError when the server cannot be reached
   */
  static async open(options: NatsReadModelStoreOptions): Promise<NatsReadModelStore> {
    const check = new OptionChecker("NatsReadModelStore", options, NATS_READ_MODEL_STORE_DEFAULTS).known(OPTION_NAMES, {
      bucketName: "bucket",
    });
    const place = checkPlacement(check, options, "KV bucket", READ_MODEL_ENVELOPE_BYTES);
    const { client, name: bucket, replicas, storage, maxValueBytes, maxValueBytesGiven } = place;
    // Writes with an expectedRevision (a projection's, for one) are compare-and-sets: refused before anything is
    // created on a server where they do not hold on a replicated bucket.
    const allowed = natsInternalsOf(options).replicatedCasOnAnyServer === true;
    const cas = (count: number, found: boolean) =>
      kvBucketPlacement("NatsReadModelStore", bucket, allowed, count, found);
    requireReplicatedCompareAndSet(client, cas(replicas, false));
    const nats = await loadNatsModules();
    try {
      const jsm = await nats.jetstream.jetstreamManager(client);
      const kv = await new nats.kv.Kvm(client)
        .create(bucket, { history: 1, replicas, storage })
        .catch((error: unknown) => {
          throw creationRefusal(error, bucketCreation("NatsReadModelStore", bucket, replicas));
        });
      const status = await kv.status();
      requireReplicatedCompareAndSet(client, cas(status.streamInfo.config.num_replicas, true));
      const maxMsgSize = status.streamInfo.config.max_msg_size;
      // An existing bucket's own largest message bounds a model as the server's max_payload does.
      const limit = bucketValueLimit(
        maxValueBytes,
        maxValueBytesGiven,
        maxMsgSize,
        READ_MODEL_ENVELOPE_BYTES,
        `NatsReadModelStore bucket ${JSON.stringify(bucket)}`,
      );
      return new NatsReadModelStore(client, bucket, limit, {
        kv,
        jsm,
        js: nats.jetstream.jetstream(client),
        replicated: status.streamInfo.config.num_replicas !== 1,
        maxMsgSize,
      });
    } catch (error) {
      throw natsError(error, `opening KV bucket ${JSON.stringify(bucket)}`);
    }
  }

  /**
   * Stores a read model with its metadata (the metadata's `id` and
   * `modelType` say where); returns its new revision (the KV revision).
   * @throws VersionConflictError when `expectedRevision` does not match
   */
  save<M>(model: M, metadata: ReadModelMetadata, options?: ReadModelSaveOptions): Promise<number> {
    return this.#write(options, () => this.#save(model, metadata, options));
  }

  async #save<M>(model: M, metadata: ReadModelMetadata, options?: ReadModelSaveOptions): Promise<number> {
    const p = prepareSave(model, metadata, this.maxValueBytes, options?.expectedRevision);
    const what = `read model ${p.modelType}/${p.id}`;
    const value = `{"metadata":${p.metadataJson},"model":${p.json}}`;
    const size = Buffer.byteLength(value, "utf8");
    const room = this.#maxPayload - (p.expectedRevision === undefined ? 0 : CAS_HEADER_BYTES);
    if (size > room) throw new TooLargeError(size, room, `${what} with its metadata`);
    const key = modelKey(p.modelType, p.id);
    try {
      if (p.expectedRevision === undefined) return await this.#kv.put(key, value);
      if (p.expectedRevision === 0) return await this.#kv.create(key, value);
      return await this.#kv.update(key, value, p.expectedRevision);
    } catch (error) {
      if (p.expectedRevision !== undefined && isWrongLastSequence(error)) {
        throw await this.#conflict(p.modelType, p.id, p.expectedRevision, options?.signal);
      }
      throw natsError(error, `save of ${what}`);
    }
  }

  /** A read model, its metadata and revision, or `undefined`. */
  async load<M>(modelType: string, id: string, options?: CallOptions): Promise<StoredReadModel<M> | undefined> {
    this.#check(options);
    validateEntityType(modelType);
    validateEntityId(id);
    const key = modelKey(modelType, id);
    let entry: Latest | undefined;
    try {
      entry = await this.#get(key, options?.signal);
    } catch (error) {
      throw natsError(error, `load of read model ${modelType}/${id}`);
    }
    if (entry?.operation !== "PUT") return undefined;
    const where = this.#where(key, entry.revision);
    return stored<M>(envelope(entry.text, where, modelType, id), entry.revision);
  }

  /**
   * Deletes a read model; true when it existed.
   * @throws VersionConflictError when `expectedRevision` does not match
   */
  delete(modelType: string, id: string, options?: ReadModelDeleteOptions): Promise<boolean> {
    return this.#write(options, () => this.#delete(modelType, id, options));
  }

  async #delete(modelType: string, id: string, options?: ReadModelDeleteOptions): Promise<boolean> {
    const p = prepareDelete(modelType, id, options?.expectedRevision);
    const key = modelKey(modelType, id);
    for (;;) {
      const current = await this.#revision(key, modelType, id, options?.signal);
      if (p.expectedRevision !== undefined && p.expectedRevision !== current) {
        throw revisionConflict(modelType, id, p.expectedRevision, current);
      }
      if (current === 0) return false;
      try {
        // Always against the revision read: of concurrent deletes, only one finds the model (the others read again).
        await this.#kv.delete(key, { previousSeq: current });
        return true;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw natsError(error, `delete of read model ${modelType}/${id}`);
        if (p.expectedRevision !== undefined) {
          throw await this.#conflict(modelType, id, p.expectedRevision, options?.signal);
        }
        // Another write came first (each lost round means one won): read the model again.
        throwIfAborted(options?.signal);
      }
    }
  }

  /** The ids of every stored read model of `modelType`, sorted. */
  async list(modelType: string, options?: CallOptions): Promise<string[]> {
    this.#check(options);
    validateEntityType(modelType);
    const keys = await this.#read(modelType, true, options);
    return keys
      .filter((k) => !k.deleted)
      .map((k) => k.id)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Runs a query: reads the latest value of every model of the type (one
   * ordered consumer), then filters, sorts and pages them with the shared
   * query engine.
   */
  async query<M>(query: Query, options?: CallOptions): Promise<QueryResult<M>> {
    this.#check(options);
    checkQuery(query);
    const keys = await this.#read(query.modelType, false, options);
    const entries: { id: string; value: unknown; stored: StoredValue; revision: number }[] = [];
    for (const k of keys) {
      if (k.deleted) continue;
      const where = this.#where(modelKey(query.modelType, k.id), k.revision);
      const value = envelope(k.text, where, query.modelType, k.id);
      entries.push({ id: k.id, value: value.model, stored: value, revision: k.revision });
    }
    const page = runQuery(entries, query);
    return { items: page.items.map((e) => stored<M>(e.stored, e.revision)), total: page.total, next: page.next };
  }

  /** Writes a projection's status (under `s.<name>`, apart from every model). */
  updateProjectionStatus(record: ProjectionStatusRecord, options?: CallOptions): Promise<void> {
    return this.#write(options, () => this.#updateProjectionStatus(record));
  }

  async #updateProjectionStatus(record: ProjectionStatusRecord): Promise<void> {
    const r = prepareStatus(record);
    try {
      await this.#kv.put(statusKey(r.name), statusToJson(r));
    } catch (error) {
      throw natsError(error, `update of the status of projection ${r.name}`);
    }
  }

  /** A projection's status, or `undefined` when none was written. */
  async getProjectionStatus(name: string, options?: CallOptions): Promise<ProjectionStatusRecord | undefined> {
    this.#check(options);
    validateName("projection", name, true);
    const key = statusKey(name);
    let entry: Latest | undefined;
    try {
      entry = await this.#get(key, options?.signal);
    } catch (error) {
      throw natsError(error, `read of the status of projection ${name}`);
    }
    if (entry?.operation !== "PUT") return undefined;
    return storedStatus(entry.text, this.#where(key, entry.revision), name);
  }

  /** Every projection status in the bucket (the keys `s.*`), sorted by name. */
  async listProjectionStatuses(options?: CallOptions): Promise<ProjectionStatusRecord[]> {
    this.#check(options);
    const found = await this.#readKeys("s.", (token) => token, false, options, "read of the projection statuses");
    const where = (f: { key: string; revision: number }) => this.#where(`s.${f.key}`, f.revision);
    return found
      .filter((f) => !f.deleted)
      .map((f) => storedStatus(f.text, where(f), decodeToken(f.key, where(f))))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Removes a projection's status (the projector does, for the generations
   * a rebuild retired); true when there was one.
   */
  deleteProjectionStatus(name: string, options?: CallOptions): Promise<boolean> {
    return this.#write(options, () => this.#deleteProjectionStatus(name, options));
  }

  async #deleteProjectionStatus(name: string, options: CallOptions | undefined): Promise<boolean> {
    validateName("projection", name, true);
    const key = statusKey(name);
    for (;;) {
      let entry: Latest | undefined;
      try {
        entry = await this.#get(key, options?.signal);
      } catch (error) {
        throw natsError(error, `read of the status of projection ${name}`);
      }
      if (entry?.operation !== "PUT") return false;
      try {
        // Against the revision read: of concurrent removals (or a removal racing a write), only one finds it.
        await this.#kv.delete(key, { previousSeq: entry.revision });
        return true;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw natsError(error, `removal of the status of projection ${name}`);
        throwIfAborted(options?.signal);
      }
    }
  }

  /** Closes the store (not the connection), once the writes called before it finished. Idempotent. */
  async close(): Promise<void> {
    this.#state.close();
    await Promise.allSettled([...this.#writes]);
  }

  /**
   * Runs a write after the checks every call makes; `close()` waits for
   * the writes called before it (later calls fail with a `ClosedError`).
   */
  #write<T>(options: CallOptions | undefined, run: () => Promise<T>): Promise<T> {
    try {
      this.#check(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const write = run();
    this.#writes.add(write);
    const forget = () => {
      this.#writes.delete(write);
    };
    write.then(forget, forget);
    return write;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The keys of the models of `modelType` (latest revision each), with their values unless `headersOnly`. */
  async #read(
    modelType: string,
    headersOnly: boolean,
    options: CallOptions | undefined,
  ): Promise<{ id: string; deleted: boolean; revision: number; text: string }[]> {
    const keys = await this.#readKeys(
      `m.${encodeToken(modelType)}.`,
      decodeToken,
      headersOnly,
      options,
      `read of the read models of ${modelType}`,
    );
    return keys.map((k) => ({ id: k.key, deleted: k.deleted, revision: k.revision, text: k.text }));
  }

  /**
   * The latest revision of every key under `prefix` (a bucket key prefix
   * ending in `.`), the rest of each key decoded by `decodeKey`, with its
   * value unless `headersOnly`.
   */
  async #readKeys(
    prefix: string,
    decodeKey: (token: string) => string,
    headersOnly: boolean,
    options: CallOptions | undefined,
    what: string,
  ): Promise<{ key: string; deleted: boolean; revision: number; text: string }[]> {
    const subjectPrefix = `$KV.${this.bucket}.${prefix}`;
    let keys: { key: string; deleted: boolean; revision: number; text: string }[] = [];
    try {
      const read = await readFiltered(
        this.#js,
        this.#jsm,
        `KV_${this.bucket}`,
        `${subjectPrefix}*`,
        (m) => {
          const op = m.headers?.get("KV-Operation");
          keys.push({
            key: decodeKey(m.subject.slice(subjectPrefix.length)),
            deleted: op === "DEL" || op === "PURGE",
            revision: m.seq,
            text: headersOnly ? "" : TD.decode(m.data),
          });
        },
        { headersOnly, signal: options?.signal, replicated: this.#replicated },
      );
      // Past a lagging replica a key may come twice: the later one is its newer revision.
      if (read.lagged) keys = keepLastPerKey(keys, (k) => k.key);
    } catch (error) {
      throw natsError(error, what);
    }
    return keys;
  }

  /** The current revision of a model (0 when it does not exist). */
  async #revision(key: string, modelType: string, id: string, signal: AbortSignal | undefined): Promise<number> {
    try {
      const entry = await this.#get(key, signal);
      return entry?.operation === "PUT" ? entry.revision : 0;
    } catch (error) {
      throw natsError(error, `read of read model ${modelType}/${id}`);
    }
  }

  async #conflict(modelType: string, id: string, expected: number, signal: AbortSignal | undefined) {
    const current = await this.#revision(modelKey(modelType, id), modelType, id, signal);
    return revisionConflict(modelType, id, expected, current);
  }

  /**
   * A key's latest value: a direct get on an R1 bucket (the KV client),
   * otherwise a get the stream leader answers, so an acknowledged write is
   * always seen. Asked again while the cluster cannot answer (a leader
   * election): {@link retryingGet}.
   */
  async #get(key: string, signal: AbortSignal | undefined): Promise<Latest | undefined> {
    if (!this.#replicated) {
      const entry = await retryingGet(() => this.#kv.get(key), signal);
      return entry ? { operation: entry.operation, revision: entry.revision, text: entry.string() } : undefined;
    }
    const subject = `$KV.${this.bucket}.${key}`;
    const sm = await retryingGet(
      () => this.#jsm.streams.getMessage(`KV_${this.bucket}`, { last_by_subj: subject }),
      signal,
    );
    if (!sm) return undefined;
    return { operation: sm.header?.get("KV-Operation") || "PUT", revision: sm.seq, text: TD.decode(sm.data) };
  }

  #check(options: CallOptions | undefined): void {
    this.#state.check();
    throwIfAborted(options?.signal);
  }

  /** Where a stored value is, for a `CorruptionError`: the bucket, the key and its revision. */
  #where(key: string, revision: number): string {
    return `NATS KV ${this.bucket} key ${key} revision ${revision}`;
  }
}

/** The stored form of a model, checked: an object with a model and metadata (frozen) of the model at its key. */
interface StoredValue {
  model: unknown;
  metadata: ReadModelMetadata;
}

function stored<M>(value: StoredValue, revision: number): StoredReadModel<M> {
  return { model: value.model as M, metadata: copyMetadata(value.metadata), revision };
}

/**
 * The stored form of the model `modelType`/`id`: `{"metadata":{…},"model":…}`
 * with valid metadata of that model.
 * @throws CorruptionError naming `where` for anything else
 */
function envelope(text: string, where: string, modelType: string, id: string): StoredValue {
  const value = parse(text, where);
  if (typeof value !== "object" || value === null || Array.isArray(value) || !("model" in value)) {
    throw new CorruptionError(where, undefined, 'value is not a stored read model ({"metadata":…,"model":…})');
  }
  const metadata = metadataFromJson((value as { metadata?: unknown }).metadata, where);
  if (metadata.modelType !== modelType || metadata.id !== id) {
    throw new CorruptionError(
      where,
      undefined,
      `value holds the metadata of read model ${metadata.modelType}/${metadata.id}, not of ${modelType}/${id}`,
    );
  }
  return { model: (value as { model: unknown }).model, metadata };
}

/**
 * The stored status of projection `name`, checked (a fresh copy).
 * @throws CorruptionError naming `where` when it is not a valid status record of that projection
 */
function storedStatus(text: string, where: string, name: string): ProjectionStatusRecord {
  const status = statusFromJson(parse(text, where), where);
  if (status.name !== name) {
    throw new CorruptionError(where, undefined, `value holds the status of projection ${JSON.stringify(status.name)}`);
  }
  return { ...status };
}

function modelKey(modelType: string, id: string): string {
  return `m.${encodeToken(modelType)}.${encodeToken(id)}`;
}

function statusKey(name: string): string {
  return `s.${encodeToken(name)}`;
}

function parse(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CorruptionError(where, undefined, "value is not JSON", { cause: error });
  }
}
