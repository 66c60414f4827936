/** The NATS server of the test run (see `./global-setup.ts`). */
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

/** A bucket or stream name no other test uses. */
export function uniqueBucket(prefix = "t"): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
