import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import type { Store } from "../../src/core/store.js";
import { createEvent } from "../../src/events/index.js";
import { EVENT_ENVELOPE_BYTES } from "../../src/nats/event-store-options.js";
import { NatsEventStore, NatsKvRepository, NatsKvStore, NatsReadModelStore } from "../../src/nats/index.js";
import { STORE_ENVELOPE_BYTES } from "../../src/nats/kv-store-options.js";
import { READ_MODEL_ENVELOPE_BYTES } from "../../src/nats/read-model-store.js";
import { REPOSITORY_ENVELOPE_BYTES } from "../../src/nats/repository-bucket.js";
import { describeStoreContract } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";
import { type NatsServerProcess, startNatsServer } from "./nats-server.js";

let nc: NatsConnection;
const bucket = uniqueBucket("store");
beforeAll(async () => {
  nc = await connectTest("kv-store-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describeStoreContract("NatsKvStore", () => NatsKvStore.open({ client: nc, bucket }), {
  reopen: async (store: Store) => {
    await store.close();
    return NatsKvStore.open({ client: nc, bucket });
  },
  propertyRuns: 25,
});

// A bucket that keeps 5 revisions per key: compact really purges there.
const historyBucket = uniqueBucket("store_h5");
describeStoreContract(
  "NatsKvStore (history 5)",
  () => NatsKvStore.open({ client: nc, bucket: historyBucket, history: 5 }),
  {
    reopen: async (store: Store) => {
      await store.close();
      return NatsKvStore.open({ client: nc, bucket: historyBucket, history: 5 });
    },
    propertyRuns: 10,
  },
);

// A server with nats-server's default max_payload (1 MiB) cannot carry a 1 MiB value plus its envelope:
// without an explicit maxValueBytes, each object takes the largest limit the server carries; an explicit
// limit the server cannot carry is refused with a ConfigurationError naming both numbers.
describe("NATS objects on a server with the default max_payload (1 MiB)", () => {
  const ONE_MIB = 1024 * 1024;
  let server: NatsServerProcess | undefined;
  let small: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer({ name: "statelog-default-payload", maxPayload: "server-default" });
    small = await connect({ servers: server.url, name: "kv-store-default-payload" });
  }, 30_000);
  afterAll(async () => {
    await small?.close();
    await server?.stop();
  });

  it("NatsKvStore.open without maxValueBytes takes the largest limit the server carries", async () => {
    expect(small.info?.max_payload).toBe(ONE_MIB);
    const store = await NatsKvStore.open({ client: small, bucket: uniqueBucket("dp") });
    expect(store.maxValueBytes).toBe(ONE_MIB - STORE_ENVELOPE_BYTES);
    // A change of exactly that size is stored and loads back; one byte more is a TooLargeError.
    const entity = "x".repeat(store.maxValueBytes - 2); // the JSON string adds two quotes
    const ns = "big";
    await store.save([{ namespace: ns, changeType: "set", entityType: "t", entityId: "a", entity }]);
    expect((await store.load(ns)).map((c) => c.entity)).toEqual([entity]);
    const over = await store
      .save([{ namespace: ns, changeType: "set", entityType: "t", entityId: "b", entity: `${entity}x` }])
      .catch((e: unknown) => e);
    expect(isStatelogError(over, ErrorCode.TooLarge), String(over)).toBe(true);
    await store.destroy();
  });

  it("the builder of NatsKvRepository builds with the server's limit and stores an aggregate of it", async () => {
    const repo = await NatsKvRepository.builder<{ id: string; pad: string }>()
      .client(small)
      .bucketName(uniqueBucket("dp_repo"))
      .aggregateType("Order")
      .history(20)
      .build();
    expect(repo.maxValueBytes).toBe(ONE_MIB - REPOSITORY_ENVELOPE_BYTES);
    const pad = "x".repeat(repo.maxValueBytes - 100);
    expect((await repo.save({ id: "o1", pad })).version).toBe(1);
    expect((await repo.load("o1"))?.pad).toBe(pad);
  });

  it("the event store and the read-model store also follow the server", async () => {
    const events = await NatsEventStore.open({ client: small, stream: uniqueBucket("DP_EV") });
    const models = await NatsReadModelStore.open({ client: small, bucket: uniqueBucket("dp_rm") });
    try {
      expect(models.maxValueBytes).toBe(ONE_MIB - READ_MODEL_ENVELOPE_BYTES);
      const refused = await NatsEventStore.open({
        client: small,
        stream: uniqueBucket("DP_EV2"),
        maxValueBytes: ONE_MIB - EVENT_ENVELOPE_BYTES + 1,
      }).catch((e: unknown) => e);
      expect(isStatelogError(refused, ErrorCode.Configuration), String(refused)).toBe(true);
      const refusedModels = await NatsReadModelStore.open({
        client: small,
        bucket: uniqueBucket("dp_rm2"),
        maxValueBytes: ONE_MIB,
      }).catch((e: unknown) => e);
      expect(isStatelogError(refusedModels, ErrorCode.Configuration), String(refusedModels)).toBe(true);
      // An event of the default limit (the server's max_payload minus the envelope) is appended.
      const data = "x".repeat(ONE_MIB - EVENT_ENVELOPE_BYTES - 2);
      await events.append("s", [createEvent("big", data, { id: "e1" })]);
      expect((await events.readStream("s")).map((e) => e.data)).toEqual([data]);
    } finally {
      await events.close();
      await models.close();
    }
  });

  it("an explicit maxValueBytes the server cannot carry is refused, naming both numbers and the fixes", async () => {
    const [b1, b2, b3] = [uniqueBucket("dp1"), uniqueBucket("dp2"), uniqueBucket("dp3")];
    const error = await NatsKvStore.open({ client: small, bucket: b1, maxValueBytes: ONE_MIB }).catch(
      (e: unknown) => e,
    );
    expect(isStatelogError(error, ErrorCode.Configuration), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain(`maxValueBytes is ${ONE_MIB} bytes`);
    expect(message).toContain(`max_payload is ${ONE_MIB} bytes`);
    expect(message).toContain("max_payload: 2MB");
    expect(message).toContain(`at most ${ONE_MIB - STORE_ENVELOPE_BYTES}`);
    const over = ONE_MIB - STORE_ENVELOPE_BYTES + 1;
    const error2 = await NatsKvStore.open({ client: small, bucket: b2, maxValueBytes: over }).catch((e: unknown) => e);
    expect(isStatelogError(error2, ErrorCode.Configuration), String(error2)).toBe(true);
    const error3 = await NatsKvRepository.builder()
      .client(small)
      .bucketName(b3)
      .aggregateType("T")
      .options({ maxValueBytes: ONE_MIB - REPOSITORY_ENVELOPE_BYTES + 1 })
      .build()
      .catch((e: unknown) => e);
    expect(isStatelogError(error3, ErrorCode.Configuration), String(error3)).toBe(true);
    // Nothing was created by the refused opens.
    const jsm = await jetstreamManager(small);
    const names: string[] = [];
    for await (const n of jsm.streams.names()) names.push(n);
    expect(names.filter((n) => [b1, b2, b3].some((b) => n === `KV_${b}`))).toEqual([]);
  });

  it("opens with the largest explicit limit that fits and exposes it", async () => {
    const store = await NatsKvStore.open({
      client: small,
      bucket: uniqueBucket("dp"),
      maxValueBytes: ONE_MIB - STORE_ENVELOPE_BYTES,
    });
    expect(store.maxValueBytes).toBe(ONE_MIB - STORE_ENVELOPE_BYTES);
    await store.destroy();
  });

  // The Store contract with the defaults on a stock server.
  const smallBucket = uniqueBucket("store_dp");
  describeStoreContract(
    "NatsKvStore (server max_payload 1 MiB, default limit)",
    () => NatsKvStore.open({ client: small, bucket: smallBucket }),
    {
      reopen: async (store: Store) => {
        await store.close();
        return NatsKvStore.open({ client: small, bucket: smallBucket });
      },
      maxValueBytes: ONE_MIB - STORE_ENVELOPE_BYTES,
      propertyRuns: 5,
    },
  );
});
