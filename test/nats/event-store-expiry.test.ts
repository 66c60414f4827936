/**
 * NatsEventStore on a stream whose messages the server removed (max_age
 * retention, a purge): appends go on, from a running process and from one
 * opened afterwards (the compare-and-sets follow what the server holds,
 * not what this process last saw).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-expiry-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

const event = (n: number) => createEvent("counted", { n });

describe("NatsEventStore after the server removed messages", () => {
  it("a running store appends to a stream whose last message expired (max_age)", { timeout: 30_000 }, async () => {
    await using store = await NatsEventStore.open({
      client: nc,
      stream: uniqueBucket("EXP"),
      retentionDurationMs: 1000,
    });
    await store.append("s", [event(1), event(2)]);
    await new Promise((r) => setTimeout(r, 2_500)); // the server expires both messages
    const appended = await store.append("s", [event(3)]);
    expect(appended.firstPosition).toBe(3); // positions never restart
    await store.append("other", [event(4)]);
  });

  it("after a purge: the running store appends on, and a store opened afterwards creates new streams", async () => {
    const stream = uniqueBucket("PURGED");
    await using first = await NatsEventStore.open({ client: nc, stream });
    await first.append("s", [event(1), event(2)]);
    await (await jetstreamManager(nc)).streams.purge(stream);
    expect((await first.append("s", [event(3)])).firstPosition).toBe(3);
    await (await jetstreamManager(nc)).streams.purge(stream);
    await using second = await NatsEventStore.open({ client: nc, stream });
    // A new stream id counts against maxStreams (10000 by default): its append compares the whole stream's last sequence.
    const created = await second.append("new-id", [event(4)]);
    expect(created.firstPosition).toBe(1);
    await first.catchUp();
    expect((await first.readStream("new-id")).map((e) => e.data)).toEqual([{ n: 4 }]);
  });

  it("a message it cannot read stops its index: reads, appends and live subscriptions fail with that error", async () => {
    const stream = uniqueBucket("FOREIGN");
    await using store = await NatsEventStore.open({ client: nc, stream });
    await store.append("s", [event(1)]);
    const sub = store.subscribeAll(0);
    const live = sub.nextBatch?.();
    expect((await live)?.map((e) => e.data)).toEqual([{ n: 1 }]);
    const waiting = sub.nextBatch?.().then(
      () => "delivered",
      (e: unknown) => e,
    );
    // Another program publishes something that is not a statelog append to the stream's subjects.
    const js = (await import("@nats-io/jetstream")).jetstream(nc);
    await js.publish(`${store.prefix}.s`, "not json");
    const corrupt = (e: unknown) => (e as { code?: string }).code === "STATELOG_CORRUPTION";
    await expect
      .poll(
        async () =>
          store.readStream("s").then(
            () => "read",
            (e: unknown) => e,
          ),
        { timeout: 5_000 },
      )
      .toSatisfy(corrupt);
    expect(corrupt(await waiting)).toBe(true);
    await expect(store.append("s", [event(2)])).rejects.toSatisfy(corrupt);
    expect(() => store.subscribeAll(0)).toThrow(/not JSON/);
  });

  it("two processes appending to one stream id at once: every append stored once, none rejected", {
    timeout: 120_000,
  }, async () => {
    // A second connection: another process as far as the server is concerned.
    const other = await connectTest("event-store-expiry-test-b");
    try {
      const stream = uniqueBucket("HOT");
      await using a = await NatsEventStore.open({ client: nc, stream });
      await using b = await NatsEventStore.open({ client: other, stream });
      await a.append("hot", [event(0)]);
      await b.catchUp();
      const errors: unknown[] = [];
      let stored = 0;
      const writer = async (store: NatsEventStore, n: number) => {
        for (let i = 0; i < n; i++) {
          await store.append("hot", [event(i)]).then(
            () => stored++,
            (e: unknown) => errors.push(e),
          );
        }
      };
      // Lost compare-and-sets make each writer re-read the subject's last sequence while the other appends.
      await Promise.all([writer(a, 300), writer(a, 300), writer(b, 300), writer(b, 300)]);
      await a.catchUp();
      expect(errors.map(String)).toEqual([]);
      expect((await a.readStream("hot")).length - 1).toBe(stored);
    } finally {
      await other.close();
    }
  });
});
