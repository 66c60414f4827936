/**
 * Reads whose consumer never reports nothing pending. nats-server's count
 * can stay above 0 for good (a last-per-subject consumer created on a
 * cluster peer that had not applied the latest writes counts the
 * revisions those writes replace): a read then ends once it delivered the
 * stream's last message under its subjects, instead of waiting for a count
 * that never comes. Here a proxy adds 1 to the pending count of every
 * message the server delivers.
 */
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../../src/index.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { entityKey } from "../../src/nats/keys.js";
import { set, unset } from "../../src/testing/fixtures.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { serverFrames, startProxy, type Proxy as TcpProxy } from "./proxy.js";

/** A proxy whose JetStream deliveries all report one message more pending than the server counted. */
function startPendingProxy(target: string): Promise<TcpProxy> {
  return startProxy(target, (client) =>
    serverFrames(({ fields, payload, bytes }) => {
      // MSG <subject> <sid> <reply> <size>, HMSG <subject> <sid> <reply> <header size> <size>
      const reply = fields[3];
      const withReply = payload !== undefined && fields.length === (fields[0] === "HMSG" ? 6 : 5);
      if (!withReply || !reply?.startsWith("$JS.ACK.")) {
        client.write(bytes);
        return;
      }
      const tokens = reply.split(".");
      tokens[tokens.length - 1] = String(Number(tokens.at(-1)) + 1);
      const line = [fields[0], fields[1], fields[2], tokens.join("."), ...fields.slice(4)].join(" ");
      client.write(Buffer.concat([Buffer.from(`${line}\r\n`, "latin1"), payload, Buffer.from("\r\n")]));
    }),
  );
}

/** `p`'s outcome, or "hung" when it did not settle within `ms`. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => "hung" as const)]);

let nc: NatsConnection;
let proxy: TcpProxy;
let client: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("read-pending-test");
  proxy = await startPendingProxy(natsUrl());
  client = await connect({ servers: proxy.url, name: "read-pending-proxied" });
});
afterAll(async () => {
  await client?.close();
  await proxy?.close();
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describe("NatsKvStore reads when the consumer's pending count never reaches 0", () => {
  it("load, listNamespaces and compact end with everything the bucket holds", { timeout: 30_000 }, async () => {
    const bucket = uniqueBucket("pending");
    await using writer = await NatsKvStore.open({ client: nc, bucket, history: 5 });
    await writer.save([set("a", "t", "1", { v: 1 }), set("a", "t", "2", { v: 2 }), set("b", "t", "1", { v: 3 })]);
    await writer.save([set("a", "t", "1", { v: 4 }), unset("a", "t", "2")]);
    await using store = await NatsKvStore.open({ client, bucket });

    const loaded = await within(store.load("a"), 10_000);
    expect(loaded).not.toBe("hung");
    const changes = loaded as Awaited<ReturnType<typeof store.load>>;
    expect(changes.map((c) => [c.entityId, c.changeType, c.entity])).toEqual([
      ["1", "set", { v: 4 }],
      ["2", "unset", undefined],
    ]);
    expect(await within(store.listNamespaces(), 10_000)).toEqual(["a", "b"]);
    expect(await within(store.compact("a"), 10_000)).toBeUndefined();
    const kv = await new Kvm(nc).open(bucket);
    const revisions: number[] = [];
    for await (const e of await kv.history({ key: entityKey("a", "t", "1") })) revisions.push(e.revision);
    expect(revisions).toHaveLength(1);
  });
});
