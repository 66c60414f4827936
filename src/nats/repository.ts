/**
 * Versioned repositories on a NATS KV bucket (seed 4): `NatsKvRepository`
 * (builder: client, bucketName, aggregateType, history, ttlSeconds) and
 * `NatsSimpleRepository`.
 *
 * Key `<aggregateType>.<id>` (each encoded by `encodeToken`); value
 * `{"version":n,"savedAt":"…","aggregate":…}`; a delete is a KV delete
 * marker (`KV-Operation: DEL`) whose body records the version it took.
 * Every write is a compare-and-set on the key's last revision
 * (`Nats-Expected-Last-Subject-Sequence`), so two writers can never both
 * win, and versions strictly increase per aggregate.
 */
import type {
  JetStreamClient,
  JetStreamManager,
  LastForMsgRequest,
  MsgRequest,
  NextMsgRequest,
  StoredMsg,
} from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import {
  ClosedError,
  CorruptionError,
  throwIfAborted,
  UnavailableError,
  UnsupportedError,
  VersionConflictError,
} from "../core/errors.js";
import type { CallOptions } from "../core/store.js";
import { DEFAULT_MAX_VALUE_BYTES, toJsonWithin, validateEntityId } from "../core/validation.js";
import {
  checkExpectedVersion,
  checkRepositoryLimits,
  compareIds,
  defaultIdOf,
  type HistoryEntry,
  type ListOptions,
  type Page,
  paginate,
  type Repository,
  type RepositoryCapabilities,
  type RepositoryDeleteOptions,
  type RepositoryOptions,
  type RepositorySaveOptions,
  type SaveResult,
  type Versioned,
} from "../repository/types.js";
import { isWrongLastSequence, natsError } from "./errors.js";
import { decodeToken, encodeToken } from "./keys.js";
import { keepLastPerKey, readFiltered } from "./reader.js";
import { type OpenedBucket, openBucket } from "./repository-bucket.js";
import { NatsKvRepositoryBuilder } from "./repository-builder.js";

/** Options of {@link NatsKvRepository.create}. */
export interface NatsKvRepositoryOptions<T> extends RepositoryOptions<T> {
  /** An open NATS connection; the repository never closes it. */
  client: NatsConnection;
  /** KV bucket (`[-_a-zA-Z0-9]`), created with `history` and `ttlSeconds` if missing. */
  bucketName: string;
  /** Aggregate type: the first key token, so several types can share a bucket. */
  aggregateType: string;
  /** Replicas of a bucket this call creates. @default 1 */
  replicas?: number;
  /** Storage of a bucket this call creates. @default "file" */
  storage?: "file" | "memory";
  /**
   * Allow `save(…, { ttlSeconds })` (per-message TTL). Needs nats-server
   * 2.11+; on an older server `create` fails with an `UnsupportedError`.
   * @default false
   */
  perSaveTtl?: boolean;
  /** Compare-and-set attempts of a save without `expectedVersion` under contention. @default 100 */
  maxCasAttempts?: number;
}

const TD = new TextDecoder();
const KV_OPERATION = "KV-Operation";
/** The start of a record as written here: version and save time. */
const RECORD_HEAD = /^\{"version":(\d+),"savedAt":"([^"\\]*)"/;

interface Current {
  /** The key's last stream sequence (0 when there is none). */
  rev: number;
  version: number;
  json: string | undefined;
  savedAt: Date | undefined;
}

interface Record {
  version?: unknown;
  savedAt?: unknown;
  aggregate?: unknown;
}

/** A versioned repository over a NATS KV bucket. */
export class NatsKvRepository<T> implements Repository<T> {
  readonly aggregateType: string;
  readonly capabilities: RepositoryCapabilities;
  /** The KV bucket. */
  readonly bucket: string;
  /** The bucket's stream, `KV_<bucket>`. */
  readonly stream: string;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #prefix: string;
  readonly #idOf: (aggregate: T) => string;
  readonly #maxBytes: number;
  readonly #maxAttempts: number;
  /** Read with direct gets (R1 buckets only: a replica could answer stale). */
  readonly #direct: boolean;
  /** More than one replica: `list` is checked against the stream leader (reader.ts). */
  readonly #replicated: boolean;
  #closed = false;

  protected constructor(options: NatsKvRepositoryOptions<T>, jsm: JetStreamManager, bucket: OpenedBucket) {
    this.aggregateType = options.aggregateType;
    this.bucket = options.bucketName;
    this.stream = `KV_${options.bucketName}`;
    this.#js = jetstream(options.client);
    this.#jsm = jsm;
    this.#prefix = `$KV.${options.bucketName}.${encodeToken(options.aggregateType)}.`;
    this.#idOf = options.idOf ?? defaultIdOf;
    this.#maxBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.#maxAttempts = options.maxCasAttempts ?? 100;
    this.#direct = bucket.direct;
    this.#replicated = bucket.replicated;
    this.capabilities = { ttl: true, perSaveTtl: options.perSaveTtl === true, durable: bucket.durable };
  }

  /** A builder in the seed's style. */
  static builder<T>(): NatsKvRepositoryBuilder<T> {
    return new NatsKvRepositoryBuilder<T>();
  }

  /**
   * Opens the repository, creating the bucket if missing.
   * @throws ConfigurationError without a client, with bad names, or when the
   *   existing bucket's history or TTL differ from the options
   * @throws UnsupportedError when `perSaveTtl` needs a newer server
   */
  static async create<T>(options: NatsKvRepositoryOptions<T>): Promise<NatsKvRepository<T>> {
    const bucket = await openBucket(options);
    return new NatsKvRepository<T>(options, bucket.jsm, bucket);
  }

  async save(aggregate: T, options?: RepositorySaveOptions): Promise<SaveResult> {
    this.#check(options);
    checkExpectedVersion(options?.expectedVersion);
    const id = this.#idOf(aggregate);
    validateEntityId(id);
    const json = toJsonWithin(aggregate, this.#maxBytes, `${this.aggregateType} ${JSON.stringify(id)}`, "aggregate");
    let ttl: string | undefined;
    if (options?.ttlSeconds !== undefined) {
      checkRepositoryLimits(1, options.ttlSeconds);
      if (!this.capabilities.perSaveTtl) {
        throw new UnsupportedError(
          `save with ttlSeconds needs a repository created with perSaveTtl: true (per-message TTL, nats-server 2.11+)`,
        );
      }
      ttl = options.ttlSeconds === 0 ? "never" : `${Math.ceil(options.ttlSeconds)}s`;
    }
    return this.#write(id, options?.expectedVersion, options?.signal, (version, savedAt) => ({
      body: `{"version":${version},"savedAt":"${savedAt.toISOString()}","aggregate":${json}}`,
      ttl,
    }));
  }

  async load(id: string, options?: CallOptions): Promise<T | undefined> {
    return (await this.loadVersioned(id, options))?.aggregate;
  }

  async loadVersioned(id: string, options?: CallOptions): Promise<Versioned<T> | undefined> {
    this.#check(options);
    validateEntityId(id);
    const cur = await this.#current(id);
    if (cur.json === undefined || !cur.savedAt) return undefined;
    return { id, version: cur.version, savedAt: cur.savedAt, aggregate: JSON.parse(cur.json) as T };
  }

  async exists(id: string, options?: CallOptions): Promise<boolean> {
    return (await this.loadVersioned(id, options)) !== undefined;
  }

  async delete(id: string, options?: RepositoryDeleteOptions): Promise<boolean> {
    this.#check(options);
    validateEntityId(id);
    checkExpectedVersion(options?.expectedVersion);
    let existed = true;
    await this.#write(id, options?.expectedVersion, options?.signal, (version, savedAt, cur) => {
      if (cur.json === undefined) {
        existed = false;
        return undefined;
      }
      return { body: `{"version":${version},"savedAt":"${savedAt.toISOString()}","deleted":true}`, del: true };
    });
    return existed;
  }

  async history(id: string, options?: CallOptions): Promise<HistoryEntry<T>[]> {
    this.#check(options);
    validateEntityId(id);
    const out: HistoryEntry<T>[] = [];
    const subject = this.#prefix + encodeToken(id);
    // At most `history` (<= 64) messages: walk them with gets, no consumer needed.
    try {
      for (let seq = 1; ; ) {
        throwIfAborted(options?.signal);
        const sm = await this.#get({ next_by_subj: subject, seq });
        if (!sm) break;
        const cur = this.#parse(sm.seq, sm.data, sm.header?.get(KV_OPERATION) ?? "", sm.time, id);
        out.push({
          id,
          version: cur.version,
          savedAt: cur.savedAt ?? sm.time,
          deleted: cur.json === undefined,
          aggregate: cur.json === undefined ? undefined : (JSON.parse(cur.json) as T),
        });
        seq = sm.seq + 1;
      }
    } catch (error) {
      throw natsError(error, `history of ${this.aggregateType} ${JSON.stringify(id)}`);
    }
    return out;
  }

  async list(options?: ListOptions): Promise<Page<T>> {
    this.#check(options);
    paginate([], options); // validates offset and limit before any I/O
    let latest: [string, string | undefined][] = [];
    try {
      const read = await readFiltered(
        this.#js,
        this.#jsm,
        this.stream,
        `${this.#prefix}*`,
        (m) => {
          const id = decodeToken(m.subject.slice(this.#prefix.length), this.#where(m.seq));
          latest.push([id, this.#parse(m.seq, m.data, m.headers?.get(KV_OPERATION) ?? "", m.time, id).json]);
        },
        { signal: options?.signal, replicated: this.#replicated },
      );
      // Past a lagging replica an id may come twice: the later one is its newer revision.
      if (read.lagged) latest = keepLastPerKey(latest, ([id]) => id);
    } catch (error) {
      throw natsError(error, `list of ${this.aggregateType}`);
    }
    const live = latest.filter((e): e is [string, string] => e[1] !== undefined);
    live.sort((a, b) => compareIds(a[0], b[0]));
    const page = paginate(live, options);
    return { ...page, items: page.items.map(([, json]) => JSON.parse(json) as T) };
  }

  /** Closes the repository (not the NATS connection). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The compare-and-set loop: read the key's last revision, build the write
   * from it, publish it conditional on that revision; on a lost race retry
   * (no expected version) or report the conflict (expected version given).
   */
  async #write(
    id: string,
    expected: number | undefined,
    signal: AbortSignal | undefined,
    build: (
      version: number,
      savedAt: Date,
      cur: Current,
    ) => { body: string; ttl?: string | undefined; del?: boolean } | undefined,
  ): Promise<SaveResult> {
    const subject = this.#prefix + encodeToken(id);
    const what = `${this.aggregateType} ${JSON.stringify(id)} version`;
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      throwIfAborted(signal);
      const cur = await this.#current(id);
      if (expected !== undefined && expected !== cur.version)
        throw new VersionConflictError(expected, cur.version, what);
      const version = cur.version + 1;
      const savedAt = new Date();
      const write = build(version, savedAt, cur);
      if (!write) return { id, version: cur.version, savedAt: cur.savedAt ?? savedAt };
      const h = headers();
      if (write.del) h.set(KV_OPERATION, "DEL");
      try {
        this.#check(undefined);
        await this.#js.publish(subject, write.body, {
          headers: h,
          expect: { lastSubjectSequence: cur.rev },
          ...(write.ttl ? { ttl: write.ttl } : {}),
        });
        return { id, version, savedAt };
      } catch (error) {
        if (!isWrongLastSequence(error)) throw natsError(error, `write of ${this.aggregateType} ${JSON.stringify(id)}`);
        if (expected !== undefined) {
          const now = await this.#current(id);
          if (now.version !== expected) throw new VersionConflictError(expected, now.version, what, { cause: error });
        }
        // Lost the race: back off a little (jittered) and try again on the new revision.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
      }
    }
    throw new UnavailableError(`${what}: gave up after ${this.#maxAttempts} compare-and-set attempts under contention`);
  }

  /**
   * One stored message: a direct get on an R1 bucket (fastest), otherwise
   * a get from the stream leader (a replica could answer stale).
   * STREAM.MSG.GET accepts next_by_subj since nats-server 2.9; the client's
   * type lists only seq and last_by_subj.
   */
  #get(query: LastForMsgRequest | NextMsgRequest): Promise<StoredMsg | null> {
    if (this.#direct) return this.#jsm.direct.getMessage(this.stream, query);
    return this.#jsm.streams.getMessage(this.stream, query as unknown as MsgRequest);
  }

  /** The key's last revision (never from a stale replica). */
  async #current(id: string): Promise<Current> {
    let sm: StoredMsg | null;
    try {
      sm = await this.#get({ last_by_subj: this.#prefix + encodeToken(id) });
    } catch (error) {
      throw natsError(error, `read of ${this.aggregateType} ${JSON.stringify(id)}`);
    }
    if (!sm) return { rev: 0, version: 0, json: undefined, savedAt: undefined };
    return this.#parse(sm.seq, sm.data, sm.header?.get(KV_OPERATION) ?? "", sm.time, id);
  }

  #parse(seq: number, data: Uint8Array, op: string, time: Date, id: string): Current {
    const deleted = op === "DEL" || op === "PURGE";
    const text = data.length > 0 ? TD.decode(data) : "";
    // Fast path: the record as this class writes it, without parsing (and re-serializing) the aggregate.
    const head = RECORD_HEAD.exec(text);
    if (head) {
      const version = Number(head[1]);
      if (deleted) return { rev: seq, version, json: undefined, savedAt: time };
      if (text.startsWith(',"aggregate":', head[0].length) && text.endsWith("}")) {
        const json = text.slice(head[0].length + 13, -1);
        return { rev: seq, version, json, savedAt: new Date(head[2] as string) };
      }
    }
    let record: Record | undefined;
    if (text.length > 0) {
      try {
        record = JSON.parse(text) as Record;
      } catch (error) {
        throw new CorruptionError(this.#where(seq), undefined, `${JSON.stringify(id)} does not hold JSON`, {
          cause: error,
        });
      }
    }
    if (deleted) {
      // A delete marker: ours records its version; one written by another client (nats kv del) does not.
      const version = typeof record?.version === "number" ? record.version : 0;
      return { rev: seq, version, json: undefined, savedAt: time };
    }
    if (typeof record?.version !== "number" || typeof record.savedAt !== "string" || !("aggregate" in record)) {
      throw new CorruptionError(
        this.#where(seq),
        undefined,
        `${JSON.stringify(id)} is not a statelog aggregate record`,
      );
    }
    return {
      rev: seq,
      version: record.version,
      json: JSON.stringify(record.aggregate),
      savedAt: new Date(record.savedAt),
    };
  }

  #where(seq: number): string {
    return `NATS KV ${this.bucket} revision ${seq}`;
  }

  #check(options: CallOptions | undefined): void {
    if (this.#closed) throw new ClosedError(`${this.aggregateType} repository`);
    throwIfAborted(options?.signal);
  }
}

/** The seed's simple repository: `NatsSimpleRepository.create(client, bucket, aggregateType)`. */
export class NatsSimpleRepository<T> extends NatsKvRepository<T> {
  /** Opens a repository with history 1 and no expiry (unless `options` say otherwise). */
  static async open<T>(
    client: NatsConnection,
    bucket: string,
    aggregateType: string,
    options: Omit<Partial<NatsKvRepositoryOptions<T>>, "client" | "bucketName" | "aggregateType"> = {},
  ): Promise<NatsSimpleRepository<T>> {
    const full: NatsKvRepositoryOptions<T> = { ...options, client, bucketName: bucket, aggregateType };
    const opened = await openBucket(full);
    return new NatsSimpleRepository<T>(full, opened.jsm, opened);
  }
}
