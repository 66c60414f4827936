/**
 * NatsEventStore's check of its ordered consumer's silence: a consumer
 * that neither delivers nor sends heartbeats for 5 s is replaced by a new
 * one from the sequence after the last one indexed (its node may be down
 * for good), and a healthy idle one, which sends a heartbeat every second,
 * is kept. A proxy between client and server holds every frame of the
 * consumer's subscription, as a node that went down does.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { collectTypes } from "../helpers/subscription.js";
import { type ProxiedTest, proxiedTest, uniqueBucket } from "./env.js";
import type { ClassifiedFrame, HoldProxy } from "./proxy.js";

let setup: ProxiedTest;
let nc: NatsConnection;
let proxy: HoldProxy;
let client: NatsConnection;
beforeAll(async () => {
  setup = await proxiedTest("event-store-silence");
  ({ nc, proxy, client } = setup);
});
beforeEach(() => proxy.reset());
afterAll(async () => {
  await setup?.close();
});

/** The names of the stream's consumers on the server. */
async function consumerNames(stream: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.consumers.list(stream).next()).map((c) => c.name);
}

/** The subscription id (`MSG <subject> <sid> …`) a frame is sent to. */
const sidOf = (f: ClassifiedFrame) => f.frame.fields[2];

describe("NatsEventStore's ordered consumer", () => {
  it("is kept while idle: its heartbeats and pull time-outs are signs of life", { timeout: 60_000 }, async () => {
    const stream = uniqueBucket("IDLE");
    await using store = await NatsEventStore.open({ client, stream });
    await store.append("s", [createEvent("e", {})]);
    const [consumer] = await consumerNames(stream);
    // While it waits the server sends a heartbeat, or ends a pull with a 408 (the client pulls again), each second.
    let statuses = 0;
    proxy.delay = (f) => {
      if (/^NATS\/1\.0 (100|408) /u.test(f.frame.payload?.toString("latin1") ?? "")) statuses++;
      return 0;
    };
    // Eight of them: eight seconds idle, more than the 5 s of silence after which a consumer is replaced.
    await vi.waitFor(() => expect(statuses).toBeGreaterThanOrEqual(8), { timeout: 30_000, interval: 200 });
    expect(await consumerNames(stream)).toEqual([consumer]);
  });

  it("is replaced when it falls silent: a live subscription gets every append once, in order", {
    timeout: 90_000,
  }, async () => {
    const stream = uniqueBucket("SILENT");
    await using storeA = await NatsEventStore.open({ client, stream });
    await storeA.append("s", [createEvent("first", {})]);
    const delivery = proxy.passed.findLast((f) => f.kind === "delivery");
    const sid = delivery ? sidOf(delivery) : undefined;
    expect(sid).toBeDefined();
    const [old] = await consumerNames(stream);
    expect(old).toBe(delivery?.consumer);

    const subscription = collectTypes(storeA, "s");
    const got = subscription.types;
    await vi.waitFor(() => expect(got).toEqual(["first"]), { timeout: 10_000 });

    // Nothing of the consumer reaches store A any more: no delivery, no heartbeat, no reply to its pulls.
    proxy.hold = (f) => sidOf(f) === sid;
    // Another process appends (straight to the server).
    await using storeB = await NatsEventStore.open({ client: nc, stream });
    await storeB.append("s", [createEvent("second", {})], { expectedVersion: 1 });
    await vi.waitFor(() => expect(got).toEqual(["first", "second"]), { timeout: 30_000, interval: 100 });
    // The silent consumer is deleted on the server, the new one reads on.
    await vi.waitFor(async () => {
      const names = await consumerNames(stream);
      expect(names.filter((n) => n !== old)).toHaveLength(2); // store A's new consumer and store B's
      expect(names).not.toContain(old);
    });

    // What the old consumer had sent comes late (its subscription is gone: the client drops it), then a third append.
    expect(proxy.held.some((f) => f.kind === "delivery")).toBe(true);
    proxy.hold = () => false;
    proxy.flush();
    await storeB.append("s", [createEvent("third", {})], { expectedVersion: 2 });
    await vi.waitFor(() => expect(got).toEqual(["first", "second", "third"]), { timeout: 10_000 });
    await storeA.catchUp();
    expect((await storeA.readStream("s")).map((e) => e.type)).toEqual(["first", "second", "third"]);
    expect(got).toEqual(["first", "second", "third"]);
    await subscription.stop();
  });
});
