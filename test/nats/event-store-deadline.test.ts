import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { ErrorCode, isUnavailableError } from "../../src/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { startBlackholeProxy } from "./blackhole-proxy.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { startProxy, startThrottleProxy } from "./proxy.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-deadline");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

const event = (type: string) => createEvent(type, { at: type });

describe("NatsEventStore when the server goes silent after acknowledging an append", () => {
  it("the append fails with UnavailableError after catchUpTimeoutMs instead of waiting for ever", async () => {
    const proxy = await startBlackholeProxy(natsUrl());
    const client = await connect({ servers: proxy.url, name: "deadline", reconnect: false });
    const stream = uniqueBucket("EVD");
    const store = await NatsEventStore.open({ client, stream, catchUpTimeoutMs: 1_000 });
    try {
      await store.append("s", [event("first")]);
      proxy.arm(store.prefix, stream);
      const started = Date.now();
      const error = await store.append("s", [event("second")]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(proxy.silent).toBe(true);
      expect(isUnavailableError(error)).toBe(true);
      expect((error as Error).message).toContain("catchUpTimeoutMs");
      expect(Date.now() - started).toBeLessThan(10_000);
      // The server did store it: another connection reads both.
      await using reader = await NatsEventStore.open({ client: nc, stream });
      expect((await reader.readStream("s")).map((e) => e.type)).toEqual(["first", "second"]);
    } finally {
      await proxy.close();
      await store.close();
      await client.close().catch(() => undefined);
    }
  });

  it("catchUp() and an append that must catch up fail with UnavailableError when the server stops answering", async () => {
    let silent = false;
    const proxy = await startProxy(natsUrl(), (client) => (chunk) => {
      if (!silent) client.write(chunk);
    });
    const client = await connect({ servers: proxy.url, name: "deadline-silent", reconnect: false });
    try {
      await using store = await NatsEventStore.open({ client, stream: uniqueBucket("EVD"), catchUpTimeoutMs: 1_000 });
      await store.append("s", [event("first")]);
      silent = true;
      const [caughtUp, appended] = await Promise.all(
        [store.catchUp(), store.append("s", [event("second")], { expectedVersion: 5 })].map((p) =>
          p.then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      );
      expect(isUnavailableError(caughtUp), String(caughtUp)).toBe(true);
      expect(String(caughtUp)).toContain("within 1000 ms (catchUpTimeoutMs)");
      // The conflict is seen on the index first: confirming it needs the server, which does not answer.
      expect(isUnavailableError(appended), String(appended)).toBe(true);
    } finally {
      await client.close().catch(() => undefined);
      await proxy.close();
    }
  });

  it("refuses an invalid catchUpTimeoutMs with a ConfigurationError before creating anything", async () => {
    const stream = uniqueBucket("EVD");
    for (const catchUpTimeoutMs of [0, 1.5, -1]) {
      await expect(NatsEventStore.open({ client: nc, stream, catchUpTimeoutMs })).rejects.toMatchObject({
        code: ErrorCode.Configuration,
        message: expect.stringContaining("catchUpTimeoutMs"),
      });
    }
  });
});

describe("NatsEventStore reading a stream for longer than catchUpTimeoutMs", () => {
  it("open reads a stream for longer than catchUpTimeoutMs while its messages keep coming", async () => {
    const stream = uniqueBucket("EVD");
    const writer = await NatsEventStore.open({ client: nc, stream });
    const padding = "x".repeat(24 * 1024);
    for (let i = 0; i < 40; i++) await writer.append(`s${i % 4}`, [createEvent("padded", { i, padding })]);
    await writer.close();
    // About 1 MB at 16 KiB per 50 ms: some 3 s to read, twice the limit, a message every 100 ms or so (the limit
    // leaves room for a pause of the loaded test machine).
    const proxy = await startThrottleProxy(natsUrl(), 16 * 1024, 50);
    const client = await connect({ servers: proxy.url, name: "deadline-slow" });
    try {
      await using store = await NatsEventStore.open({ client, stream, catchUpTimeoutMs: 1500 });
      expect(store.stats().totalEvents).toBe(40);
    } finally {
      await client.close().catch(() => undefined);
      await proxy.close();
    }
  });
});
