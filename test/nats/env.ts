/** The NATS server of the test run (see `./global-setup.ts`). */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";

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
