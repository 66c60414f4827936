/** The NATS server of the test run (see `./global-setup.ts`). */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import { type HoldProxy, startHoldProxy } from "./proxy.js";

/** The server URL; throws (fails the test, never skips it) when there is none. */
export function natsUrl(): string {
  const url = inject("natsUrl");
  if (!url) throw new Error(inject("natsError") || "no NATS server: is test/nats/global-setup.ts in vitest.config.ts?");
  return url;
}

/** A new connection to the test server. */
export function connectTest(name = "statelog-test"): Promise<NatsConnection> {
  return connect({ servers: natsUrl(), name });
}

/** Marks every bucket and stream this test file creates (see {@link deleteTestStreams}). */
const RUN = `r${process.pid}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** A bucket or stream name no other test uses. */
export function uniqueBucket(prefix = "t"): string {
  return `${prefix}_${RUN}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Deletes the streams (and so KV buckets) this test file created: keeps a shared `NATS_URL` server clean. */
export async function deleteTestStreams(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const name of jsm.streams.names()) if (name.includes(`_${RUN}_`)) names.push(name);
  await Promise.all(names.map((n) => jsm.streams.delete(n).catch(() => false)));
}

/** A test file's connections for fault tests through a {@link HoldProxy}. */
export interface ProxiedTest {
  /** Straight to the server (set-up, other processes' writes, clean-up). */
  readonly nc: NatsConnection;
  readonly proxy: HoldProxy;
  /** Through the proxy. */
  readonly client: NatsConnection;
  /** JetStream and its manager on {@link client}. */
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Closes both connections and the proxy, after deleting the streams the file created. */
  close(): Promise<void>;
}

/** A direct connection, a hold proxy to the test server and a connection through it, named after `name`. */
export async function proxiedTest(name: string): Promise<ProxiedTest> {
  const nc = await connectTest(`${name}-test`);
  const proxy = await startHoldProxy(natsUrl());
  const client = await connect({ servers: proxy.url, name: `${name}-proxied` });
  return {
    nc,
    proxy,
    client,
    js: jetstream(client),
    jsm: await jetstreamManager(client),
    async close() {
      await client.close();
      await proxy.close();
      await deleteTestStreams(nc);
      await nc.close();
    },
  };
}
