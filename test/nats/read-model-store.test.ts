import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { NatsReadModelStore } from "../../src/nats/index.js";
import { ProjectionStatus, type ReadModelMetadata, type ReadModelStore } from "../../src/read-models/index.js";
import { describeReadModelStoreContract } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
const bucket = uniqueBucket("rm");
beforeAll(async () => {
  nc = await connectTest("read-model-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describeReadModelStoreContract("NatsReadModelStore", () => NatsReadModelStore.open({ client: nc, bucket }), {
  queryRuns: 16,
  timeoutMs: 60_000,
});

const meta = (modelType: string, id: string, position = 1): ReadModelMetadata => ({
  id,
  modelType,
  schemaVersion: 2,
  lastUpdated: new Date("2025-03-04T05:06:07.089Z"),
  lastEventPosition: position,
  metadata: { source: "test" },
});

const status = (name: string, value: ProjectionStatus) => ({
  name,
  status: value,
  checkpoint: 0,
  updatedAt: new Date(),
});

describe("NatsReadModelStore", () => {
  it("saves and loads a read model with its metadata", async () => {
    const store = await NatsReadModelStore.open({ client: nc, bucket });
    expect(store.capabilities).toEqual({ atomicCheckpoint: false, indexes: false, durable: true });
    expect((store as ReadModelStore).saveWithCheckpoint).toBeUndefined();
    const model = { id: "p1", totalProducts: 3, averagePrice: 9.5 };
    await store.save(model, meta("ProductStats", "p1", 100));
    const loaded = await store.load<typeof model>("ProductStats", "p1");
    expect(loaded?.model).toEqual(model);
    expect(loaded?.metadata).toEqual(meta("ProductStats", "p1", 100));
    expect(await store.load("ProductStats", "missing")).toBeUndefined();
    expect(await store.load("OtherType", "p1")).toBeUndefined();
    await store.save({ ...model, totalProducts: 4 }, meta("ProductStats", "p1", 101));
    expect((await store.load<typeof model>("ProductStats", "p1"))?.model.totalProducts).toBe(4);
    expect(await store.delete("ProductStats", "p1")).toBe(true);
    expect(await store.load("ProductStats", "p1")).toBeUndefined();
    expect(await store.delete("ProductStats", "p1")).toBe(false);
  });

  it("a conditional save whose value and headers exceed max_payload is a TooLargeError, not a server refusal", async () => {
    const store = await NatsReadModelStore.open({ client: nc, bucket });
    const max = nc.info?.max_payload as number;
    // Metadata padded so that the whole value is max_payload bytes: a plain put carries no headers and fits.
    const sized = (pad: number) => ({ ...meta("Big", "b"), metadata: { pad: "p".repeat(pad) } });
    const model = { x: "m".repeat(store.maxValueBytes - 1024 * 8) };
    const probe = `{"metadata":${JSON.stringify({ ...sized(0), lastUpdated: sized(0).lastUpdated.toISOString() })},"model":${JSON.stringify(model)}}`;
    const metadata = sized(max - Buffer.byteLength(probe));
    expect(await store.save(model, metadata)).toBeGreaterThan(0);
    for (const expectedRevision of [0, 1]) {
      const error = await store.save(model, metadata, { expectedRevision }).catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.TooLarge), String(error)).toBe(true);
    }
  });

  it("a model's revision is its KV revision", async () => {
    const store = await NatsReadModelStore.open({ client: nc, bucket });
    const revision = await store.save({ n: 1 }, meta("Rev", "r1"));
    const { Kvm } = await import("@nats-io/kv");
    const kv = await new Kvm(nc).open(bucket);
    const keys: string[] = [];
    for await (const k of await kv.keys("m.>")) keys.push(k);
    const key = keys.find((k) => k.endsWith(".r1") && k.includes("Rev")) as string;
    expect((await kv.get(key))?.revision).toBe(revision);
  });

  it("stores projection status where no read-model id can collide, and reads it back", async () => {
    const store = await NatsReadModelStore.open({ client: nc, bucket });
    const type = "OrderSummary";
    expect(await store.getProjectionStatus(type)).toBeUndefined();
    // Ids that look like a status key under the original's layout.
    for (const id of ["status", "_status", "projection_status", "s", `s.${type}`, ".."]) {
      await store.save({ id }, meta(type, id));
    }
    await store.updateProjectionStatus(status(type, ProjectionStatus.CatchingUp));
    await store.updateProjectionStatus(status(type, ProjectionStatus.UpToDate));
    const got = await store.getProjectionStatus(type);
    expect(got?.status).toBe("up_to_date");
    expect(got?.name).toBe(type);
    expect(got?.updatedAt).toBeInstanceOf(Date);
    for (const id of ["status", "_status", "projection_status", "s", `s.${type}`, ".."]) {
      expect((await store.load(type, id))?.model).toEqual({ id });
    }
    expect((await store.list(type)).sort()).toEqual(
      ["..", "_status", "projection_status", "s", `s.${type}`, "status"].sort(),
    );
  });

  it("rejects bad input with typed errors", async () => {
    const store = await NatsReadModelStore.open({ client: nc, bucket });
    const bad = await store.updateProjectionStatus(status("T", "done" as ProjectionStatus)).catch((e: unknown) => e);
    expect(isStatelogError(bad, ErrorCode.Validation)).toBe(true);
    const value = await store.save({ n: 10n }, meta("T", "x")).catch((e: unknown) => e);
    expect(isStatelogError(value, ErrorCode.InvalidValue)).toBe(true);
    const name = await store.load("a/b", "x").catch((e: unknown) => e);
    expect(isStatelogError(name, ErrorCode.InvalidName)).toBe(true);
    await store.close();
    const closed = await store.load("T", "x").catch((e: unknown) => e);
    expect(isStatelogError(closed, ErrorCode.Closed)).toBe(true);
  });
});
