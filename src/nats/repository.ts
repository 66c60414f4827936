/**
 * Versioned repositories on a NATS KV bucket: `NatsKvRepository` (also
 * through its builder: client, bucketName, aggregateType, history,
 * ttlSeconds) and `NatsSimpleRepository`.
 *
 * Key `<aggregateType>.<id>` (each encoded by `encodeToken`); value
 * `{"version":n,"savedAt":"…","aggregate":…}`; a delete is a KV delete
 * marker (`KV-Operation: DEL`) whose body records the version it took.
 * Every write is a compare-and-set on the key's last revision
 * (`Nats-Expected-Last-Subject-Sequence`), so two writers can never both
 * win, and versions strictly increase per aggregate.
 */
import type { LastForMsgRequest, NextMsgRequest, StoredMsg } from "@nats-io/jetstream";
import {
  type CallOptions,
  ClosedError,
  CorruptionError,
  sleep,
  throwIfAborted,
  toJsonWithin,
  UnavailableError,
  UnsupportedError,
  ValidationError,
  VersionConflictError,
  validateEntityId,
} from "../index.js";
import {
  BaseRepository,
  checkExpectedVersion,
  checkTtlSeconds,
  compareIds,
  type HistoryEntry,
  type ListOptions,
  type Page,
  paginate,
  type RepositoryCapabilities,
  type RepositoryDeleteOptions,
  type RepositorySaveOptions,
  type SaveResult,
  type Versioned,
} from "../repository/index.js";
import { isWrongLastSequence, natsError } from "./errors.js";
import { decodeToken, encodeToken } from "./keys.js";
import { getStored, keepLastPerKey, readFiltered } from "./reader.js";
import {
  checkNatsRepositoryOptions,
  MAX_TTL_SECONDS,
  type NatsKvRepositoryOptions,
  type OpenedBucket,
  openBucket,
  type RepositorySettings,
} from "./repository-bucket.js";
import { NatsKvRepositoryBuilder } from "./repository-builder.js";

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

/** A versioned repository over a NATS KV bucket. Open it with {@link NatsKvRepository.open} or its builder. */
export class NatsKvRepository<T> extends BaseRepository<T> {
  readonly aggregateType: string;
  readonly capabilities: RepositoryCapabilities;
  /** The KV bucket. */
  readonly bucket: string;
  /** The bucket's stream, `KV_<bucket>`. */
  readonly stream: string;
  /**
   * The largest aggregate, in bytes of UTF-8 JSON: the `maxValueBytes`
   * option, or the largest the server carries (at most 1 MiB).
   */
  readonly maxValueBytes: number;
  readonly #bucket: OpenedBucket;
  readonly #prefix: string;
  readonly #idOf: (aggregate: T) => string;
  readonly #maxAttempts: number;
  #closed = false;

  /** @internal Use {@link NatsKvRepository.open}. */
  protected constructor(settings: RepositorySettings<T>, bucket: OpenedBucket) {
    super();
    this.aggregateType = settings.aggregateType;
    this.bucket = settings.bucket;
    this.stream = `KV_${settings.bucket}`;
    this.#bucket = bucket;
    this.#prefix = `$KV.${settings.bucket}.${encodeToken(settings.aggregateType)}.`;
    this.#idOf = settings.idOf;
    this.maxValueBytes = bucket.maxValueBytes;
    this.#maxAttempts = settings.maxCasAttempts;
    this.capabilities = { ttl: true, perSaveTtl: settings.perSaveTtl, durable: bucket.durable };
  }

  /**
   * Opens the repository, creating the bucket if missing. Every option is
   * checked before anything is created.
   * @throws ConfigurationError for an invalid, missing or unknown option, when
   *   the server's `max_payload` cannot carry `maxValueBytes` plus the
   *   envelope, or when the existing bucket's history or TTL differ from the options
   * @throws ConfigurationError when the server refuses to create the bucket for the options: its subjects
   *   (`$KV.<bucket>.>`) overlap another stream's (option `bucket`), or `replicas` > 1 on a server that is not
   *   clustered; the server's error is the `cause`
   * @throws UnsupportedError when `perSaveTtl` needs a newer server, or for a replicated bucket (`replicas` > 1,
   *   or an existing one) on a server whose compare-and-set does not hold there (`NatsFeature.ReplicatedCompareAndSet`)
   * @throws PeerMissingError when the NATS client packages are not installed
   * @throws UnavailableError when the server cannot be reached
   */
  static async open<T>(options: NatsKvRepositoryOptions<T>): Promise<NatsKvRepository<T>> {
    const settings = checkNatsRepositoryOptions(options, "NatsKvRepository");
    return new NatsKvRepository<T>(settings, await openBucket(settings));
  }

  /**
   * A builder: `.client(nc).bucketName("b").aggregateType("T").history(20).ttlSeconds(3600).build()`,
   * the same as {@link NatsKvRepository.open} with those options.
   */
  static builder<T>(): NatsKvRepositoryBuilder<T> {
    return new NatsKvRepositoryBuilder<T>((options) => NatsKvRepository.open<T>(options));
  }

  async save(aggregate: T, options?: RepositorySaveOptions): Promise<SaveResult> {
    this.#check(options);
    checkExpectedVersion(options?.expectedVersion);
    const id = this.#idOf(aggregate);
    validateEntityId(id);
    const json = toJsonWithin(
      aggregate,
      this.maxValueBytes,
      `${this.aggregateType} ${JSON.stringify(id)}`,
      "aggregate",
    );
    let ttl: string | undefined;
    if (options?.ttlSeconds !== undefined) {
      checkTtlSeconds(options.ttlSeconds); // a call argument: a ValidationError
      if (options.ttlSeconds > MAX_TTL_SECONDS) {
        throw new ValidationError("ttlSeconds", `must be at most ${MAX_TTL_SECONDS} (what the server's TTL holds)`);
      }
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

  async loadVersioned(id: string, options?: CallOptions): Promise<Versioned<T> | undefined> {
    this.#check(options);
    validateEntityId(id);
    const cur = await this.#current(id, options?.signal);
    if (cur.json === undefined || !cur.savedAt) return undefined;
    return {
      id,
      version: cur.version,
      savedAt: this.#savedAt(cur.savedAt, cur.rev, id),
      aggregate: this.#aggregate(cur.json, cur.rev, id),
    };
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
        const sm = await this.#get({ next_by_subj: subject, seq }, options?.signal);
        if (!sm) break;
        const cur = this.#parse(sm.seq, sm.data, sm.header?.get(KV_OPERATION) ?? "", sm.time, id);
        out.push({
          id,
          version: cur.version,
          savedAt: this.#savedAt(cur.savedAt ?? sm.time, sm.seq, id),
          deleted: cur.json === undefined,
          aggregate: cur.json === undefined ? undefined : this.#aggregate(cur.json, sm.seq, id),
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
    let latest: [string, string | undefined, number][] = [];
    try {
      const read = await readFiltered(
        this.#bucket.js,
        this.#bucket.jsm,
        this.stream,
        `${this.#prefix}*`,
        (m) => {
          const id = decodeToken(m.subject.slice(this.#prefix.length), this.#where(m.seq));
          latest.push([id, this.#parse(m.seq, m.data, m.headers?.get(KV_OPERATION) ?? "", m.time, id).json, m.seq]);
        },
        { signal: options?.signal, replicated: this.#bucket.replicated },
      );
      // Past a lagging replica an id may come twice: the later one is its newer revision.
      if (read.lagged) latest = keepLastPerKey(latest, ([id]) => id);
    } catch (error) {
      throw natsError(error, `list of ${this.aggregateType}`);
    }
    const live = latest.filter((e): e is [string, string, number] => e[1] !== undefined);
    live.sort((a, b) => compareIds(a[0], b[0]));
    const page = paginate(live, options);
    return { ...page, items: page.items.map(([id, json, seq]) => this.#aggregate(json, seq, id)) };
  }

  /** Closes the repository (not the NATS connection). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
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
      const cur = await this.#current(id, signal);
      if (expected !== undefined && expected !== cur.version)
        throw new VersionConflictError(expected, cur.version, what);
      const version = cur.version + 1;
      const savedAt = new Date();
      const write = build(version, savedAt, cur);
      if (!write) return { id, version: cur.version, savedAt: cur.savedAt ?? savedAt };
      const h = this.#bucket.headers();
      if (write.del) h.set(KV_OPERATION, "DEL");
      try {
        this.#check(undefined);
        await this.#bucket.js.publish(subject, write.body, {
          headers: h,
          expect: { lastSubjectSequence: cur.rev },
          ...(write.ttl ? { ttl: write.ttl } : {}),
        });
        return { id, version, savedAt };
      } catch (error) {
        if (!isWrongLastSequence(error)) throw natsError(error, `write of ${this.aggregateType} ${JSON.stringify(id)}`);
        if (expected !== undefined) {
          const now = await this.#current(id, signal);
          if (now.version !== expected) throw new VersionConflictError(expected, now.version, what, { cause: error });
        }
        // Lost the race: back off a little (jittered) and try again on the new revision.
        await sleep(Math.random() * Math.min(50, 2 ** attempt), signal);
      }
    }
    throw new UnavailableError(`${what}: gave up after ${this.#maxAttempts} compare-and-set attempts under contention`);
  }

  /** One stored message of the bucket ({@link getStored}). */
  #get(query: LastForMsgRequest | NextMsgRequest, signal: AbortSignal | undefined): Promise<StoredMsg | null> {
    return getStored(this.#bucket.jsm, this.stream, this.#bucket.direct, query, signal);
  }

  /** The key's last revision (never from a stale replica). */
  async #current(id: string, signal: AbortSignal | undefined): Promise<Current> {
    let sm: StoredMsg | null;
    try {
      sm = await this.#get({ last_by_subj: this.#prefix + encodeToken(id) }, signal);
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

  /**
   * The aggregate of a record's text (the fast path of {@link #parse} leaves
   * it unparsed). @throws CorruptionError when it is not one JSON value
   */
  #aggregate(json: string, seq: number, id: string): T {
    try {
      return JSON.parse(json) as T;
    } catch (error) {
      throw new CorruptionError(
        this.#where(seq),
        undefined,
        `${JSON.stringify(id)} is not a statelog aggregate record`,
        {
          cause: error,
        },
      );
    }
  }

  /**
   * A record's `savedAt`, as a read returns it (a write over a damaged
   * record needs only its version). @throws CorruptionError when it is not a date
   */
  #savedAt(at: Date, seq: number, id: string): Date {
    if (Number.isNaN(at.getTime())) {
      throw new CorruptionError(this.#where(seq), undefined, `${JSON.stringify(id)} has no valid savedAt`);
    }
    return at;
  }

  #where(seq: number): string {
    return `NATS KV ${this.bucket} revision ${seq}`;
  }

  #check(options: CallOptions | undefined): void {
    if (this.#closed) throw new ClosedError(`${this.aggregateType} repository`);
    throwIfAborted(options?.signal);
  }
}

/**
 * A {@link NatsKvRepository} whose options default to history 1 and no
 * expiry: `NatsSimpleRepository.open({ client, bucket, aggregateType })`.
 */
export class NatsSimpleRepository<T> extends NatsKvRepository<T> {
  /**
   * Opens a repository (history 1 and no expiry unless the options say otherwise).
   * @throws the errors of {@link NatsKvRepository.open}
   */
  static override async open<T>(options: NatsKvRepositoryOptions<T>): Promise<NatsSimpleRepository<T>> {
    const settings = checkNatsRepositoryOptions(options, "NatsSimpleRepository");
    return new NatsSimpleRepository<T>(settings, await openBucket(settings));
  }
}
