/**
 * `NatsKvStore`: a statelog Store over a NATS JetStream KV bucket.
 *
 * Layout (docs/nats.md): one KV key per entity,
 * `<namespace>.<entityType>.<entityId>` with every name encoded as one
 * token by {@link encodeToken}, and one marker key per namespace,
 * `<namespace>` (a single token), so that `listNamespaces` reads only the
 * markers and `load` reads only its namespace's subjects. A value is a
 * JSON envelope `{"changeType":"set","timestamp":"…","entity":…}`; an
 * `unset` is stored as a put of `{"changeType":"unset","timestamp":"…"}`
 * (not a KV delete marker) so the tombstone keeps its timestamp and is
 * loaded like any other change. The bucket's stream sequence is the log
 * order: the latest revision of a key wins and `load` returns the winners
 * in revision order.
 */
import type { JetStreamClient, JetStreamManager, JsMsg, PubAck } from "@nats-io/jetstream";
import { JetStreamApiError, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Change, type ChangeInput, ChangeType } from "../core/change.js";
import { AbortError, ConfigurationError, CorruptionError, throwIfAborted } from "../core/errors.js";
import {
  applyLoadOptions,
  type BaseStoreOptions,
  type CallOptions,
  type LoadOptions,
  OpenState,
  type PreparedChange,
  prepareChanges,
  type SaveOptions,
  type Store,
  type StoreCapabilities,
} from "../core/store.js";
import { DEFAULT_MAX_VALUE_BYTES, validateNamespace } from "../core/validation.js";
import { NatsSaveError, natsError } from "./errors.js";
import { decodeToken, encodeToken, parseEntityKey } from "./keys.js";
import { requirePayloadFits } from "./payload.js";
import { keepLastPerKey, readFiltered } from "./reader.js";

/** Options of {@link NatsKvStore.open}. */
export interface NatsKvStoreOptions extends BaseStoreOptions {
  /** An open NATS connection. The store never closes it. */
  client: NatsConnection;
  /** KV bucket name (`[-_a-zA-Z0-9]`); created if missing, its stream is `KV_<bucket>`. @default "statelog" */
  bucket?: string;
  /** Replicas of a bucket this call creates (1 or 3 in a cluster). @default 1 */
  replicas?: number;
  /** Storage of a bucket this call creates: "file" survives a server restart, "memory" does not. @default "file" */
  storage?: "file" | "memory";
  /** Publishes awaiting their acknowledgement at once during a `save`. @default 1024 */
  maxInFlight?: number;
  /**
   * Revisions kept per key by a bucket this call creates (1–64). With 1 the
   * bucket compacts itself on every write; more keeps older revisions
   * (`nats kv history`) until `compact`. @default 1
   */
  history?: number;
}

/** Default bucket of {@link NatsKvStore}. */
export const DEFAULT_STORE_BUCKET = "statelog";

/**
 * The largest envelope around an entity's JSON, in bytes:
 * `{"changeType":"set","timestamp":"<27 chars at most>","entity":` and `}`.
 * A KV put carries no headers.
 */
export const STORE_ENVELOPE_BYTES = 72;

const TD = new TextDecoder();
const KV_OPERATION = "KV-Operation";

/** A Store over a NATS KV bucket. Create it with {@link NatsKvStore.open}. */
export class NatsKvStore implements Store {
  readonly capabilities: StoreCapabilities;
  /** The KV bucket. */
  readonly bucket: string;
  /** The bucket's JetStream stream (`KV_<bucket>`). */
  readonly stream: string;
  /**
   * The largest entity a change may hold, in bytes of UTF-8 JSON (the
   * `maxValueBytes` option, default 1 MiB). `open` checked that the server's
   * `max_payload` carries it with its envelope.
   */
  readonly maxValueBytes: number;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #options: NatsKvStoreOptions;
  readonly #prefix: string;
  readonly #state = new OpenState("NATS KV store");
  /** Namespaces whose marker this instance has written. */
  readonly #marked = new Set<string>();
  /** The bucket has more than one replica: reads are checked against the stream leader (reader.ts). */
  readonly #replicated: boolean;

  private constructor(options: NatsKvStoreOptions, jsm: JetStreamManager, durable: boolean, replicated: boolean) {
    this.#options = options;
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.#js = jetstream(options.client);
    this.#jsm = jsm;
    this.bucket = options.bucket ?? DEFAULT_STORE_BUCKET;
    this.stream = `KV_${this.bucket}`;
    this.#prefix = `$KV.${this.bucket}.`;
    this.#replicated = replicated;
    this.capabilities = { compact: true, listNamespaces: true, durable };
  }

  /**
   * Opens (and creates if missing) the bucket.
   * @throws ConfigurationError without a client, with a bad bucket name, or
   *   when the server's `max_payload` cannot carry a change of `maxValueBytes`
   *   plus its envelope ({@link STORE_ENVELOPE_BYTES})
   * @throws UnavailableError when the server cannot be reached or has no JetStream
   */
  static async open(options: NatsKvStoreOptions): Promise<NatsKvStore> {
    if (!options?.client) throw new ConfigurationError("NatsKvStore needs a `client` (an open NATS connection)");
    const bucket = options.bucket ?? DEFAULT_STORE_BUCKET;
    if (!/^[-\w]+$/.test(bucket)) {
      throw new ConfigurationError(`invalid KV bucket name ${JSON.stringify(bucket)}: use only [-_a-zA-Z0-9]`);
    }
    const max = options.maxInFlight ?? 1024;
    if (!Number.isInteger(max) || max < 1) {
      throw new ConfigurationError(`maxInFlight must be an integer >= 1, got ${max}`);
    }
    const history = options.history ?? 1;
    if (!Number.isInteger(history) || history < 1 || history > 64) {
      throw new ConfigurationError(`history must be an integer from 1 to 64, got ${history}`);
    }
    const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
      throw new ConfigurationError(`maxValueBytes must be an integer >= 1, got ${maxValueBytes}`);
    }
    requirePayloadFits(
      options.client,
      maxValueBytes,
      STORE_ENVELOPE_BYTES,
      "maxValueBytes",
      `NatsKvStore bucket ${JSON.stringify(bucket)}`,
    );
    try {
      const jsm = await jetstreamManager(options.client);
      const kv = await new Kvm(options.client).create(bucket, {
        history,
        replicas: options.replicas ?? 1,
        storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
      });
      const status = await kv.status();
      const replicas = status.streamInfo.config.num_replicas;
      return new NatsKvStore(options, jsm, status.storage === StorageType.File, replicas !== 1);
    } catch (error) {
      throw natsError(error, `opening KV bucket ${JSON.stringify(bucket)}`);
    }
  }

  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    this.#state.check();
    throwIfAborted(options?.signal);
    // Validates names, values and size (maxValueBytes) before anything is written; `open` made sure
    // every change within maxValueBytes fits the server's max_payload with its envelope.
    const prepared = prepareChanges(changes, { maxValueBytes: this.maxValueBytes, clock: this.#options.clock });
    if (prepared.length === 0) return;
    await this.#publishAll(prepared, options?.signal);
    for (const p of prepared) this.#marked.add(p.namespace);
  }

  /**
   * Publishes in order (a namespace's marker before its first change) with
   * at most `maxInFlight` unacknowledged; resolves when all are acknowledged.
   */
  async #publishAll(prepared: readonly PreparedChange[], signal: AbortSignal | undefined): Promise<void> {
    const max = this.#options.maxInFlight ?? 1024;
    const acks: Promise<PubAck>[] = [];
    /** Per change (by index): its publish's acknowledgement, once sent. */
    const changeAcks: (Promise<PubAck> | undefined)[] = new Array(prepared.length);
    const tokens = new Map<string, string>();
    /** Per namespace whose marker this save sends: its acknowledgement. */
    const markers = new Map<string, Promise<PubAck>>();
    let head = 0;
    const send = (subject: string, payload: string) => {
      this.#state.check();
      const ack = this.#js.publish(subject, payload);
      ack.catch(() => undefined);
      acks.push(ack);
      return ack;
    };
    try {
      for (let i = 0; i < prepared.length; i++) {
        const p = prepared[i] as PreparedChange;
        if (signal?.aborted) throw new AbortError(signal.reason);
        let ns = tokens.get(p.namespace);
        if (ns === undefined) {
          ns = encodeToken(p.namespace);
          tokens.set(p.namespace, ns);
          if (!this.#marked.has(p.namespace)) {
            if (acks.length - head >= max) await acks[head++];
            markers.set(p.namespace, send(this.#prefix + ns, p.namespace));
          }
        }
        if (acks.length - head >= max) await acks[head++];
        changeAcks[i] = send(
          `${this.#prefix}${ns}.${encodeToken(p.entityType)}.${encodeToken(p.entityId)}`,
          envelope(p),
        );
      }
      for (; head < acks.length; head++) await acks[head];
    } catch (error) {
      const failure = natsError(error, `save to KV bucket ${JSON.stringify(this.bucket)}`);
      // Say which changes are stored: wait for every publish already sent.
      const outcomes = await Promise.allSettled(
        Array.from(prepared, (_, i) => changeAcks[i] ?? Promise.reject(NOT_SENT)), // (map would skip the holes)
      );
      const stored: number[] = [];
      const uncertain: number[] = [];
      const notStored: number[] = [];
      outcomes.forEach((o, i) => {
        if (o.status === "fulfilled") stored.push(i);
        else if (o.reason === NOT_SENT || o.reason instanceof JetStreamApiError) notStored.push(i);
        else uncertain.push(i);
      });
      const unmarked: string[] = [];
      for (const [namespace, ack] of markers) {
        if ((await Promise.allSettled([ack]))[0]?.status !== "fulfilled") unmarked.push(namespace);
      }
      throw new NatsSaveError(stored, uncertain, notStored, failure, unmarked);
    }
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.#state.check();
    validateNamespace(namespace);
    throwIfAborted(options?.signal);
    let out: Change[] = [];
    const filter = `${this.#prefix}${encodeToken(namespace)}.>`;
    try {
      const read = await readFiltered(
        this.#js,
        this.#jsm,
        this.stream,
        filter,
        (m) => out.push(this.#decode(m, namespace)),
        { signal: options?.signal, replicated: this.#replicated },
      );
      // The read went past a lagging replica: a key may come twice, the later one is its newer revision.
      if (read.lagged) out = keepLastPerKey(out, (c) => `${c.entityType}\u0000${c.entityId}`);
    } catch (error) {
      throw natsError(error, `load of namespace ${JSON.stringify(namespace)}`);
    }
    return applyLoadOptions(out, options);
  }

  /**
   * Drops every revision but the latest of each key of `namespace`. A
   * bucket with history 1 keeps only the latest anyway: then there is
   * nothing to drop and no key is touched.
   */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.#state.check();
    validateNamespace(namespace);
    throwIfAborted(options?.signal);
    try {
      const info = await this.#jsm.streams.info(this.stream);
      if (info.config.max_msgs_per_subject === 1) return;
      const subjects: string[] = [];
      await readFiltered(
        this.#js,
        this.#jsm,
        this.stream,
        `${this.#prefix}${encodeToken(namespace)}.>`,
        (m) => subjects.push(m.subject),
        { headersOnly: true, signal: options?.signal, replicated: this.#replicated },
      );
      // One exact subject per purge: `keep` then counts that key's revisions only.
      for (const subject of new Set(subjects)) {
        throwIfAborted(options?.signal);
        await this.#jsm.streams.purge(this.stream, { filter: subject, keep: 1 });
      }
    } catch (error) {
      throw natsError(error, `compact of namespace ${JSON.stringify(namespace)}`);
    }
  }

  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.#state.check();
    throwIfAborted(options?.signal);
    let markers: { name: string; deleted: boolean }[] = [];
    try {
      const read = await readFiltered(
        this.#js,
        this.#jsm,
        this.stream,
        `${this.#prefix}*`,
        (m) => {
          const op = m.headers?.get(KV_OPERATION);
          const name = decodeToken(m.subject.slice(this.#prefix.length), this.#where(m));
          markers.push({ name, deleted: op === "DEL" || op === "PURGE" });
        },
        { headersOnly: true, signal: options?.signal, replicated: this.#replicated },
      );
      if (read.lagged) markers = keepLastPerKey(markers, (k) => k.name);
    } catch (error) {
      throw natsError(error, "listNamespaces");
    }
    return markers.filter((k) => !k.deleted).map((k) => k.name);
  }

  /** Deletes the whole bucket and its data. The store is closed afterwards. */
  async destroy(): Promise<void> {
    this.#state.check();
    await this.close();
    try {
      await this.#jsm.streams.delete(this.stream);
    } catch (error) {
      throw natsError(error, `deleting KV bucket ${JSON.stringify(this.bucket)}`);
    }
  }

  /** Closes the store (not the NATS connection). Idempotent. */
  async close(): Promise<void> {
    this.#state.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #where(m: JsMsg): string {
    return `NATS KV ${this.bucket} revision ${m.seq}`;
  }

  #decode(m: JsMsg, namespace: string): Change {
    const key = m.subject.slice(this.#prefix.length);
    const { entityType, entityId } = parseEntityKey(key);
    const op = m.headers?.get(KV_OPERATION);
    if (op === "DEL" || op === "PURGE") {
      // Deleted with another KV client (e.g. `nats kv del`): a tombstone at the server's time.
      return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp: m.time };
    }
    let value: { changeType?: unknown; timestamp?: unknown; entity?: unknown };
    try {
      value = JSON.parse(TD.decode(m.data));
    } catch (error) {
      throw new CorruptionError(this.#where(m), undefined, `key ${key} does not hold JSON`, { cause: error });
    }
    const timestamp = typeof value?.timestamp === "string" ? new Date(value.timestamp) : undefined;
    if (!timestamp || Number.isNaN(timestamp.getTime())) {
      throw new CorruptionError(this.#where(m), undefined, `key ${key} has no valid timestamp`);
    }
    if (value.changeType === ChangeType.Unset) {
      return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp };
    }
    if (value.changeType !== ChangeType.Set || !("entity" in value)) {
      throw new CorruptionError(this.#where(m), undefined, `key ${key} is not a statelog change`);
    }
    return { namespace, changeType: ChangeType.Set, entityType, entityId, entity: value.entity, timestamp };
  }
}

/** Marks a change that was never sent, in a failed save's outcomes. */
const NOT_SENT = Symbol("not sent");

/** The stored value of a change. */
function envelope(p: PreparedChange): string {
  const ts = JSON.stringify(p.timestamp.toISOString());
  return p.json === undefined
    ? `{"changeType":"unset","timestamp":${ts}}`
    : `{"changeType":"set","timestamp":${ts},"entity":${p.json}}`;
}
