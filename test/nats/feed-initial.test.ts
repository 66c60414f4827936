/**
 * The initial part of a NATS KV change feed while the namespace is written:
 * a "last per subject" consumer passes over a revision written over before
 * it reached it (on a bucket keeping one revision per key it is removed),
 * and the new one comes after the stream's last message as of the read's
 * start. The read reads on to the leader's later answers, so every key
 * that existed before the feed started is in its initial part, each once.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { FeedEvent } from "../../src/index.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { item, untilBarrier } from "../helpers/feed.js";
import { connectTest, type ProxiedTest, proxiedTest, uniqueBucket } from "./env.js";
import type { ClassifiedFrame, HoldProxy } from "./proxy.js";

let setup: ProxiedTest;
let nc: NatsConnection;
/** A second client, as another process writing the bucket. */
let other: NatsConnection;
let proxy: HoldProxy;
/** The feeds' client, behind the proxy. */
let client: NatsConnection;
beforeAll(async () => {
  setup = await proxiedTest("feed-initial");
  ({ nc, proxy, client } = setup);
  other = await connectTest("feed-initial-writer");
});
beforeEach(() => proxy.reset());
afterAll(async () => {
  await other?.close();
  await setup?.close();
});

/** The server's reply to a consumer's creation. */
const isCreateReply = (f: ClassifiedFrame) =>
  f.kind === "other" && f.frame.payload?.includes("consumer_create_response") === true;

/** `[id, position]` of each change before the barrier, and the barrier's position. */
function initialOf(events: readonly FeedEvent[]) {
  return {
    changes: events.flatMap((e) => (e.type === "change" ? [[e.change.entityId, e.position]] : [])),
    barrier: events.at(-1)?.position,
  };
}

/**
 * Starts a feed of "ns" whose initial read's consumer is created on the
 * server (taking a@2 and b@3) but, its creation's reply held, pulled from
 * only after `a` was saved again (sequence 4).
 */
async function feedWithKeyWrittenDuringRead(history: number) {
  const bucket = uniqueBucket("initial");
  await using writer = await NatsKvStore.open({ client: nc, bucket, history });
  // Sequence 1 is the namespace's marker.
  await writer.save([item("ns", "a", 1)]);
  await writer.save([item("ns", "b", 1)]);
  await using store = await NatsKvStore.open({ client, bucket });
  proxy.hold = isCreateReply;
  const feed = store.watch("ns");
  try {
    const events = untilBarrier(feed[Symbol.asyncIterator]());
    await vi.waitFor(() => expect(proxy.held.filter(isCreateReply)).toHaveLength(1), { timeout: 5_000 });
    await writer.save([item("ns", "a", 2)]);
    proxy.hold = () => false;
    proxy.flush();
    return initialOf(await events);
  } finally {
    feed.close();
  }
}

describe("NatsKvStore change feed: the initial part while keys are written", () => {
  it("a key written again before the consumer reached it (its old revision removed) comes, at its new revision", async () => {
    // One revision per key: a@2 is removed, the consumer delivers b@3 (the stream's last when the read began), then a@4.
    expect(await feedWithKeyWrittenDuringRead(1)).toEqual({
      changes: [
        ["b", 3],
        ["a", 4],
      ],
      barrier: 4,
    });
  });

  it("with history above 1, such a key comes once, at its newest revision delivered", async () => {
    // a@2 stays: the consumer delivers a@2, b@3, a@4; the initial part keeps a's last.
    expect(await feedWithKeyWrittenDuringRead(5)).toEqual({
      changes: [
        ["b", 3],
        ["a", 4],
      ],
      barrier: 4,
    });
  });

  it("feeds started while another client keeps writing the keys: every key in each initial part, once", async () => {
    const bucket = uniqueBucket("initial_many");
    await using store = await NatsKvStore.open({ client: nc, bucket });
    await using writer = await NatsKvStore.open({ client: other, bucket });
    await writer.save([item("ns", "a", 0), item("ns", "b", 0)]);
    let writing = true;
    const writes = (async () => {
      for (let n = 1; writing; n++) await writer.save([item("ns", n % 2 ? "a" : "b", n)]);
    })();
    const wrong: string[][] = [];
    try {
      for (let i = 0; i < 100; i++) {
        const feed = store.watch("ns");
        const events = await untilBarrier(feed[Symbol.asyncIterator]());
        feed.close();
        const ids = events.flatMap((e) => (e.type === "change" ? [e.change.entityId] : []));
        if (ids.length !== 2 || !ids.includes("a") || !ids.includes("b")) wrong.push(ids);
      }
    } finally {
      writing = false;
      await writes;
    }
    expect(wrong).toEqual([]);
  });
});
