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
import {
  AbortError,
  BaseStore,
  type CallOptions,
  type Change,
  type ChangeFeed,
  type ChangeInput,
  ChangeType,
  CorruptionError,
  type LoadOptions,
  type PreparedChange,
  type SaveOptions,
  type StoreCapabilities,
  throwIfAborted,
  UnavailableError,
  type WatchOptions,
} from "../index.js";
import { loadNatsModules } from "./client.js";
import { bucketCreation, creationRefusal, isJetStreamApiError, NatsSaveError, natsError } from "./errors.js";
import { decodeToken, encodeToken, parseEntityKey } from "./keys.js";
import { KvFeedSource } from "./kv-feed.js";
import {
  checkKvStoreOptions,
  type KvStoreSettings,
  type NatsKvStoreOptions,
  STORE_ENVELOPE_BYTES,
} from "./kv-store-options.js";
import { NatsStorage } from "./options.js";
import { bucketValueLimit } from "./payload.js";
import { keepLastPerKey, readFiltered, retryingGet } from "./reader.js";

const TD = new TextDecoder();
const KV_OPERATION = "KV-Operation";

/** What opening the bucket found. */
interface Connected {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The bucket has more than one replica: reads are checked against the stream leader (reader.ts). */
  replicated: boolean;
}

/** A Store over a NATS KV bucket. Create it with {@link NatsKvStore.open}. */
export class NatsKvStore extends BaseStore {
  /** The KV bucket. */
  readonly bucket: string;
  /** The bucket's JetStream stream (`KV_<bucket>`). */
  readonly stream: string;
  /**
   * The largest entity a change may hold, in bytes of UTF-8 JSON: the
   * `maxValueBytes` option, or the largest the server carries (at most
   * 1 MiB). `open` checked that the server's `max_payload` carries it with
   * its envelope.
   */
  declare readonly maxValueBytes: number;
  readonly #settings: KvStoreSettings;
  readonly #prefix: string;
  /** Set by `open` once the bucket is there. */
  #connected: Connected | undefined;
  #capabilities: StoreCapabilities = { compact: true, listNamespaces: true, durable: true, watch: true };
  /** Namespaces whose marker this instance has written. */
  readonly #marked = new Set<string>();

  private constructor(options: NatsKvStoreOptions, settings: KvStoreSettings) {
    super("NATS KV store", { ...options, maxValueBytes: settings.maxValueBytes }, "NatsKvStore");
    this.#settings = settings;
    this.bucket = settings.bucket;
    this.stream = `KV_${settings.bucket}`;
    this.#prefix = `$KV.${settings.bucket}.`;
  }

  get capabilities(): StoreCapabilities {
    return this.#capabilities;
  }

  /**
   * Opens (and creates if missing) the bucket. Every option is checked
   * before anything is created.
   * @throws ConfigurationError for an invalid or unknown option, or when the
   *   server's `max_payload` cannot carry a change of `maxValueBytes` plus
   *   its envelope ({@link STORE_ENVELOPE_BYTES})
   * @throws ConfigurationError when the server refuses to create the bucket for the options: its subjects
   *   (`$KV.<bucket>.>`) overlap another stream's (option `bucket`), or `replicas` > 1 on a server that is not
   *   clustered; the server's error is the `cause`
   * @throws PeerMissingError when the NATS client packages are not installed
   * @throws UnavailableError when the server cannot be reached or has no JetStream
   */
  static async open(options: NatsKvStoreOptions): Promise<NatsKvStore> {
    const store = new NatsKvStore(options, checkKvStoreOptions(options));
    await store.#connect();
    return store;
  }

  async #connect(): Promise<void> {
    const { client, bucket, history, replicas, storage } = this.#settings;
    const nats = await loadNatsModules();
    let maxMsgSize: number | undefined;
    try {
      const jsm = await nats.jetstream.jetstreamManager(client);
      const kv = await new nats.kv.Kvm(client)
        .create(bucket, { history, replicas, storage })
        .catch((error: unknown) => {
          throw creationRefusal(error, bucketCreation("NatsKvStore", bucket, replicas));
        });
      const status = await kv.status();
      maxMsgSize = status.streamInfo.config.max_msg_size;
      this.#connected = {
        js: nats.jetstream.jetstream(client),
        jsm,
        replicated: status.streamInfo.config.num_replicas !== 1,
      };
      this.#capabilities = { ...this.#capabilities, durable: status.storage === NatsStorage.File };
    } catch (error) {
      throw natsError(error, `opening KV bucket ${JSON.stringify(bucket)}`);
    }
    // An existing bucket's own largest message bounds a change as the server's max_payload does.
    this.lowerMaxValueBytes(
      bucketValueLimit(
        this.maxValueBytes,
        this.#settings.maxValueBytesGiven,
        maxMsgSize,
        STORE_ENVELOPE_BYTES,
        `NatsKvStore bucket ${JSON.stringify(bucket)}`,
      ),
    );
  }

  /** The connection to the bucket (set once `open` resolved). */
  get #bucket(): Connected {
    return this.#connected as Connected;
  }

  /**
   * Publishes every change, a namespace's marker before its first change.
   * Not atomic across keys: a save that fails part-way throws a
   * {@link NatsSaveError} saying which changes are stored (or the failure
   * itself when none was sent or stored).
   */
  async save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    // Validates names, values, size (maxValueBytes) and entity types before anything is written;
    // `open` made sure every change within maxValueBytes fits the server's max_payload with its envelope.
    const prepared = this.prepare(changes, options);
    if (prepared.length === 0) return;
    await this.#publishAll(prepared, options?.signal);
    for (const p of prepared) this.#marked.add(p.namespace);
  }

  /**
   * Publishes in order (a namespace's marker before its first change) with
   * at most `maxInFlight` unacknowledged; resolves when all are acknowledged.
   */
  async #publishAll(prepared: readonly PreparedChange[], signal: AbortSignal | undefined): Promise<void> {
    const max = this.#settings.maxInFlight;
    const js = this.#bucket.js;
    const acks: Promise<PubAck>[] = [];
    /** Per change (by index): its publish's acknowledgement, once sent. */
    const changeAcks: (Promise<PubAck> | undefined)[] = new Array(prepared.length);
    const tokens = new Map<string, string>();
    /** Per namespace whose marker this save sends: its acknowledgement. */
    const markers = new Map<string, Promise<PubAck>>();
    let head = 0;
    const client = this.#settings.client;
    const send = (subject: string, payload: string) => {
      this.checkOpen();
      // A closed connection sends nothing: the change is not stored (not "uncertain").
      if (client.isClosed()) throw new UnavailableError("the NATS connection is closed");
      const ack = js.publish(subject, payload);
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
      const what = `save to KV bucket ${JSON.stringify(this.bucket)}`;
      const failure = natsError(error, what);
      // Say which changes are stored: wait for every publish already sent.
      const outcomes = await Promise.allSettled(
        Array.from(prepared, (_, i) => changeAcks[i] ?? Promise.reject(NOT_SENT)), // (map would skip the holes)
      );
      const written: number[] = [];
      const uncertain: number[] = [];
      const failed: { index: number; error: unknown }[] = [];
      outcomes.forEach((o, i) => {
        if (o.status === "fulfilled") written.push(i);
        else if (o.reason === NOT_SENT) failed.push({ index: i, error: failure });
        else if (isJetStreamApiError(o.reason)) failed.push({ index: i, error: natsError(o.reason, what) });
        else uncertain.push(i);
      });
      // One change, or nothing sent at all: not a partial write, just the failure.
      if (outcomes.length === 1 || outcomes.every((o) => o.status === "rejected" && o.reason === NOT_SENT)) {
        throw failure;
      }
      const unmarkedNamespaces: string[] = [];
      for (const [namespace, ack] of markers) {
        if ((await Promise.allSettled([ack]))[0]?.status !== "fulfilled") unmarkedNamespaces.push(namespace);
      }
      throw new NatsSaveError({
        operation: `NATS KV ${what}`,
        targets: "changes",
        written,
        uncertain,
        failed,
        cause: failure,
        unmarkedNamespaces,
      });
    }
  }

  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.checkOpen(namespace, options);
    const { js, jsm, replicated } = this.#bucket;
    let read: Change[] = [];
    const filter = `${this.#prefix}${encodeToken(namespace)}.>`;
    try {
      const decoder = new EntityDecoder(namespace);
      const result = await readFiltered(
        js,
        jsm,
        this.stream,
        filter,
        (m, seq) => {
          read.push(this.#decode(m, decoder, seq));
        },
        { signal: options?.signal, replicated },
      );
      // The read went past a lagging replica: a key may come twice, the later one is its newer revision.
      if (result.lagged) read = keepLastPerKey(read, (c) => `${c.entityType}\u0000${c.entityId}`);
    } catch (error) {
      throw natsError(error, `load of namespace ${JSON.stringify(namespace)}`);
    }
    for (const change of read) this.loaded(change);
    // Tombstones are left out here, once every key holds its latest change.
    return options?.liveOnly ? read.filter((c) => c.changeType !== ChangeType.Unset) : read;
  }

  /**
   * A live feed of `namespace`: its current state, the caught-up barrier
   * (also for an empty namespace), then every later change, including
   * those of other clients of the bucket. A position is the bucket
   * stream's sequence (the KV revision) of the namespace's last change
   * delivered; the epoch is the stream's creation time. See docs/nats.md,
   * "Change feeds", for when a position is behind (`FeedBehindError`).
   */
  watch(namespace: string, options?: WatchOptions): ChangeFeed {
    return this.openFeed(namespace, options, (_pollIntervalMs, batchSize) => {
      const { js, jsm, replicated } = this.#bucket;
      const decoder = new EntityDecoder(namespace);
      return new KvFeedSource({
        namespace,
        batchSize,
        client: this.#settings.client,
        js,
        jsm,
        replicated,
        stream: this.stream,
        filter: `${this.#prefix}${encodeToken(namespace)}.>`,
        decode: (m) => this.loaded(this.#decode(m, decoder)),
      });
    });
  }

  /**
   * Drops every revision but the latest of each key of `namespace`. A
   * bucket with history 1 keeps only the latest anyway: then there is
   * nothing to drop and no key is touched.
   */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.checkOpen(namespace, options);
    const { js, jsm, replicated } = this.#bucket;
    try {
      const info = await retryingGet(() => jsm.streams.info(this.stream), options?.signal);
      if (info.config.max_msgs_per_subject === 1) return;
      const subjects: string[] = [];
      await readFiltered(
        js,
        jsm,
        this.stream,
        `${this.#prefix}${encodeToken(namespace)}.>`,
        (m) => subjects.push(m.subject),
        { headersOnly: true, signal: options?.signal, replicated },
      );
      // One exact subject per purge: `keep` then counts that key's revisions only.
      for (const subject of new Set(subjects)) {
        throwIfAborted(options?.signal);
        await jsm.streams.purge(this.stream, { filter: subject, keep: 1 });
      }
    } catch (error) {
      throw natsError(error, `compact of namespace ${JSON.stringify(namespace)}`);
    }
  }

  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.checkOpen(undefined, options);
    const { js, jsm, replicated } = this.#bucket;
    let markers: { name: string; deleted: boolean }[] = [];
    try {
      const read = await readFiltered(
        js,
        jsm,
        this.stream,
        `${this.#prefix}*`,
        (m) => {
          const op = m.headers?.get(KV_OPERATION);
          const name = decodeToken(m.subject.slice(this.#prefix.length), this.#where(m.seq));
          markers.push({ name, deleted: op === "DEL" || op === "PURGE" });
        },
        { headersOnly: true, signal: options?.signal, replicated },
      );
      if (read.lagged) markers = keepLastPerKey(markers, (k) => k.name);
    } catch (error) {
      throw natsError(error, "listNamespaces");
    }
    return markers.filter((k) => !k.deleted).map((k) => k.name);
  }

  /** Deletes the whole bucket and its data. The store is closed afterwards. */
  async destroy(): Promise<void> {
    this.checkOpen();
    await this.close();
    try {
      await this.#bucket.jsm.streams.delete(this.stream);
    } catch (error) {
      throw natsError(error, `deleting KV bucket ${JSON.stringify(this.bucket)}`);
    }
  }

  /** Nothing to release: the NATS connection is the caller's. */
  protected async closeResources(): Promise<void> {}

  #where(seq: number): string {
    return `NATS KV ${this.bucket} revision ${seq}`;
  }

  /** The change a message of this store holds (`seq`: its stream sequence, for error messages). */
  #decode(m: JsMsg, decoder: EntityDecoder, seq = m.seq): Change {
    const key = m.subject.slice(this.#prefix.length);
    const { namespace } = decoder;
    const { entityType, entityId } = decoder.names(key);
    const op = m.headers?.get(KV_OPERATION);
    if (op === "DEL" || op === "PURGE") {
      // Deleted with another KV client (e.g. `nats kv del`): a tombstone at the server's time.
      return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp: m.time };
    }
    const text = TD.decode(m.data);
    // The envelope as `save` writes it: parse only the entity, not the envelope around it.
    if (decoder.set(text)) {
      const { entity, timestamp } = decoder;
      return { namespace, changeType: ChangeType.Set, entityType, entityId, entity, timestamp };
    }
    let value: { changeType?: unknown; timestamp?: unknown; entity?: unknown };
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new CorruptionError(this.#where(seq), undefined, `key ${key} does not hold JSON`, { cause: error });
    }
    const timestamp = typeof value?.timestamp === "string" ? decoder.time(value.timestamp) : undefined;
    if (!timestamp) {
      throw new CorruptionError(this.#where(seq), undefined, `key ${key} has no valid timestamp`);
    }
    if (value.changeType === ChangeType.Unset) {
      return { namespace, changeType: ChangeType.Unset, entityType, entityId, timestamp };
    }
    if (value.changeType !== ChangeType.Set || !("entity" in value)) {
      throw new CorruptionError(this.#where(seq), undefined, `key ${key} is not a statelog change`);
    }
    return { namespace, changeType: ChangeType.Set, entityType, entityId, entity: value.entity, timestamp };
  }
}

/**
 * Decodes the names and timestamps of one namespace's keys, remembering
 * what repeats across keys: the namespace's own token, entity types (a few
 * per namespace) and the last timestamp (the changes of one save share it).
 */
class EntityDecoder {
  readonly #types = new Map<string, string>();
  /** The entity of the last value {@link set} accepted. */
  entity: unknown;
  /** The time of the last value {@link set} accepted. */
  timestamp: Date = new Date(0);
  /** The text of the last timestamp parsed (none at first: an empty text is no time). */
  #lastText: string | undefined;
  #lastMs = 0;

  constructor(readonly namespace: string) {}

  /** The entity type and id of a key `<namespace>.<entityType>.<entityId>` of this namespace. */
  names(key: string): { entityType: string; entityId: string } {
    const first = key.indexOf(".");
    const second = key.indexOf(".", first + 1);
    if (first < 0 || second < 0 || key.indexOf(".", second + 1) >= 0) return parseEntityKey(key); // throws
    const typeToken = key.slice(first + 1, second);
    let entityType = this.#types.get(typeToken);
    if (entityType === undefined) {
      entityType = decodeToken(typeToken);
      this.#types.set(typeToken, entityType);
    }
    return { entityType, entityId: decodeToken(key.slice(second + 1)) };
  }

  /**
   * The entity and time of a stored value written exactly as `save` writes
   * a set (`{"changeType":"set","timestamp":"<ISO time>","entity":<JSON>}`),
   * parsing only the entity: then true, with {@link entity} and
   * {@link timestamp} set. False for anything else (an unset, other
   * spacing, another key order, an entity that is not one JSON value…),
   * which then goes through the full parse and its checks.
   */
  set(text: string): boolean {
    if (!text.startsWith(SET_HEAD) || text.charCodeAt(text.length - 1) !== 125 /* } */) return false;
    const close = text.indexOf('"', SET_HEAD.length);
    if (close < 0 || !text.startsWith(ENTITY_HEAD, close)) return false;
    const iso = text.slice(SET_HEAD.length, close);
    // A backslash would be an escape: the full parse decodes it.
    if (iso.includes("\\")) return false;
    const timestamp = this.time(iso);
    if (timestamp === undefined) return false;
    try {
      // Valid alone, it is exactly the envelope's "entity" (and the envelope has no other key).
      this.entity = JSON.parse(text.slice(close + ENTITY_HEAD.length, -1));
    } catch {
      return false; // e.g. `1,"entity":2`: valid JSON as a whole, not alone
    }
    this.timestamp = timestamp;
    return true;
  }

  /** The Date of an ISO timestamp, or `undefined` when it is not one. */
  time(text: string): Date | undefined {
    if (text !== this.#lastText) {
      const ms = Date.parse(text);
      if (Number.isNaN(ms)) return undefined;
      this.#lastText = text;
      this.#lastMs = ms;
    }
    return new Date(this.#lastMs);
  }
}

/** How every set `save` writes starts, up to its timestamp's text. */
const SET_HEAD = '{"changeType":"set","timestamp":"';
/** What follows the timestamp's text in a set `save` writes, up to the entity. */
const ENTITY_HEAD = '","entity":';

/** Marks a change that was never sent, in a failed save's outcomes. */
const NOT_SENT = Symbol("not sent");

/** The stored value of a change. */
function envelope(p: PreparedChange): string {
  const ts = JSON.stringify(p.timestamp.toISOString());
  return p.json === undefined
    ? `{"changeType":"unset","timestamp":${ts}}`
    : `{"changeType":"set","timestamp":${ts},"entity":${p.json}}`;
}
