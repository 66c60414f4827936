/**
 * `NatsKvSnapshotStore`: the snapshot-store contract (statelog/repository)
 * on a NATS KV bucket. One key per stream (`encodeToken(streamId)`), whose
 * value is the newest snapshot; the bucket's history (`maxSnapshotsPerStream`
 * revisions) holds the older ones, which `load` reads only when the newest
 * is above `maxVersion` or of another `snapshotVersion`. The kept
 * snapshots are the newest by write order (which is by version for one
 * writer per stream).
 */
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CallOptions,
  ConfigurationError,
  CorruptionError,
  isCorruptionError,
  OpenState,
  TooLargeError,
  throwIfAborted,
} from "../index.js";
import {
  type AggregateSnapshot,
  checkSnapshot,
  checkSnapshotLoad,
  checkSnapshotStoreOptions,
  pickSnapshot,
  SNAPSHOT_STORE_DEFAULTS,
  type SnapshotJson,
  type SnapshotLoadOptions,
  type SnapshotStore,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
  snapshotFromJson,
  snapshotStateJson,
} from "../repository/index.js";
import { loadNatsModules } from "./client.js";
import { bucketCreation, creationRefusal, isWrongLastSequence, natsError } from "./errors.js";
import { natsInternalsOf } from "./internal.js";
import { encodeToken } from "./keys.js";
import { checkClient, checkStreamName, MAX_REPLICAS, NatsStorage } from "./options.js";
import { bucketValueLimit, serverMaxPayload } from "./payload.js";
import { getStored } from "./reader.js";
import { kvBucketPlacement, requireReplicatedCompareAndSet } from "./server.js";

/** Defaults of {@link NatsKvSnapshotStoreOptions}. */
export const NATS_KV_SNAPSHOT_STORE_DEFAULTS = {
  ...SNAPSHOT_STORE_DEFAULTS,
  /** @default "statelog_snapshots" */
  bucket: "statelog_snapshots",
  /** @default 1 */
  replicas: 1,
  /** @default "file" */
  storage: NatsStorage.File,
} as const;

/** Options of {@link NatsKvSnapshotStore.open}. */
export interface NatsKvSnapshotStoreOptions extends SnapshotStoreOptions {
  /** An open NATS connection (required); the store never closes it. */
  client: NatsConnection;
  /** KV bucket (`[-_a-zA-Z0-9]`), created when missing with `maxSnapshotsPerStream` as its history. @default "statelog_snapshots" */
  bucket?: string;
  /** Replicas of a bucket this call creates (1 to 5). @default 1 */
  replicas?: number;
  /** Storage of a bucket this call creates (see {@link NatsStorage}). @default "file" */
  storage?: NatsStorage;
}

type StoredSnapshot = SnapshotJson & { readonly streamId: string };

const TD = new TextDecoder();
/** Room for the KV put's subject and headers within the server's `max_payload`. */
const PUT_OVERHEAD_BYTES = 512;

/** A key's newest value: its KV operation ("PUT", "DEL", "PURGE"), revision and bytes. */
interface Newest {
  operation: string;
  revision: number;
  value: Uint8Array;
}

/** Snapshots of aggregates in a NATS KV bucket. Open with {@link NatsKvSnapshotStore.open}. */
export class NatsKvSnapshotStore implements SnapshotStore {
  readonly capabilities: SnapshotStoreCapabilities;
  /** The KV bucket. */
  readonly bucket: string;
  readonly #kv: KV;
  /** The bucket's stream manager: its gets (see {@link getStored}). */
  readonly #jsm: JetStreamManager;
  /** Whether the bucket answers direct gets that are never stale (one replica, `allow_direct`); else the leader answers. */
  readonly #direct: boolean;
  readonly #maxBytes: number;
  readonly #open = new OpenState("snapshot store");

  private constructor(
    bucket: string,
    kv: KV,
    jsm: JetStreamManager,
    replicated: boolean,
    direct: boolean,
    durable: boolean,
    maxBytes: number,
  ) {
    this.bucket = bucket;
    this.#kv = kv;
    this.#jsm = jsm;
    this.#direct = direct && !replicated;
    this.#maxBytes = maxBytes;
    this.capabilities = { durable };
  }

  /**
   * Opens the bucket, creating it when missing.
   * @throws ConfigurationError for an invalid or unknown option, or a bucket whose history is not `maxSnapshotsPerStream`
   * @throws ConfigurationError when the server refuses to create the bucket for the options: its subjects
   *   (`$KV.<bucket>.>`) overlap another stream's (option `bucket`), or `replicas` > 1 on a server that is not
   *   clustered; the server's error is the `cause`
   * @throws UnsupportedError for a replicated bucket (`replicas` > 1, or an existing one) on a server whose
   *   compare-and-set does not hold there (`NatsFeature.ReplicatedCompareAndSet`)
   * @throws PeerMissingError | UnavailableError
   */
  static async open(options: NatsKvSnapshotStoreOptions): Promise<NatsKvSnapshotStore> {
    const { check, maxSnapshotsPerStream } = checkSnapshotStoreOptions<NatsKvSnapshotStoreOptions>(
      "NatsKvSnapshotStore",
      options,
      ["client", "bucket", "replicas", "storage"],
      NATS_KV_SNAPSHOT_STORE_DEFAULTS,
    );
    const client = checkClient(check);
    const bucket = checkStreamName(check, "bucket", "KV bucket");
    const replicas = check.integer("replicas", { min: 1, max: MAX_REPLICAS });
    const storage = check.oneOf("storage", NatsStorage);
    // Every save is a compare-and-set (so that two saves of one stream cannot land out of order): refused before
    // anything is created on a server where it does not hold on a replicated bucket.
    const allowed = natsInternalsOf(options).replicatedCasOnAnyServer === true;
    const cas = (count: number, found: boolean) =>
      kvBucketPlacement("NatsKvSnapshotStore", bucket, allowed, count, found);
    requireReplicatedCompareAndSet(client, cas(replicas, false));
    const nats = await loadNatsModules();
    try {
      const kv = await new nats.kv.Kvm(client)
        .create(bucket, { history: maxSnapshotsPerStream, replicas, storage })
        .catch((error: unknown) => {
          throw creationRefusal(error, bucketCreation("NatsKvSnapshotStore", bucket, replicas));
        });
      const status = await kv.status();
      requireReplicatedCompareAndSet(client, cas(status.streamInfo.config.num_replicas, true));
      if (status.history !== maxSnapshotsPerStream) {
        throw new ConfigurationError(
          `KV bucket ${JSON.stringify(bucket)} exists with history ${status.history}, not maxSnapshotsPerStream = ${maxSnapshotsPerStream}: use another bucket or the same setting`,
        );
      }
      // The server's largest message, and an existing bucket's own (max_msg_size), bound a snapshot.
      const maxBytes = bucketValueLimit(
        serverMaxPayload(client) - PUT_OVERHEAD_BYTES,
        false,
        status.streamInfo.config.max_msg_size,
        PUT_OVERHEAD_BYTES,
        `NatsKvSnapshotStore bucket ${JSON.stringify(bucket)}`,
      );
      const { num_replicas: replicaCount, allow_direct: direct } = status.streamInfo.config;
      return new NatsKvSnapshotStore(
        bucket,
        kv,
        await nats.jetstream.jetstreamManager(client),
        replicaCount !== 1,
        direct === true,
        status.storage === NatsStorage.File,
        maxBytes,
      );
    } catch (error) {
      throw natsError(error, `opening KV bucket ${JSON.stringify(bucket)}`);
    }
  }

  /** @throws TooLargeError when the snapshot is over the server's `max_payload` (nothing written) */
  async save(snapshot: AggregateSnapshot, options?: CallOptions): Promise<void> {
    this.#open.check();
    throwIfAborted(options?.signal);
    const s = checkSnapshot(snapshot);
    const stored: StoredSnapshot = {
      streamId: s.streamId,
      version: s.version,
      snapshotVersion: s.snapshotVersion,
      createdAt: s.createdAt.toISOString(),
      // JSON data only: what JSON would change would make a load through the snapshot return another state.
      state: snapshotStateJson(s),
    };
    const bytes = Buffer.from(JSON.stringify(stored));
    if (bytes.byteLength > this.#maxBytes) {
      throw new TooLargeError(bytes.byteLength, this.#maxBytes, `snapshot of stream ${JSON.stringify(s.streamId)}`);
    }
    const key = encodeToken(s.streamId);
    try {
      // The key's history is its snapshots in write order, and a load takes the newest written when it fits: a
      // snapshot at or below the newest one's version (of the same snapshotVersion) is not written. The store then
      // keeps what the others keep: the newest versions, one snapshot per version. The write is a compare-and-set
      // on the revision read, so two saves of one stream at once cannot land out of order.
      for (let attempt = 0; ; attempt++) {
        const newest = await this.#newest(key, options?.signal);
        if (newest !== null && newest.operation === "PUT") {
          const current = this.#decodeOrDamaged(s.streamId, newest.value);
          // A damaged newest value is replaced (a load reports it; without this save it would stay forever).
          if (current?.snapshotVersion === s.snapshotVersion && current.version >= s.version) return;
        }
        try {
          if (newest === null) await this.#kv.create(key, bytes);
          else await this.#kv.update(key, bytes, newest.revision);
          return;
        } catch (error) {
          if (!isWrongLastSequence(error) || attempt >= 100) throw error;
        }
      }
    } catch (error) {
      throw natsError(error, `snapshot save to KV bucket ${JSON.stringify(this.bucket)}`);
    }
  }

  async load(streamId: string, options?: SnapshotLoadOptions): Promise<AggregateSnapshot | undefined> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, options);
    const key = encodeToken(streamId);
    try {
      const newest = await this.#newest(key, options?.signal);
      if (newest === null || newest.operation !== "PUT") return undefined;
      const first = this.#decode(streamId, newest.value);
      // Snapshots of another snapshotVersion than the newest one's are stale: the other stores drop them on save.
      if (options?.snapshotVersion !== undefined && options.snapshotVersion !== first.snapshotVersion) return undefined;
      if (pickSnapshot([first], options) !== undefined) return first;
      const all: AggregateSnapshot[] = [];
      for (const entry of await this.#history(key, options?.signal)) {
        if (entry.operation !== "PUT") continue;
        // An older value found damaged is left out (the newest one, read above, is reported when damaged).
        const snapshot = this.#decodeOrDamaged(streamId, entry.value);
        if (snapshot?.snapshotVersion === first.snapshotVersion) all.push(snapshot);
      }
      return pickSnapshot(all, options);
    } catch (error) {
      throw natsError(error, `snapshot load from KV bucket ${JSON.stringify(this.bucket)}`);
    }
  }

  async delete(streamId: string, options?: CallOptions): Promise<boolean> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, undefined);
    const key = encodeToken(streamId);
    try {
      const newest = await this.#newest(key, options?.signal);
      if (newest === null || newest.operation !== "PUT") return false;
      await this.#kv.purge(key);
      return true;
    } catch (error) {
      throw natsError(error, `snapshot delete in KV bucket ${JSON.stringify(this.bucket)}`);
    }
  }

  /** Later calls fail with a `ClosedError`; the connection stays open. Idempotent. */
  async close(): Promise<void> {
    this.#open.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A key's newest value, or `null`: never from a replica that is behind (so an acknowledged save is always seen). */
  async #newest(key: string, signal: AbortSignal | undefined): Promise<Newest | null> {
    const sm = await getStored(this.#jsm, this.#stream, this.#direct, { last_by_subj: this.#subject(key) }, signal);
    return sm && stored(sm);
  }

  /**
   * A key's values, oldest first: gets by subject (`next_by_subj`), one per
   * value (at most `maxSnapshotsPerStream`). Not the KV client's history,
   * whose ordered consumer stays on the server for five minutes after each
   * read.
   */
  async #history(key: string, signal: AbortSignal | undefined): Promise<Newest[]> {
    const out: Newest[] = [];
    for (let seq = 1; ; ) {
      throwIfAborted(signal);
      const query = { next_by_subj: this.#subject(key), seq };
      const sm = await getStored(this.#jsm, this.#stream, this.#direct, query, signal);
      if (!sm) return out;
      out.push(stored(sm));
      seq = sm.seq + 1;
    }
  }

  /** The bucket's stream. */
  get #stream(): string {
    return `KV_${this.bucket}`;
  }

  /** The subject of `key`. */
  #subject(key: string): string {
    return `$KV.${this.bucket}.${key}`;
  }

  /** {@link #decode}, or `undefined` for a value it finds damaged. */
  #decodeOrDamaged(streamId: string, value: Uint8Array): AggregateSnapshot | undefined {
    try {
      return this.#decode(streamId, value);
    } catch (error) {
      if (isCorruptionError(error)) return undefined;
      throw error;
    }
  }

  #decode(streamId: string, value: Uint8Array): AggregateSnapshot {
    const where = `KV bucket ${this.bucket}`;
    let s: StoredSnapshot;
    try {
      s = JSON.parse(TD.decode(value)) as StoredSnapshot;
    } catch (error) {
      throw new CorruptionError(
        where,
        undefined,
        `snapshot of ${JSON.stringify(streamId)} is not JSON: ${String(error)}`,
      );
    }
    if (s?.streamId !== streamId) {
      throw new CorruptionError(
        where,
        undefined,
        `the key of ${JSON.stringify(streamId)} holds another stream's snapshot`,
      );
    }
    return snapshotFromJson(s, streamId, where);
  }
}

/** A stored message of the bucket as a value with its operation and revision. */
function stored(sm: StoredMsg): Newest {
  return { operation: sm.header?.get("KV-Operation") || "PUT", revision: sm.seq, value: sm.data };
}
