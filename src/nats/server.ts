/**
 * What the connected nats-server can do. The version comes from the INFO
 * the server sent on connect; features newer than the server fail with an
 * `UnsupportedError` instead of being silently ignored (nats-server 2.9
 * accepts and ignores a per-message TTL header, for example).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { UnsupportedError } from "../index.js";

/** A server version as `[major, minor, patch]`. */
export type ServerVersion = readonly [number, number, number];

/** Server features statelog checks before it uses them. */
export const NatsFeature = {
  /** Per-message TTL (`Nats-TTL` header, stream `allow_msg_ttl`): nats-server 2.11. */
  PerMessageTtl: "per-message TTL",
  /**
   * Compare-and-set (`Nats-Expected-Last-Subject-Sequence`) on a stream of
   * more than one replica: nats-server 2.10.19. Before 2.9.21 the stream
   * leader checked the expected sequence only before it proposed the write
   * to the replicas, so two writes expecting the same sequence could both
   * be stored; before 2.10.19 it did not check an expected sequence of 0
   * (create if absent) at all before proposing it, and a replica could store
   * a write the leader refused. The repository, the event store and the
   * snapshot store write only so, the read-model store with an
   * `expectedRevision` (a projection's writes).
   */
  ReplicatedCompareAndSet: "compare-and-set on a replicated stream",
} as const;
export type NatsFeature = (typeof NatsFeature)[keyof typeof NatsFeature];

const MIN_VERSION: Record<NatsFeature, ServerVersion> = {
  [NatsFeature.PerMessageTtl]: [2, 11, 0],
  [NatsFeature.ReplicatedCompareAndSet]: [2, 10, 19],
};

/** The oldest nats-server version that has `feature`. */
export function minimumVersion(feature: NatsFeature): ServerVersion {
  return MIN_VERSION[feature];
}

/** Parses `"2.9.10"` (a `-beta` suffix is ignored). */
export function parseServerVersion(text: string): ServerVersion {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return [0, 0, 0];
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** The version of the server `nc` is connected to (`[0,0,0]` when unknown). */
export function serverVersion(nc: NatsConnection): ServerVersion {
  return parseServerVersion(nc.info?.version ?? "");
}

/** True when version `have` is `want` or newer. */
export function atLeast(have: ServerVersion, want: ServerVersion): boolean {
  for (let i = 0; i < 3; i++) {
    if ((have[i] as number) !== (want[i] as number)) return (have[i] as number) > (want[i] as number);
  }
  return true;
}

/** True when the connected server supports `feature`. */
export function supports(nc: NatsConnection, feature: NatsFeature): boolean {
  return atLeast(serverVersion(nc), MIN_VERSION[feature]);
}

/**
 * Throws when the connected server lacks `feature`.
 * @throws UnsupportedError naming the feature, the version needed and the version connected
 */
export function requireFeature(nc: NatsConnection, feature: NatsFeature): void {
  if (supports(nc, feature)) return;
  const want = MIN_VERSION[feature].join(".");
  throw new UnsupportedError(
    `${feature} needs nats-server ${want} or newer; the connected server is ${nc.info?.version ?? "of unknown version"}` +
      " (statelog refuses instead of letting the server silently ignore it)",
  );
}

/** Where a class that writes by compare-and-set keeps its data, for {@link requireReplicatedCompareAndSet}. */
export interface CompareAndSetPlacement {
  /** The class, for the message: `"NatsKvRepository"`. */
  readonly owner: string;
  /** The bucket or stream, for the message: `KV bucket "orders"`. */
  readonly where: string;
  /** Its JetStream stream: `KV_orders`. */
  readonly stream: string;
  /** Its replicas: the `replicas` option (`found` false) or those of the existing bucket or stream (`found` true). */
  readonly replicas: number;
  readonly found: boolean;
  /** The internal opt-in of statelog's own tests (`NatsInternals.replicatedCasOnAnyServer`). */
  readonly allowed: boolean;
}

/**
 * The placement of the KV bucket `bucket` of `owner`, with `replicas` (asked, or `found` on the bucket);
 * `allowed`: the internal opt-in.
 */
export function kvBucketPlacement(
  owner: string,
  bucket: string,
  allowed: boolean,
  replicas: number,
  found: boolean,
): CompareAndSetPlacement {
  return { owner, where: `KV bucket ${JSON.stringify(bucket)}`, stream: `KV_${bucket}`, replicas, found, allowed };
}

/**
 * Refuses a bucket or stream of more than one replica when the connected
 * server is older than {@link NatsFeature.ReplicatedCompareAndSet} needs:
 * there, two writers could both win a compare-and-set.
 * @throws UnsupportedError naming the server's version, the fixed one and what to do
 */
export function requireReplicatedCompareAndSet(nc: NatsConnection, at: CompareAndSetPlacement): void {
  if (at.replicas <= 1 || at.allowed || supports(nc, NatsFeature.ReplicatedCompareAndSet)) return;
  const fixed = MIN_VERSION[NatsFeature.ReplicatedCompareAndSet].join(".");
  throw new UnsupportedError(
    `${at.owner}: ${at.where} ${at.found ? "has" : "would have"} ${at.replicas} replicas, and on the connected ` +
      `nats-server ${nc.info?.version ?? "of unknown version"} two concurrent writers could both win a compare-and-set ` +
      `on a replicated stream (a nats-server bug, fixed in ${fixed}): its conditional writes (expected versions, ` +
      `expected revisions) would not hold. Upgrade the server to ${fixed} or newer, or use replicas 1` +
      (at.found ? ` (nats stream edit ${at.stream} --replicas 1 brings it down to one replica)` : ""),
  );
}
