/**
 * NatsEventStore while its ordered consumer delivers nothing (a stalled
 * peer): a waiting append reads its message with leader-served gets after
 * 500 ms, one fill at a time. A proxy between client and server holds the
 * consumer's deliveries and delays or rewrites the replies to those gets.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { type HoldProxy, startHoldProxy } from "./proxy.js";

let nc: NatsConnection;
let proxy: HoldProxy;
let client: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-fill-test");
  proxy = await startHoldProxy(natsUrl());
  client = await connect({ servers: proxy.url, name: "event-store-fill-proxied" });
});
beforeEach(() => {
  proxy.hold = () => false;
  proxy.delay = () => 0;
  proxy.rewrite = (f) => f.frame.bytes;
});
afterAll(async () => {
  await client?.close();
  await proxy?.close();
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describe("NatsEventStore whose ordered consumer delivers nothing", () => {
  it("an append that waits while another's fill runs is read by that fill", { timeout: 30_000 }, async () => {
    await using store = await NatsEventStore.open({ client, stream: uniqueBucket("FILL"), catchUpTimeoutMs: 4_000 });
    // Both stream ids exist: their appends run side by side (appends that create one take a chain of their own).
    for (const id of ["a", "b"]) await store.append(id, [createEvent("e", { id })]);
    let gets = 0;
    proxy.hold = (f) => f.kind === "delivery";
    proxy.delay = (f) => {
      if (f.kind !== "get") return 0;
      gets++;
      return 1_000;
    };
    const first = store.append("a", [createEvent("e", { n: 1 })]);
    // The first append's fill runs (its first get is answered, and passed on a second later)…
    await vi.waitFor(() => expect(gets).toBeGreaterThan(0), { timeout: 10_000 });
    // …when the second append's 500 ms end: its fill is the running one's, which must read on to it.
    const second = store.append("b", [createEvent("e", { n: 2 })]);
    const [a, b] = await Promise.all([first, second]);
    expect(a).toMatchObject({ streamId: "a", firstPosition: 2 });
    expect(b).toMatchObject({ streamId: "b", firstPosition: 2 });
    expect((await store.readStream("b")).map((e) => e.data)).toEqual([{ id: "b" }, { n: 2 }]);
  });
});
