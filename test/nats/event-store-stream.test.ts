/**
 * NatsEventStore on a stream that is not what its index was read from:
 * deleted and created again under a running store (or lost with a
 * memory-stored server's restart), a message deleted from the middle, a
 * stream of another subject prefix. The store refuses or fails loudly
 * (typed), never serves an index that skips or misplaces events.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { isConfigurationError, isCorruptionError } from "../../src/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { startNatsServer } from "./nats-server.js";
import { startRewriteProxy } from "./proxy.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("event-store-stream-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

const event = (n: number) => createEvent("counted", { n });
const settle = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => e,
  );

/** Publishes a message as an append of `n` events at `first` would (another process, or a message read late). */
async function publishAppend(subject: string, first: number, n: number, at = new Date()): Promise<void> {
  const events = Array.from({ length: n }, (_, i) => ({
    id: `raw-${first + i}`,
    type: "counted",
    timestamp: at.toISOString(),
    data: { n: first + i },
  }));
  await jetstream(nc).publish(subject, JSON.stringify({ first, events }));
}

describe("NatsEventStore when the stream's sequences start again under it", () => {
  it("deleted and created again: catchUp, appends and live subscriptions fail with CorruptionError", async () => {
    const stream = uniqueBucket("RESET");
    await using a = await NatsEventStore.open({ client: nc, stream });
    for (let n = 1; n <= 4; n++) await a.append("x", [event(n)]);
    const sub = a.subscribe("y");
    const ended = settle(
      (async () => {
        for await (const _ of sub);
      })(),
    );
    await (await jetstreamManager(nc)).streams.delete(stream);
    await using b = await NatsEventStore.open({ client: nc, stream }); // another process creates it again
    await b.append("y", [event(1)]);
    await b.append("y", [event(2)]);

    const error = await settle(a.catchUp());
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toMatch(/deleted and created again.*reopen the store/);
    // The same failure for every later call and the waiting subscription, not a stale index.
    expect(await settle(a.append("x", [event(5)]))).toBe(error);
    expect(await settle(a.readStream("x"))).toBe(error);
    expect(await ended).toBe(error);
    await b.catchUp();
    expect((await b.getStreams()).map((s) => s.streamId)).toEqual(["y"]);
  });

  it("an append the new stream took at a sequence the store had read is reported stored, not closed", async () => {
    const stream = uniqueBucket("RESET");
    // maxStreams 0: a new stream id's append compares its subject only, so the new stream takes it.
    await using a = await NatsEventStore.open({ client: nc, stream, maxStreams: 0 });
    for (let n = 1; n <= 4; n++) await a.append("x", [event(n)]);
    await (await jetstreamManager(nc)).streams.delete(stream);
    await using b = await NatsEventStore.open({ client: nc, stream, maxStreams: 0 });
    await b.append("y", [event(1)]);

    const error = await settle(a.append("z", [event(2)]));
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toMatch(/the append to "z" is stored/);
    await b.catchUp();
    expect((await b.readStream("z")).map((e) => e.data)).toEqual([{ n: 2 }]);
    await expect(a.readStream("x")).rejects.toSatisfy(isCorruptionError);
  });

  it("an append creating a stream id (maxStreams) fails with CorruptionError, not after a storm of retries", async () => {
    const stream = uniqueBucket("RESET");
    await using a = await NatsEventStore.open({ client: nc, stream });
    for (let n = 1; n <= 4; n++) await a.append("x", [event(n)]);
    await (await jetstreamManager(nc)).streams.delete(stream);
    await using b = await NatsEventStore.open({ client: nc, stream });
    await b.append("y", [event(1)]);

    const error = await settle(a.append("z", [event(2)]));
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toMatch(/created again/);
    await b.catchUp();
    expect((await b.getStreams()).map((s) => s.streamId)).toEqual(["y"]);
  });

  it("emptied with its creation time kept (a memory stream after a cluster restart): the last message read differs", async () => {
    // Every stream info this store reads shows one creation time, as a cluster reports for a memory stream
    // that its restart emptied: only the messages tell the new stream from the old.
    const proxy = await startRewriteProxy(natsUrl(), (payload) =>
      Buffer.from(
        payload.toString("latin1").replace(/"created":"[^"]*"/g, '"created":"2000-01-01T00:00:00Z"'),
        "latin1",
      ),
    );
    const client = await connect({ servers: proxy.url, name: "event-store-stream-same-created" });
    try {
      const stream = uniqueBucket("RESET");
      await using a = await NatsEventStore.open({ client, stream });
      for (let n = 1; n <= 3; n++) await a.append("x", [event(n)]);
      await (await jetstreamManager(nc)).streams.delete(stream);
      await using b = await NatsEventStore.open({ client: nc, stream });
      for (let n = 1; n <= 5; n++) await b.append("y", [event(n)]); // more messages than `a` read

      const error = await settle(a.catchUp());
      expect(isCorruptionError(error), String(error)).toBe(true);
      expect(String(error)).toMatch(/another message at sequence 3/);
      // Nothing of the new stream was served as if it continued the old one.
      expect(await settle(a.readStream("y"))).toBe(error);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it("a new creation time alone (nats-server gives one without recreating the stream) does not fail the store", async () => {
    // After some point every stream info shows another creation time, as nats-server reports after a restart
    // that follows a configuration update: the messages are the same, and the store goes on.
    let rewrite = false;
    const proxy = await startRewriteProxy(natsUrl(), (payload) =>
      rewrite
        ? Buffer.from(
            payload.toString("latin1").replace(/"created":"[^"]*"/g, '"created":"2030-01-01T00:00:00Z"'),
            "latin1",
          )
        : payload,
    );
    const client = await connect({ servers: proxy.url, name: "event-store-stream-new-created" });
    try {
      const stream = uniqueBucket("CREATED");
      await using a = await NatsEventStore.open({ client, stream });
      for (let n = 1; n <= 3; n++) await a.append("x", [event(n)]);
      rewrite = true;
      await a.catchUp();
      await a.append("x", [event(4)]);
      await a.append("z", [event(1)]); // a new stream id: its append checks the whole stream
      await a.catchUp();
      expect((await a.readStream("x")).map((e) => e.position)).toEqual([1, 2, 3, 4]);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it("a memory stream lost in a server restart and created again by another process", { timeout: 60_000 }, async () => {
    let server = await startNatsServer({ name: "event-store-reset" });
    const { port, storeDir } = server;
    const options = { servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 };
    const ca = await connect({ ...options, name: "reset-a" });
    const cb = await connect({ ...options, name: "reset-b" });
    try {
      await using a = await NatsEventStore.open({ client: ca, stream: "RESTARTED", storage: "memory" });
      for (let n = 1; n <= 5; n++) await a.append("x", [event(n)]);
      // A request sent before the client reconnected would time out: the append waits for the reconnection.
      const reconnect = (client: NatsConnection) =>
        (async () => {
          for await (const s of client.status()) if (s.type === "reconnect") return;
        })();
      const reconnected = Promise.all([reconnect(ca), reconnect(cb)]);
      await server.stop({ keepStore: true });
      server = await startNatsServer({ name: "event-store-reset", port, storeDir });
      await reconnected;
      await using b = await NatsEventStore.open({ client: cb, stream: "RESTARTED", storage: "memory" });
      await b.append("y", [event(1)]);

      const error = await settle(a.append("x", [event(6)]));
      expect(isCorruptionError(error), String(error)).toBe(true);
      expect(await settle(a.catchUp())).toBe(error);
      expect((await b.readStream("y")).map((e) => e.position)).toEqual([1]);
    } finally {
      await ca.close();
      await cb.close();
      await server.stop();
    }
  });
});

describe("NatsEventStore on a stream id with positions missing in the middle", () => {
  it("open refuses a stream id one of whose middle messages was deleted, naming it and the positions", async () => {
    const stream = uniqueBucket("HOLE");
    const a = await NatsEventStore.open({ client: nc, stream });
    for (let n = 1; n <= 5; n++) await a.append("s", [event(n)]);
    await a.close();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.deleteMessage(stream, 4); // the message holding position 4
    const error = await settle(NatsEventStore.open({ client: nc, stream }));
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain('stream id "s" goes from position 3 to 5');
    // The way out the error names: remove the stream id's messages before the one after the gap.
    expect(String(error)).toContain(`purge subject ${a.prefix}.s below sequence 5`);
    await jsm.streams.purge(stream, { filter: `${a.prefix}.s`, seq: 5 });
    await using reopened = await NatsEventStore.open({ client: nc, stream });
    expect((await reopened.readStream("s")).map((e) => e.position)).toEqual([5]);
  });

  it("a running store that reads such a message fails instead of skipping positions", async () => {
    const stream = uniqueBucket("HOLE");
    await using a = await NatsEventStore.open({ client: nc, stream });
    await a.append("s", [event(1), event(2)]);
    await publishAppend(`${a.prefix}.s`, 5, 1);
    const error = await settle(a.catchUp());
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain("positions 3 to 4 were deleted");
    expect(await settle(a.readStream("s", 2))).toBe(error);
  });

  it("positions the server expired before the store read them: the older events expire from the index too", async () => {
    const stream = uniqueBucket("HOLE");
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    await using a = await NatsEventStore.open({ client: nc, stream, retentionDurationMs: 3_600_000, clock });
    await a.append("s", [event(1), event(2), event(3)]);
    // Two hours later, by the store's clock: the server expired position 4 before this store read it.
    offset = 2 * 3_600_000;
    await publishAppend(`${a.prefix}.s`, 5, 1, clock());
    await a.catchUp();
    expect((await a.readStream("s")).map((e) => e.position)).toEqual([5]);
    expect((await a.readStream("s", 4)).map((e) => e.position)).toEqual([5]);
    expect((await a.getStreamInfo("s")).firstPosition).toBe(5);
  });
});

describe("NatsEventStore when the server expired messages a lagging store had not read", () => {
  it("clocks that differ by seconds: events about as old as max_age expire from the index, not a CorruptionError", async () => {
    const stream = uniqueBucket("HOLE");
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    await using a = await NatsEventStore.open({ client: nc, stream, retentionDurationMs: 3_600_000, clock });
    await a.append("s", [event(1), event(2), event(3)]);
    // The server expired position 4 (it expires by the time it received the message): by this store's clock,
    // 10 s slow against the server's, the events before it are not yet an hour old.
    offset = 3_600_000 - 10_000;
    await publishAppend(`${a.prefix}.s`, 5, 1, clock());
    await a.catchUp();
    expect((await a.readStream("s")).map((e) => e.position)).toEqual([5]);
    expect(a.stats().eventsExpired).toBe(3);
  });

  it("a skip of positions whose events are far younger than max_age is still a deletion from the middle", async () => {
    const stream = uniqueBucket("HOLE");
    await using a = await NatsEventStore.open({ client: nc, stream, retentionDurationMs: 3_600_000 });
    await a.append("s", [event(1), event(2)]);
    await publishAppend(`${a.prefix}.s`, 5, 1);
    const error = await settle(a.catchUp());
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain("positions 3 to 4 were deleted");
  });
});

describe("NatsEventStore on a stream of other subjects", () => {
  it("open refuses a stream created with another subjectPrefix, naming both", async () => {
    const stream = uniqueBucket("PREFIX");
    const a = await NatsEventStore.open({ client: nc, stream, subjectPrefix: "app.ev" });
    await a.append("orders", [event(1)]);
    await a.close();
    for (const subjectPrefix of [undefined, "app"]) {
      const error = await settle(NatsEventStore.open({ client: nc, stream, subjectPrefix }));
      expect(isConfigurationError(error), String(error)).toBe(true);
      expect(String(error)).toContain('has the subjects ["app.ev.>"]');
      expect(String(error)).toContain('open it with subjectPrefix "app.ev"');
    }
    await using b = await NatsEventStore.open({ client: nc, stream, subjectPrefix: "app.ev" });
    expect((await b.readStream("orders")).map((e) => e.data)).toEqual([{ n: 1 }]);
  });

  it("a message outside the prefix (subjects added to the stream later) fails the store as unreadable", async () => {
    const stream = uniqueBucket("PREFIX");
    await using a = await NatsEventStore.open({ client: nc, stream });
    await a.append("s", [event(1)]);
    const jsm = await jetstreamManager(nc);
    const { config } = await jsm.streams.info(stream);
    const other = `other.${stream}`;
    await jsm.streams.update(stream, { ...config, subjects: [...config.subjects, `${other}.>`] });
    await publishAppend(`${other}.s`, 2, 1);
    const error = await settle(a.catchUp());
    expect(isCorruptionError(error), String(error)).toBe(true);
    expect(String(error)).toContain(`subject ${other}.s is not under the store's prefix`);
  });
});
