import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import {
  NatsFeature,
  NatsKvRepository,
  NatsKvRepositoryBuilder,
  NatsSimpleRepository,
  supports,
} from "../../src/nats/index.js";
import { type ContractAggregate, describeRepositoryContract, type RepositoryConfig } from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
let nc2: NatsConnection;
const run = uniqueBucket("repo");
// One bucket per (history, ttl): a bucket's settings are fixed; aggregate types keep tests apart.
const bucketFor = (c: RepositoryConfig) => `${run}_h${c.history}_t${String(c.ttlSeconds).replace(".", "_")}`;

beforeAll(async () => {
  nc = await connectTest("repository-test");
  nc2 = await connectTest("repository-test-2");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
  await nc2?.close();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (error) {
    return isStatelogError(error) ? error.code : `not a statelog error: ${String(error)}`;
  }
  return undefined;
}

describeRepositoryContract(
  "NatsKvRepository",
  (c) =>
    NatsKvRepository.builder<ContractAggregate>()
      .client(nc)
      .bucketName(bucketFor(c))
      .aggregateType(c.aggregateType)
      .history(c.history)
      .ttlSeconds(c.ttlSeconds)
      .build(),
  {
    // The second writer uses its own connection.
    second: (_first, c) => NatsKvRepository.create<ContractAggregate>({ client: nc2, bucketName: bucketFor(c), ...c }),
  },
);

describeRepositoryContract(
  "NatsSimpleRepository",
  (c) => NatsSimpleRepository.open<ContractAggregate>(nc, `${bucketFor(c)}_s`, c.aggregateType, c),
  { second: (_first, c) => NatsSimpleRepository.open<ContractAggregate>(nc2, `${bucketFor(c)}_s`, c.aggregateType, c) },
);

describe("NATS repositories: configuration and server features", () => {
  it("build without a client (or bucket, or type) is a ConfigurationError", async () => {
    expect(await codeOf(new NatsKvRepositoryBuilder().bucketName("b").aggregateType("T").build())).toBe(
      ErrorCode.Configuration,
    );
    expect(await codeOf(NatsKvRepository.builder().client(nc).aggregateType("T").build())).toBe(
      ErrorCode.Configuration,
    );
    expect(await codeOf(NatsKvRepository.builder().client(nc).bucketName("b.c").aggregateType("T").build())).toBe(
      ErrorCode.Configuration,
    );
    expect(
      await codeOf(NatsKvRepository.builder().client(nc).bucketName(`${run}_x`).aggregateType("T").history(65).build()),
    ).toBe(ErrorCode.Configuration);
  });

  it("an existing bucket with other settings is a ConfigurationError, not silently reused", async () => {
    const bucket = `${run}_cfg`;
    await NatsKvRepository.builder().client(nc).bucketName(bucket).aggregateType("T").history(3).build();
    expect(
      await codeOf(NatsKvRepository.builder().client(nc).bucketName(bucket).aggregateType("T").history(5).build()),
    ).toBe(ErrorCode.Configuration);
    expect(
      await codeOf(
        NatsKvRepository.builder().client(nc).bucketName(bucket).aggregateType("T").history(3).ttlSeconds(60).build(),
      ),
    ).toBe(ErrorCode.Configuration);
  });

  it("TTL 0 creates a bucket without max_age (no expiry)", async () => {
    const repo = await NatsKvRepository.builder()
      .client(nc)
      .bucketName(`${run}_ttl0`)
      .aggregateType("T")
      .ttlSeconds(0)
      .build();
    const jsm = await (await import("@nats-io/jetstream")).jetstreamManager(nc);
    expect((await jsm.streams.info(repo.stream)).config.max_age).toBe(0);
  });

  it("per-save TTL needs nats-server 2.11: refused on older servers, never silently ignored", async () => {
    const build = NatsKvRepository.builder<ContractAggregate>()
      .client(nc)
      .bucketName(`${run}_msgttl`)
      .aggregateType("T")
      .options({ perSaveTtl: true })
      .build();
    if (!supports(nc, NatsFeature.PerMessageTtl)) {
      const error = await build.catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.Unsupported)).toBe(true);
      expect(String((error as Error).message)).toMatch(/2\.11/);
      // And a repository without it refuses a per-save TTL instead of storing forever.
      const plain = await NatsKvRepository.create<ContractAggregate>({
        client: nc,
        bucketName: `${run}_plain`,
        aggregateType: "T",
      });
      expect(await codeOf(plain.save({ id: "a", name: "a", n: 1 }, { ttlSeconds: 1 }))).toBe(ErrorCode.Unsupported);
      expect(await plain.exists("a")).toBe(false);
    } else {
      const repo = await build;
      await repo.save({ id: "a", name: "a", n: 1 }, { ttlSeconds: 1 });
      expect(await repo.exists("a")).toBe(true);
      const deadline = Date.now() + 6000;
      while ((await repo.exists("a")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await repo.exists("a")).toBe(false);
    }
  });
});
