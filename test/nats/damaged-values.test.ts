/**
 * Values the stores never write, put there by hand with the plain KV or
 * JetStream client: reads fail with a `CorruptionError` naming the bucket
 * (or stream) and the key (or sequence), never a `TypeError`, an
 * `UnavailableError` (a retry never helps) or a `ValidationError`, and
 * never hand out a model with invalid metadata.
 */
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CorruptionError, isCorruptionError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/index.js";
import { NatsEventStore, NatsReadModelStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("damaged-values-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** What `call` rejects with (or "resolved: …" when it resolves). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    (value) => `resolved: ${JSON.stringify(value)}`,
    (error: unknown) => error,
  );
}

const metadata = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  modelType: "M",
  schemaVersion: 1,
  lastUpdated: "2024-05-01T10:00:00.000Z",
  lastEventPosition: 3,
  metadata: {},
  ...extra,
});

const status = (extra: Record<string, unknown> = {}) => ({
  name: "p1",
  status: "up_to_date",
  checkpoint: 4,
  updatedAt: "2024-05-01T10:00:00.000Z",
  ...extra,
});

describe("NatsReadModelStore: damaged values", () => {
  const damagedModels: [string, unknown][] = [
    ["null", null],
    ["a number", 42],
    ["an array", [1]],
    ["no metadata", { model: 1 }],
    ["null metadata", { metadata: null, model: 1 }],
    ["metadata without its fields", { metadata: { bad: 1 }, model: 1 }],
    ["no model", { metadata: metadata("a") }],
    ["an invalid lastUpdated", { metadata: metadata("a", { lastUpdated: "yesterday" }), model: 1 }],
    ["a lastUpdated that is a number", { metadata: metadata("a", { lastUpdated: 1714557600000 }), model: 1 }],
    ["a negative schemaVersion", { metadata: metadata("a", { schemaVersion: -1 }), model: 1 }],
    ["a lastEventPosition that is not an integer", { metadata: metadata("a", { lastEventPosition: "3" }), model: 1 }],
    ["free metadata that is not strings", { metadata: metadata("a", { metadata: { n: 1 } }), model: 1 }],
    ["an empty id", { metadata: metadata(""), model: 1 }],
    ["the metadata of another model", { metadata: metadata("b"), model: 1 }],
  ];

  it.each(damagedModels)(
    "a model value with %s: load and query fail with a CorruptionError naming bucket and key",
    async (_what, value) => {
      const store = await NatsReadModelStore.open({ client: nc, bucket: uniqueBucket("RMD") });
      const kv = await new Kvm(nc).open(store.bucket);
      await store.save({ ok: true }, { ...metadata("z"), lastUpdated: new Date() });
      const revision = await kv.put("m.M.a", JSON.stringify(value));
      for (const error of [
        await failure(store.load("M", "a")),
        await failure(store.query({ modelType: "M", filters: [], sort: [] })),
      ]) {
        expect(isCorruptionError(error), String(error)).toBe(true);
        expect((error as CorruptionError).file).toBe(`NATS KV ${store.bucket} key m.M.a revision ${revision}`);
      }
      // The other models are read as before.
      expect((await store.load("M", "z"))?.model).toEqual({ ok: true });
      await store.close();
    },
  );

  it("a value written by hand the way the store writes it loads (the checks pass stored metadata)", async () => {
    const store = await NatsReadModelStore.open({ client: nc, bucket: uniqueBucket("RMD") });
    const kv = await new Kvm(nc).open(store.bucket);
    await kv.put("m.M.a", JSON.stringify({ metadata: metadata("a", { metadata: { k: "v" } }), model: { n: 1 } }));
    const loaded = await store.load("M", "a");
    expect(loaded?.model).toEqual({ n: 1 });
    expect(loaded?.metadata).toEqual({
      ...metadata("a", { metadata: { k: "v" } }),
      lastUpdated: new Date("2024-05-01T10:00:00.000Z"),
    });
    await store.close();
  });

  const damagedStatuses: [string, unknown][] = [
    ["null", null],
    ["a string", "up_to_date"],
    ["an empty object", {}],
    ["no updatedAt", status({ updatedAt: undefined })],
    ["an invalid updatedAt", status({ updatedAt: "soon" })],
    ["an unknown status", status({ status: "sleeping" })],
    ["a negative checkpoint", status({ checkpoint: -1 })],
    ["a lastError that is not a string", status({ lastError: { message: "x" } })],
    ["another projection's name", status({ name: "p2" })],
  ];

  it.each(damagedStatuses)(
    "a status with %s: getProjectionStatus and listProjectionStatuses fail with a CorruptionError naming bucket and key",
    async (_what, value) => {
      const store = await NatsReadModelStore.open({ client: nc, bucket: uniqueBucket("RMD") });
      const kv = await new Kvm(nc).open(store.bucket);
      const revision = await kv.put("s.p1", JSON.stringify(value));
      for (const error of [
        await failure(store.getProjectionStatus("p1")),
        await failure(store.listProjectionStatuses()),
      ]) {
        expect(isCorruptionError(error), String(error)).toBe(true);
        expect((error as CorruptionError).file).toBe(`NATS KV ${store.bucket} key s.p1 revision ${revision}`);
      }
      await kv.put("s.p1", JSON.stringify(status()));
      expect(await store.getProjectionStatus("p1")).toEqual({ ...status(), updatedAt: new Date(status().updatedAt) });
      await store.close();
    },
  );
});

describe("NatsEventStore: damaged messages", () => {
  const event = { id: "e1", type: "t", timestamp: "2024-05-01T10:00:00.000Z", data: {} };
  const damaged: [string, string][] = [
    ["null", "null"],
    ["a number", "42"],
    ["an array", "[]"],
    ["no events", '{"first":1}'],
    ["no event at all", '{"first":1,"events":[]}'],
    ["a first position that is a string", JSON.stringify({ first: "1", events: [event] })],
    ["a first position of 0", JSON.stringify({ first: 0, events: [event] })],
    ["an event that is null", '{"first":1,"events":[null]}'],
    ["an event with an id only", '{"first":1,"events":[{"id":"x"}]}'],
    ["an event without a type", JSON.stringify({ first: 1, events: [{ ...event, type: undefined }] })],
    ["an event with an invalid timestamp", JSON.stringify({ first: 1, events: [{ ...event, timestamp: "later" }] })],
    ["an event with metadata that is not an object", JSON.stringify({ first: 1, events: [{ ...event, metadata: 7 }] })],
  ];

  it.each(damaged)(
    "a message with %s: catchUp and open fail with a CorruptionError naming stream and sequence",
    async (_what, body) => {
      const stream = uniqueBucket("EVD");
      const store = await NatsEventStore.open({ client: nc, stream });
      await store.append("ok", [createEvent("t", {})]);
      const { seq } = await jetstream(nc).publish(`${store.prefix}.bad`, body);
      const errors = [await failure(store.catchUp())];
      await store.close();
      errors.push(await failure(NatsEventStore.open({ client: nc, stream })));
      for (const error of errors) {
        expect(isCorruptionError(error), String(error)).toBe(true);
        expect((error as CorruptionError).file).toBe(`NATS stream ${stream}`);
        expect((error as CorruptionError).line).toBe(seq);
      }
    },
  );
});
