/**
 * NatsEventStore while its ordered consumer delivers nothing (a stalled
 * peer): a waiting append reads its message with leader-served gets after
 * 500 ms, one fill at a time, and passes over only messages the stream
 * says were removed. A proxy between client and server holds the
 * consumer's deliveries and delays or rewrites the replies to those gets.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { isAbortError, isNotFoundError } from "../../src/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { type ProxiedTest, proxiedTest, uniqueBucket } from "./env.js";
import type { ClassifiedFrame, HoldProxy } from "./proxy.js";

let setup: ProxiedTest;
let nc: NatsConnection;
let proxy: HoldProxy;
let client: NatsConnection;
beforeAll(async () => {
  setup = await proxiedTest("event-store-fill");
  ({ nc, proxy, client } = setup);
});
beforeEach(() => proxy.reset());
afterAll(async () => {
  await setup?.close();
});

/** A get reply turned into a JetStream API error. */
function getAnswered(f: ClassifiedFrame, code: number, errCode: number, description: string): Buffer {
  const body = JSON.stringify({
    type: "io.nats.jetstream.api.v1.stream_msg_get_response",
    error: { code, err_code: errCode, description },
  });
  const [, subject, sid] = f.frame.fields;
  return Buffer.from(`MSG ${subject} ${sid} ${Buffer.byteLength(body)}\r\n${body}\r\n`, "latin1");
}

/** A get reply turned into an error other than "no message found" (the server failing to answer). */
const getFailed = (f: ClassifiedFrame) => getAnswered(f, 503, 10008, "JetStream system temporarily unavailable");

/** A get reply turned into "no message found" (what a peer that has not applied the message yet answers). */
const getNotFound = (f: ClassifiedFrame) => getAnswered(f, 404, 10037, "no message found");

/**
 * A store through the proxy whose consumer delivers nothing (after its own first append to "a"), once another
 * process appended `xs` events to "x", then one to "y".
 */
async function stalledAfterOthers(name: string, xs: number, catchUpTimeoutMs: number) {
  const stream = uniqueBucket(name);
  const store = await NatsEventStore.open({ client, stream, catchUpTimeoutMs });
  await store.append("a", [createEvent("e", { n: 0 })]);
  proxy.hold = (f) => f.kind === "delivery";
  {
    await using writer = await NatsEventStore.open({ client: nc, stream });
    for (let i = 0; i < xs; i++) await writer.append("x", [createEvent("e", { i })]);
    await writer.append("y", [createEvent("e", { n: 2 })]);
  }
  return { stream, store };
}

describe("NatsEventStore whose ordered consumer delivers nothing", () => {
  it("a get that finds nothing where the stream says a message is, is read again, never passed over", {
    timeout: 30_000,
  }, async () => {
    await using store = await NatsEventStore.open({ client, stream: uniqueBucket("NOTYET"), catchUpTimeoutMs: 6_000 });
    await store.append("a", [createEvent("e", { n: 0 })]);
    // The fill's first get of the new message (after its check of the last message read) answers "no message
    // found", as a newly elected leader that has not applied it yet does; the stream's info, asked next, holds it.
    let gets = 0;
    proxy.hold = (f) => f.kind === "delivery";
    proxy.rewrite = (f) => (f.kind === "get" && ++gets === 2 ? getNotFound(f) : f.frame.bytes);
    const appended = await store.append("a", [createEvent("e", { n: 1 })]);
    expect(appended).toMatchObject({ streamId: "a", firstPosition: 2 });
    expect((await store.readStream("a")).map((e) => e.data)).toEqual([{ n: 0 }, { n: 1 }]);
    expect(gets).toBeGreaterThan(2); // read again
  });

  it("a message deleted from the middle of the stream is passed over by a fill", { timeout: 30_000 }, async () => {
    const stalled = await stalledAfterOthers("DELETED", 1, 6_000);
    await using store = stalled.store;
    // The message of "x" is deleted (an administrator's `nats stream rmm`).
    expect(await (await jetstreamManager(nc)).streams.deleteMessage(stalled.stream, 2)).toBe(true);
    expect(await store.append("a", [createEvent("e", { n: 3 })])).toMatchObject({ streamId: "a", firstPosition: 2 });
    expect((await store.readStream("y")).map((e) => e.data)).toEqual([{ n: 2 }]);
    await expect(store.readStream("x")).rejects.toSatisfy(isNotFoundError); // its only event is gone
  });

  it("a fill passes over a run of deleted messages with one stream info", { timeout: 60_000 }, async () => {
    const stalled = await stalledAfterOthers("MANYDEL", 300, 20_000);
    const { stream } = stalled;
    await using store = stalled.store;
    // "x" is purged: 300 deleted sequences in a row.
    const jsm = await jetstreamManager(nc);
    const filter = ((await jsm.streams.info(stream)).config.subjects[0] as string).replace(">", "x");
    expect((await jsm.streams.purge(stream, { filter })).purged).toBe(300);
    let infos = 0;
    proxy.rewrite = (f) => {
      if (f.frame.payload?.includes("stream_info_response")) infos++;
      return f.frame.bytes;
    };
    expect(await store.append("a", [createEvent("e", { n: 3 })])).toMatchObject({ streamId: "a", firstPosition: 2 });
    expect((await store.readStream("y")).map((e) => e.data)).toEqual([{ n: 2 }]);
    expect(infos).toBeLessThan(10);
  });

  it("an append whose compare-and-set was lost ends at its signal while it reads the subject's last message", {
    timeout: 30_000,
  }, async () => {
    const stream = uniqueBucket("SIGNAL");
    await using store = await NatsEventStore.open({ client, stream });
    await store.append("z", [createEvent("e", { n: 0 })]);
    await store.append("a", [createEvent("e", { n: 1 })]);
    // An administrator purges the subject of "a": the store's last sequence of "a" no longer holds.
    const jsm = await jetstreamManager(nc);
    const filter = ((await jsm.streams.info(stream)).config.subjects[0] as string).replace(">", "a");
    expect((await jsm.streams.purge(stream, { filter })).purged).toBe(1);
    // The server then fails every get (as during an election): the read of the last message asks again and again.
    let gets = 0;
    proxy.rewrite = (f) => {
      if (f.kind !== "get") return f.frame.bytes;
      gets++;
      return getFailed(f);
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const outcome = await store.append("a", [createEvent("e", { n: 2 })], { signal: controller.signal }).then(
      () => "resolved",
      (error: unknown) => error,
    );
    expect(gets).toBeGreaterThan(0);
    expect(isAbortError(outcome), String(outcome)).toBe(true);
  });

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

  it("fills again after a fill that ended when the consumer had caught up meanwhile", { timeout: 30_000 }, async () => {
    await using store = await NatsEventStore.open({ client, stream: uniqueBucket("REFILL"), catchUpTimeoutMs: 4_000 });
    await store.append("a", [createEvent("e", {})]);
    // The server fails every get: each fill stops at its first one and another is due 500 ms later.
    let failed = 0;
    proxy.hold = (f) => f.kind === "delivery";
    proxy.rewrite = (f) => {
      if (f.kind !== "get") return f.frame.bytes;
      failed++;
      return getFailed(f);
    };
    const first = store.append("a", [createEvent("e", { n: 1 })]);
    // Two fills failed (each: the check of the last message read, then the first get); the next is due.
    await vi.waitFor(() => expect(failed >= 4 && failed % 2 === 0).toBe(true), { timeout: 10_000 });
    // The consumer delivers before it: that fill has nothing to read.
    proxy.hold = () => false;
    proxy.rewrite = (f) => f.frame.bytes;
    proxy.flush();
    await first;
    // The consumer stalls again (the due fill comes first, with nothing to read): the next append is read with gets.
    proxy.hold = (f) => f.kind === "delivery";
    expect(await store.append("a", [createEvent("e", { n: 2 })])).toMatchObject({ streamId: "a", firstPosition: 3 });
  });

  it("a fill's check of the last message read holds while the consumer reads on", { timeout: 30_000 }, async () => {
    const stream = uniqueBucket("CHECK");
    {
      await using writer = await NatsEventStore.open({ client: nc, stream });
      for (const id of ["a", "b", "a", "b"]) await writer.append(id, [createEvent("e", { id })]);
    }
    // The consumer delivers sequence 1 ("a"), then nothing until the server answered the fill's check of it: the
    // answer reaches the store 500 ms later, after sequences 2 to 4 (the last one "b").
    const passed = proxy.passed.length;
    proxy.hold = (f) => f.kind === "delivery" && f.seq >= 2;
    proxy.delay = (f) => {
      if (f.kind !== "get") return 0;
      setImmediate(() => {
        proxy.hold = () => false;
        proxy.flush();
      });
      return 500;
    };
    await using store = await NatsEventStore.open({ client, stream, catchUpTimeoutMs: 4_000 });
    await vi.waitFor(() => expect(proxy.passed.slice(passed).some((f) => f.kind === "get")).toBe(true), {
      timeout: 10_000,
    });
    await client.flush(); // the answer is handled
    await store.catchUp();
    expect((await store.readStream("b")).map((e) => e.data)).toEqual([{ id: "b" }, { id: "b" }]);
  });
});
