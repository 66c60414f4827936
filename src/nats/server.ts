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
} as const;
export type NatsFeature = (typeof NatsFeature)[keyof typeof NatsFeature];

const MIN_VERSION: Record<NatsFeature, ServerVersion> = {
  [NatsFeature.PerMessageTtl]: [2, 11, 0],
};

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

function atLeast(have: ServerVersion, want: ServerVersion): boolean {
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
