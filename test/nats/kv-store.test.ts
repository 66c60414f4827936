import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import type { Store } from "../../src/core/store.js";
import { NatsKvStore, STORE_ENVELOPE_BYTES } from "../../src/nats/index.js";
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

// A server with nats-server's default max_payload (1 MiB) cannot carry statelog's default 1 MiB change
// plus its envelope: open refuses with a ConfigurationError naming both numbers; a lower limit works.
describe("NatsKvStore on a server with the default max_payload (1 MiB)", () => {
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

  it("refuses to open with the default maxValueBytes, naming both numbers and the fixes", async () => {
    expect(small.info?.max_payload).toBe(ONE_MIB);
    const error = await NatsKvStore.open({ client: small, bucket: uniqueBucket("dp") }).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.Configuration), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain(`maxValueBytes is ${ONE_MIB} bytes`);
    expect(message).toContain(`max_payload is ${ONE_MIB} bytes`);
    expect(message).toContain("max_payload: 2MB");
    expect(message).toContain(`at most ${ONE_MIB - STORE_ENVELOPE_BYTES}`);
    const over = ONE_MIB - STORE_ENVELOPE_BYTES + 1;
    const error2 = await NatsKvStore.open({ client: small, maxValueBytes: over }).catch((e: unknown) => e);
    expect(isStatelogError(error2, ErrorCode.Configuration), String(error2)).toBe(true);
    // Nothing was created by the refused opens.
    const jsm = await jetstreamManager(small);
    const names: string[] = [];
    for await (const n of jsm.streams.names()) names.push(n);
    expect(names).toEqual([]);
  });

  it("opens with the largest limit that fits and exposes it", async () => {
    const store = await NatsKvStore.open({
      client: small,
      bucket: uniqueBucket("dp"),
      maxValueBytes: ONE_MIB - STORE_ENVELOPE_BYTES,
    });
    expect(store.maxValueBytes).toBe(ONE_MIB - STORE_ENVELOPE_BYTES);
    await store.destroy();
  });

  const smallBucket = uniqueBucket("store_dp");
  const maxValueBytes = ONE_MIB - STORE_ENVELOPE_BYTES;
  describeStoreContract(
    "NatsKvStore (server max_payload 1 MiB)",
    () => NatsKvStore.open({ client: small, bucket: smallBucket, maxValueBytes }),
    {
      reopen: async (store: Store) => {
        await store.close();
        return NatsKvStore.open({ client: small, bucket: smallBucket, maxValueBytes });
      },
      maxValueBytes,
      propertyRuns: 5,
    },
  );
});
