/**
 * A NATS read whose consumer is deleted on the server while it runs (an
 * operator's `nats consumer rm`, a restart dropping a memory-stored
 * consumer): nats-server 2.9 sends the client nothing then (no 409 to a
 * pull request being served, no more heartbeats), so the read must notice
 * on its own, and it goes on with a new consumer after the last sequence it
 * delivered: every message exactly once, within seconds.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStatelogError } from "../../src/core/errors.js";
import { NatsEventStore, NatsKvStore } from "../../src/nats/index.js";
import { ReadMode, readFiltered } from "../../src/nats/reader.js";
import { sampleEvents } from "../../src/testing/event-store-contract.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

/** Messages in the test stream: a read of them with small pulls runs long enough to be cut. */
const COUNT = 20_000;

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let stream: string;

beforeAll(async () => {
  nc = await connectTest("read-consumer-deleted-test");
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  stream = uniqueBucket("cdel");
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  // Core publishes (no acknowledgement each), then wait until the stream holds them all.
  for (let i = 0; i < COUNT; i++) nc.publish(`${stream}.k${i}`, String(i));
  await nc.flush();
  for (let tries = 0; (await jsm.streams.info(stream)).state.messages < COUNT; tries++) {
    if (tries > 100) throw new Error("the test stream did not receive its messages");
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** Reads the test stream, deleting the read's consumer on the server at its `at`-th message. */
async function readDeletingAt(at: number, mode: ReadMode) {
  const seqs: number[] = [];
  const consumers = new Set<string>();
  const deletions: Promise<boolean>[] = [];
  const result = await readFiltered(
    js,
    jsm,
    stream,
    `${stream}.>`,
    (m, seq) => {
      seqs.push(seq);
      const consumer = m.info.consumer;
      consumers.add(consumer);
      if (seqs.length === at) deletions.push(jsm.consumers.delete(stream, consumer));
    },
    { mode, batch: 10 },
  );
  return { result, seqs, consumers, deleted: await Promise.all(deletions) };
}

describe("a NATS read whose consumer is deleted on the server mid-read", () => {
  for (const mode of [ReadMode.All, ReadMode.LastPerSubject]) {
    it(`resumes with a new consumer after the last sequence it delivered (mode ${mode})`, async () => {
      const { result, seqs, consumers, deleted } = await readDeletingAt(100, mode);
      expect(deleted).toEqual([true]);
      // The deletion cut the read: a second consumer delivered the rest.
      expect(consumers.size).toBe(2);
      // Every message exactly once, in stream order.
      expect(seqs).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
      expect(result.lastSequence).toBe(COUNT);
    }, 20_000);
  }

  it("fails with UnavailableError naming the stream once every consumer it makes is deleted", async () => {
    const read = readFiltered(
      js,
      jsm,
      stream,
      `${stream}.>`,
      (m) => {
        jsm.consumers.delete(stream, m.info.consumer).catch(() => undefined);
      },
      { mode: ReadMode.All, batch: 10, attempts: 2 },
    );
    const error = await read.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStatelogError(error, "STATELOG_UNAVAILABLE")).toBe(true);
    expect(String(error)).toContain(stream);
    expect(String(error)).toMatch(/deleted/);
  }, 25_000);

  it("an aborted read ends while it waits to notice its deleted consumer", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const read = readFiltered(
      js,
      jsm,
      stream,
      `${stream}.>`,
      (m, seq) => {
        if (seq === 50) {
          jsm.consumers.delete(stream, m.info.consumer).then(
            () => setTimeout(() => controller.abort(), 100),
            () => undefined,
          );
        }
      },
      { mode: ReadMode.All, batch: 10, signal: controller.signal },
    );
    await expect(read).rejects.toMatchObject({ name: "AbortError" });
    expect(Date.now() - started).toBeLessThan(1_500);
  }, 20_000);
});

describe("a NatsKvStore load whose consumer is deleted mid-read", () => {
  const bucket = uniqueBucket("cdel_kv");
  const ENTITIES = 5_000;

  it("returns every entity exactly once, and the store stays usable", async () => {
    await using store = await NatsKvStore.open({ client: nc, bucket });
    const ns = "big";
    const changes = Array.from({ length: ENTITIES }, (_, i) => ({
      namespace: ns,
      changeType: "set" as const,
      entityType: "item",
      entityId: `e${i}`,
      entity: { i },
    }));
    for (let i = 0; i < ENTITIES; i += 1_000) await store.save(changes.slice(i, i + 1_000));
    // The stream behind the bucket: the one stream whose consumers the load creates.
    let kvStream = "";
    for await (const name of jsm.streams.names()) if (name.endsWith(bucket)) kvStream = name;
    expect(kvStream).not.toBe("");

    // Delete the load's consumer as soon as it shows up in the server's list.
    let stop = false;
    let deleted = false;
    const deleter = (async () => {
      while (!stop && !deleted) {
        for await (const ci of await jsm.consumers.list(kvStream)) {
          deleted = await jsm.consumers.delete(kvStream, ci.name).catch(() => false);
          if (deleted) break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const loaded = await store.load(ns).finally(() => {
      stop = true;
    });
    await deleter;
    expect(deleted).toBe(true);
    expect(loaded.map((c) => c.entityId).sort()).toEqual(changes.map((c) => c.entityId).sort());
    // The store still works: another load sees everything.
    expect(await store.load(ns)).toHaveLength(ENTITIES);
  }, 30_000);
});

describe("a NatsEventStore whose ordered consumer is deleted on the server", () => {
  it("still sees another writer's appends, in order, and gets a new consumer within seconds", async () => {
    const eventStream = uniqueBucket("CDEL_EV");
    const other = await connectTest("read-consumer-deleted-other");
    try {
      await using reader = await NatsEventStore.open({ client: nc, stream: eventStream });
      await using writer = await NatsEventStore.open({ client: other, stream: eventStream });
      await writer.append("s", sampleEvents("before", 2));
      await reader.catchUp();
      // Delete every consumer of the stream: the reader's (and the writer's) ordered consumers.
      const names: string[] = [];
      for await (const ci of await jsm.consumers.list(eventStream)) names.push(ci.name);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(await jsm.consumers.delete(eventStream, name)).toBe(true);
      await writer.append("s", sampleEvents("after", 3));
      await reader.catchUp();
      const events = await reader.readStream("s");
      expect(events.map((e) => [e.id, e.position])).toEqual([
        ["before-1", 1],
        ["before-2", 2],
        ["after-1", 3],
        ["after-2", 4],
        ["after-3", 5],
      ]);
      // The ordered consumers come back (nats.js recreates them after missed heartbeats): live reads go on.
      let consumers = 0;
      for (let tries = 0; consumers < 2 && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 100));
        consumers = 0;
        for await (const ci of await jsm.consumers.list(eventStream)) if (!names.includes(ci.name)) consumers++;
      }
      expect(consumers).toBe(2);
      await writer.append("s", sampleEvents("later", 1));
      await reader.catchUp();
      expect((await reader.readStream("s")).map((e) => e.id).at(-1)).toBe("later-1");
    } finally {
      await other.close();
    }
  }, 30_000);
});
