import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FeedEvent,
  isFeedBehindError,
  isUnavailableError,
  ManagerBuilder,
  type Store,
  sleep,
} from "../../src/index.js";
import { MapEntityRepository } from "../../src/memory/index.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { describeChangeFeedContract } from "../../src/testing/index.js";
import { barrierOf, item, piecesOf, untilBarrier } from "../helpers/feed.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";
import { startNatsServer } from "./nats-server.js";

let nc: NatsConnection;
/** A second connection: what another process sees and writes. */
let other: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("feed-test");
  other = await connectTest("feed-test-peer");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await other?.close();
  await nc?.close();
});

/** An administrator's purge of the bucket's stream (`nats stream purge`): the state the cursor stands for is gone. */
async function purgeStream<C>(store: Store, _namespace: string, cursor: C): Promise<C> {
  await (await jetstreamManager(nc)).streams.purge((store as NatsKvStore).stream);
  return cursor;
}

const fresh = () => NatsKvStore.open({ client: nc, bucket: uniqueBucket("feed") });

describeChangeFeedContract("NatsKvStore", fresh, {
  peer: (store) => NatsKvStore.open({ client: other, bucket: (store as NatsKvStore).bucket }),
  makeBehind: purgeStream,
  propertyRuns: 15,
});

describeChangeFeedContract(
  "NatsKvStore (history 5)",
  () => NatsKvStore.open({ client: nc, bucket: uniqueBucket("feed_h5"), history: 5 }),
  {
    peer: (store) => NatsKvStore.open({ client: other, bucket: (store as NatsKvStore).bucket }),
    makeBehind: purgeStream,
    propertyRuns: 10,
  },
);

describe("NatsKvStore change feed", () => {
  it("reads at most batchSize changes at a time past the current state (resumed, and behind its consumer)", async () => {
    await using store = await fresh();
    const reads = await piecesOf(store, "ns", 3);
    expect(reads.every((r) => r.items <= 3)).toBe(true);
    // Twenty changes after the cursor: six full pieces that say there is more, then the last two.
    expect(reads.slice(0, 7)).toEqual([...Array(6).fill({ items: 3, more: true }), { items: 2, more: false }]);
  });

  it("the barrier of an empty namespace comes in a bucket full of other namespaces, with position 0", async () => {
    await using store = await fresh();
    await store.save([item("busy", "a", 1), item("busy", "b", 2)]);
    await store.save([{ namespace: "busy", changeType: "unset", entityType: "item", entityId: "a" }]);
    const feed = store.watch("quiet");
    const events = await untilBarrier(feed[Symbol.asyncIterator]());
    expect(events).toEqual([{ type: "caught-up", position: 0, epoch: expect.any(String) }]);
    feed.close();
  });

  it("positions are the stream's sequences; deletes of other KV clients come as unsets", async () => {
    await using store = await fresh();
    await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    const initial = await untilBarrier(it);
    // The namespace's marker is sequence 1, then a and b.
    expect(initial.map((e) => e.position)).toEqual([2, 3, 3]);
    const kv = await new Kvm(other).open(store.bucket);
    await kv.delete("ns.item.a");
    await kv.purge("ns.item.b");
    const deleted: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await it.next();
      if (r.done || r.value.type !== "change") throw new Error("expected a change");
      deleted.push([r.value.change.entityId, r.value.change.changeType, r.value.position]);
    }
    expect(deleted).toEqual([
      ["a", "unset", 4],
      ["b", "unset", 5],
    ]);
    expect((await store.load("ns")).map((c) => [c.entityId, c.changeType])).toEqual([
      ["a", "unset"],
      ["b", "unset"],
    ]);
    feed.close();
  });

  it("a cursor of a bucket deleted and created again is behind (another epoch, or a position past its end)", async () => {
    const bucket = uniqueBucket("feed_again");
    let store = await NatsKvStore.open({ client: nc, bucket });
    await store.save([item("ns", "a", 1), item("ns", "b", 2)]);
    const first = store.watch("ns");
    const [, , barrier] = await untilBarrier(first[Symbol.asyncIterator]());
    first.close();
    await store.destroy();
    store = await NatsKvStore.open({ client: nc, bucket });
    try {
      await store.save([item("ns", "a", 1), item("ns", "b", 2), item("ns", "c", 3)]);
      const byEpoch = store.watch("ns", { from: barrier as FeedEvent });
      await expect(byEpoch[Symbol.asyncIterator]().next()).rejects.toSatisfy(isFeedBehindError);
      const pastEnd = store.watch("ns", { from: 100 });
      await expect(pastEnd[Symbol.asyncIterator]().next()).rejects.toSatisfy(isFeedBehindError);
    } finally {
      await store.close();
    }
  });

  it("a follower on another connection sees a writer's saves; waitFor gives read-your-writes", async () => {
    const reader = await fresh();
    const writer = await NatsKvStore.open({ client: other, bucket: reader.bucket });
    try {
      await writer.save([item("shared", "a", 1), item("shared", "gone", 0)]);
      const items = new MapEntityRepository<number>();
      const manager = new ManagerBuilder().withStore(reader).registerRepository<number>("item", items).build();
      const follower = await manager.follow("shared");
      expect([...items.entities].sort()).toEqual([
        ["a", 1],
        ["gone", 0],
      ]);
      // The writer saves, then learns its position from its own feed's barrier.
      await writer.save([
        item("shared", "b", 2),
        { namespace: "shared", changeType: "unset", entityType: "item", entityId: "gone" },
      ]);
      const position = await barrierOf(writer, "shared");
      expect(position.position).toBeGreaterThan(0);
      await follower.waitFor(position);
      expect([...items.entities].sort()).toEqual([
        ["a", 1],
        ["b", 2],
      ]);
      expect(follower.position).toEqual(position);
      expect(follower.lag).toBe(0);
      // A number (of the same numbering) works too.
      await writer.save([item("shared", "c", 3)]);
      await follower.waitFor((await barrierOf(writer, "shared")).position);
      expect(items.entities.get("c")).toBe(3);
      await follower.close();
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it("a feed waits through a server restart longer than a request's time-out while its connection reconnects", {
    timeout: 60_000,
  }, async () => {
    let server = await startNatsServer({ name: "statelog-feed-restart" });
    const { port, storeDir } = server;
    const conn = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    try {
      const store = await NatsKvStore.open({ client: conn, bucket: "restart" });
      await store.save([item("ns", "a", 1)]);
      const feed = store.watch("ns");
      const it = feed[Symbol.asyncIterator]();
      await untilBarrier(it);
      const next = it.next();
      await server.kill("SIGTERM");
      // Down for longer than the client's request time-out (5 s): the feed's checks fail meanwhile.
      await sleep(7_000);
      server = await startNatsServer({ name: "statelog-feed-restart", port, storeDir });
      for (let attempt = 0; ; attempt++) {
        try {
          await store.save([item("ns", "b", 2)]);
          break;
        } catch (error) {
          if (attempt >= 50) throw error;
          await sleep(200);
        }
      }
      const event = (await next).value as FeedEvent;
      expect(event.type === "change" && event.change.entityId).toBe("b");
      feed.close();
      await store.close();
    } finally {
      await conn.close();
      await server.stop();
    }
  });

  it("a feed whose bucket is deleted under it ends with an error (it does not wait for the server)", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket: uniqueBucket("feed_deleted") });
    await store.save([item("ns", "a", 1)]);
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    await untilBarrier(it);
    const next = it.next().then(
      () => "delivered",
      (error: unknown) => error,
    );
    await (await jetstreamManager(nc)).streams.delete(store.stream);
    const outcome = await Promise.race([next, sleep(8_000).then(() => "still waiting after 8 s")]);
    expect(isUnavailableError(outcome), String(outcome)).toBe(true);
    feed.close();
    await store.close();
  });

  it("a feed whose connection closes fails with UnavailableError", async () => {
    const conn = await connectTest("feed-test-closing");
    await using store = await NatsKvStore.open({ client: conn, bucket: uniqueBucket("feed_closed") });
    const feed = store.watch("ns");
    const it = feed[Symbol.asyncIterator]();
    await untilBarrier(it);
    const next = it.next();
    await conn.close();
    await expect(next).rejects.toSatisfy(isUnavailableError);
  });
});
