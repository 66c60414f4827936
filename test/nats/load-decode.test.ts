/**
 * The load path of NatsKvStore: values as `save` writes them are decoded
 * without parsing the envelope, everything else through the full parse
 * and its checks; the reader's delivery info and its callback-driven
 * consumer (errors, aborts, the consumer deleted afterwards).
 */
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Change } from "../../src/core/change.js";
import { ErrorCode, isAbortError } from "../../src/core/errors.js";
import { NatsKvStore } from "../../src/nats/index.js";
import { entityKey } from "../../src/nats/keys.js";
import { type Delivery, readDelivery, readFiltered } from "../../src/nats/reader.js";
import { expectCode } from "../../src/testing/assert.js";
import { uniqueName } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

const T = "2025-01-02T03:04:05.006Z";

describe("readDelivery", () => {
  const fail = () => {
    throw new Error("info was read");
  };
  const read = (reply: string, info: () => { streamSequence: number; pending: number } = fail): Delivery => {
    const out: Delivery = { seq: -1, pending: -1 };
    readDelivery(
      {
        reply,
        get info() {
          return info() as never;
        },
      },
      out,
    );
    return out;
  };

  it("reads the stream sequence and the pending count of both reply formats", () => {
    // $JS.ACK.<stream>.<consumer>.<delivered>.<streamSeq>.<consumerSeq>.<timestamp>.<pending>
    expect(read("$JS.ACK.KV_b.c1.1.4711.12.1733500000000000000.99")).toEqual({ seq: 4711, pending: 99 });
    expect(read("$JS.ACK.KV_b.c1.3.1.1.1733500000000000000.0")).toEqual({ seq: 1, pending: 0 });
    // With domain and account hash, and a random token at the end.
    expect(read("$JS.ACK._.ACCHASH.KV_b.c1.1.9007199254740.5.1733500000000000000.7.xyz")).toEqual({
      seq: 9007199254740,
      pending: 7,
    });
    expect(read("$JS.ACK.hub.ACCHASH.KV_b.c1.1.42.5.1733500000000000000.0")).toEqual({ seq: 42, pending: 0 });
  });

  it("leaves anything else to the message's own info", () => {
    const info = () => ({ streamSequence: 5, pending: 3 });
    for (const reply of [
      "",
      "_INBOX.abc",
      "$JS.ACK.KV_b.c1.1.x.12.17.99", // not a number
      "$JS.ACK.KV_b.c1.1.12.17.99", // too few tokens
      "$JS.ACK.a.b.c.d.e.f.g", // nine tokens, not numbers
      "$JS.NAK.KV_b.c1.1.4711.12.17.99",
      "$JS.ACK.KV_b.c1.1.4711.12.17.", // empty pending
    ]) {
      expect(read(reply, info), reply).toEqual({ seq: 5, pending: 3 });
    }
    expect(() => read("_INBOX.abc")).toThrow("info was read");
  });
});

describe("NatsKvStore load decoding on a real server", () => {
  let nc: NatsConnection;
  const bucket = uniqueBucket("decode");
  beforeAll(async () => {
    nc = await connectTest("load-decode");
  });
  afterAll(async () => {
    if (nc) await deleteTestStreams(nc);
    await nc?.close();
  });

  /** Puts `value` with the plain KV client as entity `item/x` of a new namespace; returns the namespace. */
  async function put(store: NatsKvStore, value: string): Promise<string> {
    const ns = uniqueName("ns");
    // A save first, so the namespace exists (marker), then the raw value replaces the entity.
    await store.save([{ namespace: ns, changeType: "set", entityType: "item", entityId: "x", entity: 0 }]);
    const kv = await new Kvm(nc).open(bucket);
    await kv.put(entityKey(ns, "item", "x"), value);
    return ns;
  }

  it("loads what save wrote, each change with its own Date", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const ns = uniqueName("saved");
    const at = new Date(T);
    const entities = [{ a: 1, s: 'q"uote\\ "entity":1}' }, [1, 2], "text", 0, null, true, { nested: { e: "é" } }];
    await store.save(
      entities.map((entity, i) => ({
        namespace: ns,
        changeType: "set",
        entityType: "t",
        entityId: `e${i}`,
        entity,
        timestamp: at,
      })),
    );
    await store.save([{ namespace: ns, changeType: "unset", entityType: "t", entityId: "gone", timestamp: at }]);
    const loaded = await store.load(ns);
    expect(loaded.map((c) => [c.entityId, c.changeType, c.entity])).toEqual([
      ...entities.map((entity, i) => [`e${i}`, "set", entity]),
      ["gone", "unset", undefined],
    ]);
    for (const c of loaded) expect(c.timestamp).toBeInstanceOf(Date);
    // Changes of one save share the time, not the Date object.
    const [first, second] = loaded as [Change, Change];
    expect(second.timestamp.getTime()).toBe(at.getTime());
    first.timestamp.setTime(0);
    expect(second.timestamp.getTime()).toBe(at.getTime());
    await store.close();
  });

  it("reads values of another writer exactly as the whole envelope says", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const cases: [string, { changeType: string; entity?: unknown; timestamp: string }][] = [
      [
        `{"changeType":"set","timestamp":"${T}","entity":{"v":1}}`,
        { changeType: "set", entity: { v: 1 }, timestamp: T },
      ],
      [
        `{ "changeType": "set", "timestamp": "${T}", "entity": [1, 2] }`,
        { changeType: "set", entity: [1, 2], timestamp: T },
      ],
      [`{"timestamp":"${T}","changeType":"set","entity":"x"}`, { changeType: "set", entity: "x", timestamp: T }],
      [`{"changeType":"set","timestamp":"${T}","entity": 7 }`, { changeType: "set", entity: 7, timestamp: T }],
      // Valid JSON as a whole, not the entity alone: the later key wins, as JSON.parse has it.
      [`{"changeType":"set","timestamp":"${T}","entity":1,"entity":2}`, { changeType: "set", entity: 2, timestamp: T }],
      [
        `{"changeType":"set","timestamp":"${T}","entity":1,"changeType":"unset"}`,
        { changeType: "unset", timestamp: T },
      ],
      [
        `{"changeType":"set","timestamp":"${T}","entity":1,"timestamp":"2030-01-01T00:00:00.000Z"}`,
        { changeType: "set", entity: 1, timestamp: "2030-01-01T00:00:00.000Z" },
      ],
      // An escape in the timestamp: decoded by the full parse.
      [
        `{"changeType":"set","timestamp":"${T.slice(0, -1)}\\u005a","entity":null}`,
        { changeType: "set", entity: null, timestamp: T },
      ],
      [`{"changeType":"unset","timestamp":"${T}"}`, { changeType: "unset", timestamp: T }],
    ];
    for (const [value, expected] of cases) {
      const ns = await put(store, value);
      const [change, ...rest] = await store.load(ns);
      expect(rest, value).toEqual([]);
      expect(change?.changeType, value).toBe(expected.changeType);
      expect(change?.entity, value).toEqual(expected.entity);
      expect(change?.timestamp.toISOString(), value).toBe(expected.timestamp);
    }
    await store.close();
  });

  it("refuses a damaged value with a CorruptionError, whatever its start", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const head = `{"changeType":"set","timestamp":"${T}","entity":`;
    for (const [value, reason] of [
      [`${head}}`, /does not hold JSON/],
      [`${head}{"a":}}`, /does not hold JSON/],
      [`${head}1}x`, /does not hold JSON/],
      [`${head}1`, /does not hold JSON/],
      [`{"changeType":"set","timestamp":"${T}"}`, /not a statelog change/],
      [`{"changeType":"set","timestamp":"yesterday","entity":1}`, /no valid timestamp/],
      [`{"changeType":"set","timestamp":"","entity":1}`, /no valid timestamp/],
      [`{"changeType":"set","entity":1}`, /no valid timestamp/],
      [`{"changeType":"put","timestamp":"${T}","entity":1}`, /not a statelog change/],
    ] as const) {
      const ns = await put(store, value);
      const error = (await expectCode(store.load(ns), ErrorCode.Corruption)) as Error;
      expect(error.message, value).toMatch(reason);
      expect(error.message, value).toMatch(/revision \d+/);
    }
    await store.close();
  });
});

describe("readFiltered on a real server", () => {
  let nc: NatsConnection;
  const bucket = uniqueBucket("reader");
  beforeAll(async () => {
    nc = await connectTest("reader");
  });
  afterAll(async () => {
    if (nc) await deleteTestStreams(nc);
    await nc?.close();
  });

  async function filled(ns: string, n: number): Promise<NatsKvStore> {
    const store = await NatsKvStore.open({ client: nc, bucket });
    await store.save(
      Array.from({ length: n }, (_, i) => ({
        namespace: ns,
        changeType: "set" as const,
        entityType: "item",
        entityId: `e${i}`,
        entity: i,
      })),
    );
    return store;
  }

  async function consumerCount(stream: string): Promise<number> {
    const jsm = await jetstreamManager(nc);
    // Deleting a consumer is not awaited by the read: give it a moment.
    for (let i = 0; i < 50; i++) {
      const info = await jsm.streams.info(stream);
      if (info.state.consumer_count === 0) return 0;
      await new Promise((r) => setTimeout(r, 20));
    }
    return (await jsm.streams.info(stream)).state.consumer_count;
  }

  for (const replicated of [true, false]) {
    it(`passes each message with its stream sequence, in order, as the message's own info says (replicated: ${replicated})`, async () => {
      const ns = uniqueName("seq");
      const store = await filled(ns, 2_500); // more than one pull of 1,000
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const seen: number[] = [];
      const onMessage = (m: JsMsg, seq: number) => {
        const d: Delivery = { seq: 0, pending: 0 };
        readDelivery(m, d);
        expect(d).toEqual({ seq: m.info.streamSequence, pending: m.info.pending });
        expect(seq).toBe(m.seq);
        seen.push(seq);
      };
      const result = await readFiltered(js, jsm, store.stream, `$KV.${bucket}.${ns}.>`, onMessage, { replicated });
      expect(seen).toHaveLength(2_500);
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] as number);
      expect(result).toEqual({
        lastSequence: seen.at(-1),
        lagged: false,
        restarts: 0,
        limited: false,
        target: seen.at(-1),
      });
      expect(await consumerCount(store.stream)).toBe(0);
      await store.close();
    });

    it(`a key written again during a last-value read comes twice and the read says so (replicated: ${replicated})`, async () => {
      const ns = uniqueName("again");
      const store = await filled(ns, 5_000);
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const subjects: string[] = [];
      let written: Promise<void> | undefined;
      const result = await readFiltered(
        js,
        jsm,
        store.stream,
        `$KV.${bucket}.${ns}.>`,
        (m) => {
          subjects.push(m.subject);
          // The first key again, while the read is under way: its new revision comes at the end.
          written ??= store.save([
            { namespace: ns, changeType: "set", entityType: "item", entityId: "e0", entity: "again" },
          ]);
        },
        { replicated },
      );
      await written;
      const first = `$KV.${bucket}.${ns}.item.e0`;
      expect(subjects[0]).toBe(first);
      expect(subjects.at(-1)).toBe(first);
      expect(subjects).toHaveLength(5_001);
      expect(result.lagged).toBe(true);
      const loaded = await store.load(ns);
      expect(loaded).toHaveLength(5_000);
      expect(loaded.at(-1)?.entity).toBe("again");
      await store.close();
    });
  }

  it("stops at the first error of the callback, throws it as is and deletes its consumer", async () => {
    const ns = uniqueName("err");
    const store = await filled(ns, 1_500);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const boom = new Error("boom");
    let calls = 0;
    const read = readFiltered(js, jsm, store.stream, `$KV.${bucket}.${ns}.>`, () => {
      calls++;
      if (calls === 700) throw boom;
    });
    await expect(read).rejects.toBe(boom);
    expect(calls).toBe(700);
    expect(await consumerCount(store.stream)).toBe(0);
    await store.close();
  });

  it("an abort during the read ends it with an AbortError and deletes its consumer", async () => {
    const ns = uniqueName("abort");
    const store = await filled(ns, 3_000);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const controller = new AbortController();
    let calls = 0;
    const read = readFiltered(
      js,
      jsm,
      store.stream,
      `$KV.${bucket}.${ns}.>`,
      () => {
        calls++;
        if (calls === 100) controller.abort(new Error("stop"));
      },
      { signal: controller.signal },
    );
    const error = await read.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAbortError(error)).toBe(true);
    expect(calls).toBe(100);
    expect(await consumerCount(store.stream)).toBe(0);
    await expectCode(store.load(ns, { signal: AbortSignal.abort() }), ErrorCode.Aborted);
    await store.close();
  });
});
