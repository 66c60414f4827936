/**
 * NATS reads whose consumer stops delivering short of the end: its pending
 * count never reaches 0 (nats-server counts revisions replaced while a
 * last-per-subject consumer on a lagging cluster peer starts), or its peer
 * stays behind. A read then asks the stream leader for its last message:
 * it ends once what it delivered before the question reaches that, gives
 * the consumer up after the lag grace otherwise, and fails with
 * `UnavailableError` after `catchUpTimeoutMs` of lagging consumers. A
 * proxy between client and server decides, frame by frame, what the
 * server's deliveries and replies do.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { isUnavailableError, sleep } from "../../src/index.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { entityKey } from "../../src/nats/keys.js";
import { ReadMode, readFiltered } from "../../src/nats/reader.js";
import { set, unset } from "../../src/testing/fixtures.js";
import { type ProxiedTest, proxiedTest, uniqueBucket } from "./env.js";
import { type HoldProxy, withPending } from "./proxy.js";

/** `p`'s outcome (its value or its error), or "hung" when it did not settle within `ms`. */
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([
    p.then(
      (v) => v,
      (e: unknown) => e,
    ),
    sleep(ms).then(() => "hung" as const),
  ]);

let setup: ProxiedTest;
let nc: NatsConnection;
let proxy: HoldProxy;
let client: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
beforeAll(async () => {
  setup = await proxiedTest("read-stall");
  ({ nc, proxy, client, js, jsm } = setup);
});
beforeEach(() => proxy.reset());
afterAll(async () => {
  await setup?.close();
});

/** A stream of `count` subjects `<name>.k00`…, one message each (sequences 1…count), keeping `perSubject` per subject. */
async function streamOf(count: number, perSubject = -1): Promise<string> {
  const name = uniqueBucket("stall");
  await (await jetstreamManager(nc)).streams.add({
    name,
    subjects: [`${name}.>`],
    max_msgs_per_subject: perSubject,
  });
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) acks.push(jetstream(nc).publish(`${name}.k${String(i).padStart(2, "0")}`, String(i)));
  await Promise.all(acks);
  return name;
}

describe("NATS reads whose consumer's pending count never reaches 0", () => {
  it("NatsKvStore load, listNamespaces and compact end with everything the bucket holds", async () => {
    proxy.rewrite = (f) => withPending(f, 1);
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

  it("a consumer stuck short of the leader's last message fails the read with UnavailableError after catchUpTimeoutMs", async () => {
    const stream = await streamOf(5);
    // Every consumer's peer "lags" at sequence 4 (5 never comes) and counts one more pending.
    proxy.hold = (f) => f.kind === "delivery" && f.seq === 5;
    proxy.rewrite = (f) => withPending(f, 1);
    const outcome = await within(
      readFiltered(js, jsm, stream, `${stream}.>`, () => undefined, { replicated: true, catchUpTimeoutMs: 2_000 }),
      15_000,
    );
    expect(outcome).not.toBe("hung");
    expect(isUnavailableError(outcome), String(outcome)).toBe(true);
    expect(String(outcome)).toMatch(/reached sequence 4, the leader has 5/);
    // Every consumer it gave up was deleted.
    await vi.waitFor(async () => expect(await (await jetstreamManager(nc)).consumers.list(stream).next()).toEqual([]));
  });
});

describe("NATS reads: the stream leader's answer to a stalled read", () => {
  it("ends the read only with what was delivered before the question: a key replaced meanwhile still comes", async () => {
    // One revision per subject: a replaced revision is removed, and the consumer passes over it.
    const stream = await streamOf(30, 1);
    // The read's first question to the leader is answered; the deliveries and the stall check's question are held.
    let gets = 0;
    proxy.hold = (f) => (f.kind === "get" ? ++gets > 1 : f.kind === "delivery");
    const subjects: string[] = [];
    const read = readFiltered(js, jsm, stream, `${stream}.>`, (m) => subjects.push(m.subject), {
      replicated: true,
      batch: 10,
    });
    // Nothing delivered for a second with 30 pending: the stall check asked the leader (its answer: 30).
    await vi.waitFor(() => expect(proxy.held.some((f) => f.kind === "get")).toBe(true), { timeout: 5_000 });
    // k25 (sequence 26) is saved again as sequence 31: 26 is removed before the consumer reaches it.
    await jetstream(nc).publish(`${stream}.k25`, "new");
    // The consumer's deliveries up to 30 arrive before the leader's answer (its route may be slower).
    proxy.hold = (f) => f.kind === "get" || (f.kind === "delivery" && f.seq > 30);
    proxy.flush();
    await vi.waitFor(() => expect(proxy.passed.some((f) => f.kind === "delivery" && f.seq === 30)).toBe(true));
    // Then the answer (30), then the rest.
    proxy.hold = (f) => f.kind === "delivery" && f.seq > 30;
    proxy.flush();
    proxy.hold = () => false;
    proxy.flush();
    const result = await read;
    expect(subjects).toContain(`${stream}.k25`);
    expect(new Set(subjects).size).toBe(30);
    expect(result.lastSequence).toBe(31);
  });

  it("catchUpTimeoutMs counts from the first lagging consumer, not from the start of a long read", async () => {
    const stream = await streamOf(100);
    // Each delivery 20 ms late (a read of about 2 s, longer than the limit); the first consumer's peer lags at 99.
    let first: string | undefined;
    proxy.delay = (f) => (f.kind === "delivery" ? 20 : 0);
    proxy.hold = (f) => {
      if (f.kind !== "delivery") return false;
      first ??= f.consumer;
      return f.consumer === first && f.seq === 100;
    };
    const seqs: number[] = [];
    const outcome = await within(
      readFiltered(js, jsm, stream, `${stream}.>`, (_m, seq) => seqs.push(seq), {
        mode: ReadMode.All,
        replicated: true,
        batch: 1,
        catchUpTimeoutMs: 1_000,
      }),
      20_000,
    );
    // One consumer given up at least (a starved machine may give up a second one); never the time-out.
    expect(outcome).toMatchObject({ lastSequence: 100 });
    expect((outcome as { restarts: number }).restarts).toBeGreaterThanOrEqual(1);
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("catchUpTimeoutMs starts anew after a consumer that delivered: two short lags apart do not add up", async () => {
    const stream = await streamOf(400);
    // Each delivery 20 ms late; consumer 1 lags at 10, consumer 2 (about 8 s of deliveries) lags at 400.
    const consumers: string[] = [];
    proxy.delay = (f) => (f.kind === "delivery" ? 20 : 0);
    proxy.hold = (f) => {
      if (f.kind !== "delivery") return false;
      if (!consumers.includes(f.consumer)) consumers.push(f.consumer);
      const i = consumers.indexOf(f.consumer);
      return (i === 0 && f.seq === 10) || (i === 1 && f.seq === 400);
    };
    const outcome = await within(
      readFiltered(js, jsm, stream, `${stream}.>`, () => undefined, {
        mode: ReadMode.All,
        replicated: true,
        batch: 1,
        catchUpTimeoutMs: 6_000,
      }),
      50_000,
    );
    expect(outcome).toMatchObject({ lastSequence: 400 });
    expect((outcome as { restarts: number }).restarts).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
