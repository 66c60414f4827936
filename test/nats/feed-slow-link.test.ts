/**
 * A NATS KV change feed over a link slower than the reads' lag grace
 * (500 ms): a consumer still counting messages pending is never given up
 * for being slow, and a one-replica bucket's never for lag at all (its only
 * peer is the leader). Before, every read of the feed gave its consumer up
 * when its first delivery came after the grace, again and again, and the
 * feed failed after 30 s with "no up-to-date replica served it".
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FeedEvent } from "../../src/index.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { item } from "../helpers/feed.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { type Proxy as DelayProxy, startDelayProxy } from "./proxy.js";

/** What the server sends reaches the feed's client this late: more than the lag grace. */
const LINK_DELAY_MS = 700;

let nc: NatsConnection;
let proxy: DelayProxy;
let delay = 0;
let client: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("feed-slow-link-test");
  proxy = await startDelayProxy(natsUrl(), () => delay);
  client = await connect({ servers: proxy.url, name: "feed-slow-link-proxied", timeout: 20_000 });
});
afterAll(async () => {
  await client?.close();
  await proxy?.close();
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

it("the initial part and a live change come over a link slower than the lag grace", { timeout: 90_000 }, async () => {
  const bucket = uniqueBucket("slow");
  await using writer = await NatsKvStore.open({ client: nc, bucket });
  await writer.save([item("ns", "a", 1), item("ns", "b", 2)]);
  await using store = await NatsKvStore.open({ client, bucket });
  delay = LINK_DELAY_MS;
  const feed = store.watch("ns");
  try {
    const events: FeedEvent[] = [];
    for await (const event of feed) {
      events.push(event);
      if (event.type === "caught-up") await writer.save([item("ns", "c", 3)]);
      else if (event.change.entityId === "c") break;
    }
    expect(
      events.map((e) => (e.type === "change" ? `${e.change.entityId}@${e.position}` : `barrier@${e.position}`)),
    ).toEqual(["a@2", "b@3", "barrier@3", "c@4"]);
  } finally {
    feed.close();
    delay = 0;
  }
});
