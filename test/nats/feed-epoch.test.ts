/**
 * A running NATS KV change feed (and the follower on it) across what only
 * looks like a bucket created again (a new creation time of the same
 * stream, a last sequence reported low once by a stream leader still
 * applying), and across a bucket really deleted and created again.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Change, type FeedEvent, isFeedBehindError, ManagerBuilder } from "../../src/index.js";
import { MapEntityRepository } from "../../src/memory/index.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { item, untilBarrier } from "../helpers/feed.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { startHoldProxy, startRewriteProxy, type Proxy as TcpProxy } from "./proxy.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("feed-epoch");
});
afterAll(async () => {
  await deleteTestStreams(nc);
  await nc.close();
});

/** A proxy whose stream info replies report `created()` as the creation time, once it is defined. */
function createdProxy(created: () => string | undefined): Promise<TcpProxy> {
  return startRewriteProxy(natsUrl(), (payload) => {
    const time = created();
    if (time === undefined) return payload;
    return Buffer.from(payload.toString("latin1").replace(/"created":"[^"]*"/g, `"created":"${time}"`), "latin1");
  });
}

/** A client behind `proxy`, closed with it. */
async function through(proxy: TcpProxy): Promise<NatsConnection & AsyncDisposable> {
  const client = await connect({ servers: proxy.url, name: "feed-epoch-proxied" });
  return Object.assign(client, {
    [Symbol.asyncDispose]: async () => {
      await client.close();
      await proxy.close();
    },
  });
}

/** A follower of `namespace` in `store`, and its repository of items. */
async function follow(store: NatsKvStore, namespace: string) {
  const items = new MapEntityRepository<unknown>();
  const manager = new ManagerBuilder().withStore(store).registerRepository("item", items).build();
  const follower = await manager.follow(namespace);
  return { follower, state: () => [...items.entities].sort() };
}

/** The next event of a running feed (an error it ends with is returned). */
const next = (it: AsyncIterator<FeedEvent>): Promise<unknown> =>
  it.next().then(
    (r) => r.value,
    (error: unknown) => error,
  );

const change = (entityId: string, entity: unknown, position: number, epoch: string) => ({
  type: "change",
  change: expect.objectContaining({ entityId, entity, changeType: "set" }) as Change,
  position,
  epoch,
});

describe("NatsKvStore change feed: the stream only looks created again", () => {
  it("a new creation time of the same stream: the feed and a follower go on, with it as the epoch", async () => {
    let created: string | undefined;
    // Stream info replies are JSON payloads: from now on they report another creation time.
    await using client = await through(await createdProxy(() => created));
    await using store = await NatsKvStore.open({ client, bucket: uniqueBucket("epoch"), history: 1 });
    // The namespace's marker is sequence 1, then a (2) and b (3).
    await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
    const { follower, state } = await follow(store, "ns");
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    expect((await untilBarrier(it)).at(-1)).toMatchObject({ position: 3 });
    created = "2000-01-01T00:00:00Z"; // before every message: the remembered messages decide
    // b written again: with history 1 its message at the cursor's position (3) is gone; a's (2) tells the stream.
    await store.save([item("ns", "b", 3)]);
    expect(await next(it)).toEqual(change("b", 3, 4, created));
    await store.save([item("ns", "c", 4)]);
    expect(await next(it)).toEqual(change("c", 4, 5, created));
    await follower.waitFor(5);
    expect(state()).toEqual([
      ["a", 1],
      ["b", 3],
      ["c", 4],
    ]);
    // A cursor of the new epoch resumes in a new feed.
    const resumed = store.watch("ns", { from: { position: 4, epoch: created } });
    expect(await untilBarrier(resumed[Symbol.asyncIterator]())).toEqual([
      change("c", 4, 5, created),
      { type: "caught-up", position: 5, epoch: created },
    ]);
    resumed.close();
    feed.close();
    await follower.close();
  });

  it("one key written again after a new creation time: the stream's older messages tell it was not created again", async () => {
    let created: string | undefined;
    await using client = await through(await createdProxy(() => created));
    await using store = await NatsKvStore.open({ client, bucket: uniqueBucket("epoch1"), history: 1 });
    // The marker is sequence 1, a is 2: the only message the feed delivers, and so remembers.
    await store.save([item("ns", "a", 1)]);
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    expect((await untilBarrier(it)).at(-1)).toMatchObject({ position: 2 });
    // After every message of the stream; a written again removes the one message the feed remembers.
    created = "2030-01-01T00:00:00Z";
    await store.save([item("ns", "a", 2)]);
    expect(await next(it)).toEqual(change("a", 2, 3, created));
    feed.close();
  });

  it("a feed resumed from a cursor knows its stream by the message there, before it delivered any", async () => {
    let created: string | undefined;
    await using client = await through(await createdProxy(() => created));
    await using store = await NatsKvStore.open({ client, bucket: uniqueBucket("epoch_from"), history: 1 });
    await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
    const first = store.watch("ns");
    const barrier = (await untilBarrier(first[Symbol.asyncIterator]())).at(-1) as FeedEvent;
    first.close();
    const feed = store.watch("ns", { from: barrier });
    const it = feed[Symbol.asyncIterator]();
    expect(await untilBarrier(it)).toEqual([{ type: "caught-up", position: 3, epoch: barrier.epoch }]);
    created = "2000-01-01T00:00:00Z"; // before every message: the remembered messages decide
    await store.save([item("ns", "c", 3)]);
    expect(await next(it)).toEqual(change("c", 3, 4, created));
    feed.close();
  });

  it("a last sequence below the cursor, reported once: the feed and a follower go on", async () => {
    /** One proxy per client, each lowering the next stream info it passes on once armed. */
    const lowOnce = async () => {
      let armed = false;
      let lowered = 0;
      const proxy = await startRewriteProxy(natsUrl(), (payload) => {
        const text = payload.toString("latin1");
        if (!armed || !text.includes("stream_info_response")) return payload;
        armed = false;
        lowered++;
        return Buffer.from(text.replace(/"last_seq":\d+/, '"last_seq":1'), "latin1");
      });
      return {
        client: await through(proxy),
        arm: () => {
          armed = true;
        },
        lowered: () => lowered,
      };
    };
    const forFeed = await lowOnce();
    const forFollower = await lowOnce();
    await using _feedClient = forFeed.client;
    await using _followerClient = forFollower.client;
    const bucket = uniqueBucket("low");
    await using store = await NatsKvStore.open({ client: forFeed.client, bucket });
    await using peer = await NatsKvStore.open({ client: forFollower.client, bucket });
    await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
    const { follower, state } = await follow(peer, "ns");
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    const epoch = ((await untilBarrier(it)).at(-1) as FeedEvent).epoch;
    forFeed.arm();
    forFollower.arm();
    await store.save([item("ns", "c", 3)]);
    expect(await next(it)).toEqual(change("c", 3, 4, epoch));
    await follower.waitFor(4);
    expect(state()).toEqual([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    // Each read did get the low answer.
    expect([forFeed.lowered(), forFollower.lowered()]).toEqual([1, 1]);
    feed.close();
    await follower.close();
  });
});

describe("NatsKvStore change feed: the bucket lost what the cursor stands for", () => {
  it("a last sequence below the cursor every time it is asked ends the running feed with FeedBehindError", async () => {
    let low = false;
    const proxy = await startRewriteProxy(natsUrl(), (payload) => {
      const text = payload.toString("latin1");
      if (!low || !text.includes("stream_info_response")) return payload;
      return Buffer.from(text.replace(/"last_seq":\d+/, '"last_seq":1'), "latin1");
    });
    await using client = await through(proxy);
    await using store = await NatsKvStore.open({ client, bucket: uniqueBucket("lost") });
    await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    await untilBarrier(it);
    low = true;
    await store.save([item("ns", "c", 3)]);
    const outcome = await next(it);
    expect(isFeedBehindError(outcome), String(outcome)).toBe(true);
  });

  // The bucket's stream: marker 1, a 2, b 3 (the cursor); then, after it was deleted and created again:
  const recreated: [string, Parameters<typeof item>[][]][] = [
    [
      "another message at the cursor's position",
      [
        [
          ["ns", "a", 1],
          ["ns", "b", 2],
          ["ns", "c", 3],
        ],
      ],
    ],
    ["a last sequence below the cursor", [[["ns", "a", 1]]]],
    [
      "the message at the cursor's position gone and another one before it",
      [
        [
          ["ns", "a", 1],
          ["ns", "b", 2],
        ],
        [["ns", "b", 3]],
      ],
    ],
    [
      "every message it delivered gone",
      [
        [
          ["ns", "a", 1],
          ["ns", "b", 2],
        ],
        [
          ["ns", "a", 3],
          ["ns", "b", 4],
        ],
      ],
    ],
  ];
  it.each(recreated)(
    "a bucket deleted and created again under a running feed and a follower ends them with FeedBehindError (%s)",
    async (_case, saves) => {
      const proxy = await startHoldProxy(natsUrl());
      await using client = await through(proxy);
      const bucket = uniqueBucket("again");
      await using store = await NatsKvStore.open({ client, bucket, history: 1 });
      await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
      const { follower } = await follow(store, "ns");
      const feed = store.watch("ns");
      const it = feed[Symbol.asyncIterator]();
      expect((await untilBarrier(it)).at(-1)).toMatchObject({ position: 3 });
      // Nothing the server says reaches the feed until the bucket is there again: it does not see it missing.
      proxy.hold = () => true;
      await (await jetstreamManager(nc)).streams.delete(store.stream);
      await using again = await NatsKvStore.open({ client: nc, bucket, history: 1 });
      for (const changes of saves) await again.save(changes.map((c) => item(...c)));
      proxy.hold = () => false;
      proxy.flush();
      const outcome = await next(it);
      expect(isFeedBehindError(outcome), String(outcome)).toBe(true);
      const stopped = await follower.done.then(
        () => "resolved",
        (error: unknown) => error,
      );
      expect(isFeedBehindError(stopped), String(stopped)).toBe(true);
    },
  );

  it("a running feed at position 0 goes on into a bucket created again, from its first change", async () => {
    const proxy = await startHoldProxy(natsUrl());
    await using client = await through(proxy);
    const bucket = uniqueBucket("again0");
    await using store = await NatsKvStore.open({ client, bucket });
    await store.save([item("other", "x", 1)]);
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    expect((await untilBarrier(it)).at(-1)).toMatchObject({ position: 0 });
    proxy.hold = () => true;
    await (await jetstreamManager(nc)).streams.delete(store.stream);
    await using again = await NatsKvStore.open({ client: nc, bucket });
    await again.save([item("ns", "a", 1)]);
    const { created } = await (await jetstreamManager(nc)).streams.info(store.stream);
    proxy.hold = () => false;
    proxy.flush();
    // The namespace's marker is sequence 1, a is 2: every change of the new bucket.
    expect(await next(it)).toEqual(change("a", 1, 2, created));
  });
});
