import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isAbortError, isPartialWriteError, isStatelogError } from "../../src/core/errors.js";
import { isNatsSaveError, NatsKvStore, NatsSaveError } from "../../src/nats/index.js";
import { decodeToken, encodeToken, entityKey, parseEntityKey } from "../../src/nats/keys.js";
import { STORE_ENVELOPE_BYTES } from "../../src/nats/kv-store-options.js";
import { expectCode } from "../../src/testing/assert.js";
import { HOSTILE_IDS, uniqueName } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

const LEGAL_KEY = /^[-/_=.a-zA-Z0-9]+$/;

describe("NATS key encoding", () => {
  it("maps hostile names to single legal tokens and back", () => {
    for (const name of HOSTILE_IDS) {
      const token = encodeToken(name);
      expect(token).toMatch(/^[-_a-zA-Z0-9]+$/);
      expect(decodeToken(token)).toBe(name);
    }
    const key = entityKey("a.b", "*", "x/>/y");
    expect(key.split(".")).toHaveLength(3);
    expect(key).toMatch(LEGAL_KEY);
    expect(parseEntityKey(key)).toEqual({ namespace: "a.b", entityType: "*", entityId: "x/>/y" });
  });

  it("property: round-trips and never collides", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }), fc.string({ minLength: 1 }), (a, b) => {
        expect(decodeToken(encodeToken(a))).toBe(a);
        expect(encodeToken(a)).toMatch(/^[-_a-zA-Z0-9]+$/);
        if (a !== b) expect(encodeToken(a)).not.toBe(encodeToken(b));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps plain names readable", () => {
    expect(encodeToken("workspace-1")).toBe("workspace-1");
    expect(encodeToken("a.b")).toBe("a_2eb");
    expect(encodeToken("_")).toBe("_5f");
    expect(encodeToken("é")).toBe("_c3_a9");
  });

  it("rejects tokens no encoder wrote", () => {
    expect(() => decodeToken("a_zz")).toThrow(/bad escape/);
    expect(() => decodeToken("a.b")).toThrow();
  });
});

describe("NatsKvStore on a real server", () => {
  let nc: NatsConnection;
  const bucket = uniqueBucket("extras");
  beforeAll(async () => {
    nc = await connectTest("kv-store-extras");
  });
  afterAll(async () => {
    if (nc) await deleteTestStreams(nc);
    await nc?.close();
  });

  it("stores the documented layout, readable with the plain KV client", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const ns = uniqueName("layout");
    const ts = new Date("2025-01-02T03:04:05.006Z");
    await store.save([
      { namespace: ns, changeType: "set", entityType: "item", entityId: "a/b", entity: { v: 1 }, timestamp: ts },
      { namespace: ns, changeType: "unset", entityType: "item", entityId: "gone", timestamp: ts },
    ]);
    const kv = await new Kvm(nc).open(bucket);
    const set = await kv.get(`${encodeToken(ns)}.item.a_2fb`);
    expect(set?.json()).toEqual({ changeType: "set", timestamp: ts.toISOString(), entity: { v: 1 } });
    const unset = await kv.get(`${encodeToken(ns)}.item.gone`);
    expect(unset?.operation).toBe("PUT");
    expect(unset?.json()).toEqual({ changeType: "unset", timestamp: ts.toISOString() });
    expect((await kv.get(encodeToken(ns)))?.string()).toBe(ns);
    await store.close();
  });

  it("a load racing saves to the same keys returns each key once, never older than before the load", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const ns = uniqueName("race");
    const keys = 3000;
    const put = (ids: number[], v: number) =>
      store.save(
        ids.map((i) => ({ namespace: ns, changeType: "set", entityType: "item", entityId: `k${i}`, entity: { v } })),
      );
    await put([...Array(keys).keys()], 0);
    let version = 0;
    let acknowledged = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const v = ++version;
        await put(
          [...Array(200).keys()].map((j) => (j * 15 + v) % keys),
          v,
        );
        acknowledged = v;
      }
    })();
    let sawRace = false;
    try {
      for (let round = 0; round < 8; round++) {
        const before = acknowledged;
        const loaded = await store.load(ns);
        const ids = loaded.map((c) => c.entityId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(keys);
        // Every key written by the last save acknowledged before the load holds that version or a newer one.
        for (const c of loaded) {
          const i = Number(c.entityId.slice(1));
          const v = (c.entity as { v: number }).v;
          if (before > 0 && [...Array(200).keys()].some((j) => (j * 15 + before) % keys === i)) {
            expect(v).toBeGreaterThanOrEqual(before);
          }
        }
        if (acknowledged > before) sawRace = true;
      }
    } finally {
      stop = true;
      await writer;
      await store.close();
    }
    expect(sawRace).toBe(true); // the loads did overlap saves
  });

  it("a save aborted part-way says which changes are stored, and the store holds exactly those", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket, maxInFlight: 16 });
    const ns = uniqueName("abort");
    const controller = new AbortController();
    // Abort once the server has taken 200 of the 3,000 messages (seen on a plain subscription).
    let seen = 0;
    const sub = nc.subscribe(`$KV.${bucket}.${encodeToken(ns)}.>`, {
      callback: () => {
        if (++seen === 200) controller.abort(new Error("enough"));
      },
    });
    await nc.flush(); // the subscription is registered before the save starts
    const changes = Array.from({ length: 3000 }, (_, i) => ({
      namespace: ns,
      changeType: "set" as const,
      entityType: "item",
      entityId: `k${i}`,
      entity: { i },
    }));
    const error = await store.save(changes, { signal: controller.signal }).catch((e: unknown) => e);
    sub.unsubscribe();
    expect(error).toBeInstanceOf(NatsSaveError);
    expect(isNatsSaveError(error)).toBe(true);
    // The package's one partial-write shape; the abort is the cause.
    expect(isPartialWriteError(error), String(error)).toBe(true);
    expect(isStatelogError(error, ErrorCode.PartialWrite)).toBe(true);
    expect(isAbortError((error as Error).cause), String((error as Error).cause)).toBe(true);
    const { targets, written, uncertain, failed } = error as NatsSaveError;
    expect(targets).toBe("changes");
    const notWritten = failed.map((f) => f.index);
    expect([...written, ...uncertain, ...notWritten].sort((a, b) => a - b)).toEqual(changes.map((_, i) => i));
    expect(written.length).toBeGreaterThanOrEqual(150);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(isAbortError(f.error), String(f.error)).toBe(true); // never sent: the abort
    expect(uncertain).toEqual([]); // a healthy server answers every publish that was sent
    expect((error as NatsSaveError).unmarkedNamespaces).toEqual([]); // the marker went first and was acknowledged
    expect(await store.listNamespaces()).toContain(ns);
    const loaded = new Set((await store.load(ns)).map((c) => c.entityId));
    expect(loaded).toEqual(new Set(written.map((i) => `k${i}`)));
    expect((error as Error).message).toContain(`${written.length} of 3000 changes written`);
    await store.close();
  });

  it("a key deleted with another KV client loads as a tombstone", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const ns = uniqueName("del");
    await store.save([{ namespace: ns, changeType: "set", entityType: "item", entityId: "a", entity: 1 }]);
    const kv = await new Kvm(nc).open(bucket);
    await kv.delete(entityKey(ns, "item", "a"));
    const loaded = await store.load(ns);
    expect(loaded.map((c) => [c.entityId, c.changeType])).toEqual([["a", "unset"]]);
    expect(await store.load(ns, { liveOnly: true })).toEqual([]);
    await store.close();
  });

  it("load reads only its namespace: damage in another namespace does not affect it", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    const good = uniqueName("good");
    const bad = uniqueName("bad");
    await store.save([{ namespace: good, changeType: "set", entityType: "item", entityId: "a", entity: 1 }]);
    const kv = await new Kvm(nc).open(bucket);
    await kv.put(entityKey(bad, "item", "x"), "not json");
    expect((await store.load(good)).map((c) => c.entity)).toEqual([1]);
    await expectCode(store.load(bad), ErrorCode.Corruption);
    await store.close();
  });

  it("rejects a change over maxValueBytes (which the server can carry) before writing anything", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket });
    expect(store.maxValueBytes).toBe(1024 * 1024);
    expect(store.maxValueBytes + STORE_ENVELOPE_BYTES).toBeLessThanOrEqual(nc.info?.max_payload ?? 0);
    const ns = uniqueName("big");
    await expectCode(
      store.save([
        { namespace: ns, changeType: "set", entityType: "item", entityId: "small", entity: 1 },
        { namespace: ns, changeType: "set", entityType: "item", entityId: "big", entity: "x".repeat(1024 * 1024) },
      ]),
      ErrorCode.TooLarge,
    );
    expect(await store.load(ns)).toEqual([]);
    // A maxValueBytes the server cannot carry is refused at open.
    const max = nc.info?.max_payload ?? 0;
    await expectCode(NatsKvStore.open({ client: nc, bucket, maxValueBytes: max }), ErrorCode.Configuration);
    await store.close();
  });

  it("compact drops older revisions of a history bucket, only in its namespace", async () => {
    const hb = uniqueBucket("compact");
    const store = await NatsKvStore.open({ client: nc, bucket: hb, history: 5 });
    const ns = uniqueName("c");
    const other = uniqueName("o");
    for (let v = 0; v < 4; v++) {
      await store.save([
        { namespace: ns, changeType: "set", entityType: "item", entityId: "a", entity: v },
        { namespace: other, changeType: "set", entityType: "item", entityId: "a", entity: v },
      ]);
    }
    const kv = await new Kvm(nc).open(hb);
    const revisions = async (key: string) => {
      const out: number[] = [];
      const it = await kv.history({ key });
      for await (const e of it) out.push(e.revision);
      return out.length;
    };
    expect(await revisions(entityKey(ns, "item", "a"))).toBe(4);
    const before = await store.load(ns);
    await store.compact(ns);
    expect(await revisions(entityKey(ns, "item", "a"))).toBe(1);
    expect(await revisions(entityKey(other, "item", "a"))).toBe(4);
    expect(await store.load(ns)).toEqual(before);
    await expectCode(NatsKvStore.open({ client: nc, bucket: hb, history: 65 }), ErrorCode.Configuration);
    await store.close();
  });

  it("a closed connection gives an UnavailableError", async () => {
    const own = await connectTest("closed-conn");
    const store = await NatsKvStore.open({ client: own, bucket });
    await own.close();
    const ns = uniqueName("closed");
    await expectCode(
      store.save([{ namespace: ns, changeType: "unset", entityType: "t", entityId: "a" }]),
      ErrorCode.Unavailable,
    );
    await expectCode(store.load(ns), ErrorCode.Unavailable);
  });

  it("saves and loads many entities in order through the in-flight window", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket, maxInFlight: 16 });
    const ns = uniqueName("many");
    const n = 3000;
    await store.save(
      Array.from({ length: n }, (_, i) => ({
        namespace: ns,
        changeType: "set" as const,
        entityType: "item",
        entityId: `e${(i * 7) % n}`,
        entity: { i },
      })),
    );
    const loaded = await store.load(ns);
    expect(loaded.map((c) => (c.entity as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i));
    await store.close();
  });
});
