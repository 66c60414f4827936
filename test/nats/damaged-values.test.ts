/**
 * Values the stores never write, put there by hand with the plain KV
 * client: reads fail with a `CorruptionError` naming the bucket and the
 * key, never a `TypeError`, an
 * `UnavailableError` (a retry never helps) or a `ValidationError`, and
 * never hand out a model with invalid metadata.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CorruptionError, isCorruptionError } from "../../src/core/errors.js";
import { NatsReadModelStore } from "../../src/nats/index.js";
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
