/**
 * Loads the NATS client packages (optional peer dependencies) on first
 * use, so that importing `statelog/nats` never fails: only opening a NATS
 * object does, with a `PeerMissingError` that names the packages to
 * install. Everything else in this folder imports them as
 * types only.
 */
import type * as JetStreamModule from "@nats-io/jetstream";
import type * as KvModule from "@nats-io/kv";
import type * as TransportModule from "@nats-io/transport-node";
import { PeerMissingError } from "../index.js";

/** The NATS client packages statelog/nats needs, all optional peer dependencies. */
const NATS_PEER_PACKAGES = ["@nats-io/transport-node", "@nats-io/jetstream", "@nats-io/kv"] as const;

/** The NATS client modules statelog uses. */
export interface NatsModules {
  readonly transport: typeof TransportModule;
  readonly jetstream: typeof JetStreamModule;
  readonly kv: typeof KvModule;
}

let loading: Promise<NatsModules> | undefined;

/**
 * The client modules, loaded once.
 * @throws PeerMissingError naming the packages that could not be loaded (its `packages`)
 */
export function loadNatsModules(): Promise<NatsModules> {
  loading ??= Promise.allSettled([
    import("@nats-io/transport-node"),
    import("@nats-io/jetstream"),
    import("@nats-io/kv"),
  ]).then(([transport, jetstream, kv]) => {
    if (transport.status === "fulfilled" && jetstream.status === "fulfilled" && kv.status === "fulfilled") {
      return { transport: transport.value, jetstream: jetstream.value, kv: kv.value };
    }
    loading = undefined;
    const results = [transport, jetstream, kv];
    const missing = NATS_PEER_PACKAGES.filter((_, i) => results[i]?.status === "rejected");
    const first = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    throw new PeerMissingError("statelog/nats", missing, {
      purpose: "(the NATS client, 3.x)",
      hint: `statelog/nats uses all of ${NATS_PEER_PACKAGES.join(", ")}, in the same major version`,
      cause: first?.reason,
    });
  });
  return loading;
}
