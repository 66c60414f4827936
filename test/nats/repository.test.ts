import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/core/errors.js";
import { NatsKvRepository, NatsSimpleRepository } from "../../src/nats/index.js";
import { NatsFeature, supports } from "../../src/nats/server.js";
import { expectCode } from "../../src/testing/assert.js";
import {
  type ContractAggregate,
  describeRepositoryContract,
  type RepositoryFactoryOptions,
} from "../../src/testing/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
let nc2: NatsConnection;
const run = uniqueBucket("repo");
// One bucket per (history, ttl): a bucket's settings are fixed; aggregate types keep tests apart.
const bucketFor = (c: RepositoryFactoryOptions) => `${run}_h${c.history}_t${String(c.ttlSeconds).replace(".", "_")}`;

beforeAll(async () => {
  nc = await connectTest("repository-test");
  nc2 = await connectTest("repository-test-2");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
  await nc2?.close();
});

/** The bucket stream's `max_age`, in nanoseconds (0 = messages never expire). */
async function maxAgeOf(repo: { readonly stream: string }): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(repo.stream)).config.max_age;
}

/**
 * The backend check of the contract's TTL tests: a repository the suite opens
 * has a bucket whose `max_age` is its `ttlSeconds` (so "TTL 0 means no
 * expiry" also proves the bucket has `max_age` 0, not only that an aggregate
 * outlived a short wait).
 */
function checked<R extends NatsKvRepository<ContractAggregate>>(
  open: (c: RepositoryFactoryOptions) => Promise<R>,
): (c: RepositoryFactoryOptions) => Promise<R> {
  return async (c) => {
    const repo = await open(c);
    expect(await maxAgeOf(repo), `max_age of ${repo.stream} (ttlSeconds ${c.ttlSeconds})`).toBe(c.ttlSeconds * 1e9);
    return repo;
  };
}

describeRepositoryContract(
  "NatsKvRepository",
  checked((c) =>
    NatsKvRepository.builder<ContractAggregate>()
      .client(nc)
      .bucketName(bucketFor(c))
      .aggregateType(c.aggregateType)
      .history(c.history)
      .ttlSeconds(c.ttlSeconds)
      .build(),
  ),
  {
    // The second writer uses its own connection.
    second: (_first, c) => NatsKvRepository.open<ContractAggregate>({ client: nc2, bucket: bucketFor(c), ...c }),
  },
);

describeRepositoryContract(
  "NatsSimpleRepository",
  checked((c) => NatsSimpleRepository.open<ContractAggregate>({ ...c, client: nc, bucket: `${bucketFor(c)}_s` })),
  {
    second: (_first, c) =>
      NatsSimpleRepository.open<ContractAggregate>({ ...c, client: nc2, bucket: `${bucketFor(c)}_s` }),
  },
);

describe("NATS repositories: configuration and server features", () => {
  it("build without a client (or bucket, or type) is a ConfigurationError", async () => {
    await expectCode(NatsKvRepository.builder().bucketName("b").aggregateType("T").build(), ErrorCode.Configuration);
    await expectCode(NatsKvRepository.builder().client(nc).aggregateType("T").build(), ErrorCode.Configuration);
    await expectCode(
      NatsKvRepository.builder().client(nc).bucketName("b.c").aggregateType("T").build(),
      ErrorCode.Configuration,
    );
    await expectCode(
      NatsKvRepository.builder().client(nc).bucketName(`${run}_x`).aggregateType("T").history(65).build(),
      ErrorCode.Configuration,
    );
  });

  it("an existing bucket with other settings is a ConfigurationError, not silently reused", async () => {
    const bucket = `${run}_cfg`;
    await NatsKvRepository.builder().client(nc).bucketName(bucket).aggregateType("T").history(3).build();
    await expectCode(
      NatsKvRepository.builder().client(nc).bucketName(bucket).aggregateType("T").history(5).build(),
      ErrorCode.Configuration,
    );
    await expectCode(
      NatsKvRepository.builder().client(nc).bucketName(bucket).aggregateType("T").history(3).ttlSeconds(60).build(),
      ErrorCode.Configuration,
    );
  });

  it("TTL 0 (or none) creates a bucket without max_age (no expiry); a TTL sets max_age", async () => {
    const opened: [string, NatsKvRepository<ContractAggregate>][] = [
      [
        "builder ttlSeconds(0)",
        await NatsKvRepository.builder<ContractAggregate>()
          .client(nc)
          .bucketName(`${run}_ttl0`)
          .aggregateType("T")
          .ttlSeconds(0)
          .build(),
      ],
      [
        "builder, no TTL",
        await NatsKvRepository.builder<ContractAggregate>()
          .client(nc)
          .bucketName(`${run}_ttl0b`)
          .aggregateType("T")
          .build(),
      ],
      [
        "open ttlSeconds 0",
        await NatsKvRepository.open<ContractAggregate>({
          client: nc,
          bucket: `${run}_ttl0c`,
          aggregateType: "T",
          ttlSeconds: 0,
        }),
      ],
      [
        "simple, no TTL",
        await NatsSimpleRepository.open<ContractAggregate>({ client: nc, bucket: `${run}_ttl0s`, aggregateType: "T" }),
      ],
    ];
    for (const [how, repo] of opened) expect(await maxAgeOf(repo), how).toBe(0);
    // The probe can see a TTL: the same call on a bucket with one is not 0.
    const expiring = await NatsSimpleRepository.open<ContractAggregate>({
      client: nc,
      bucket: `${run}_ttl90`,
      aggregateType: "T",
      ttlSeconds: 90,
    });
    expect(await maxAgeOf(expiring)).toBe(90e9);
    await Promise.all([...opened.map(([, r]) => r.close()), expiring.close()]);
  });

  it("per-save TTL needs nats-server 2.11: refused on older servers, never silently ignored", async () => {
    const build = NatsKvRepository.builder<ContractAggregate>()
      .client(nc)
      .bucketName(`${run}_msgttl`)
      .aggregateType("T")
      .options({ perSaveTtl: true })
      .build();
    if (!supports(nc, NatsFeature.PerMessageTtl)) {
      const error = await expectCode(build, ErrorCode.Unsupported);
      expect(String((error as Error).message)).toMatch(/2\.11/);
      // And a repository without it refuses a per-save TTL instead of storing forever.
      const plain = await NatsKvRepository.open<ContractAggregate>({
        client: nc,
        bucket: `${run}_plain`,
        aggregateType: "T",
      });
      await expectCode(plain.save({ id: "a", name: "a", n: 1 }, { ttlSeconds: 1 }), ErrorCode.Unsupported);
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

describe("NATS repositories: damaged records", () => {
  it("a record that is not one statelog wrote is a CorruptionError from load, history and list", async () => {
    const bucket = uniqueBucket("damaged");
    const repo = await NatsKvRepository.open<{ id: string }>({ client: nc, bucket, aggregateType: "A", history: 5 });
    const kv = await new Kvm(nc).open(bucket);
    const damaged: Record<string, string> = {
      // The head of a record as the repository writes it, then an aggregate that is not JSON.
      badjson: '{"version":1,"savedAt":"2020-01-01T00:00:00.000Z","aggregate":oops}',
      extra: '{"version":1,"savedAt":"2020-01-01T00:00:00.000Z","aggregate":{"id":"extra"},"x":1}',
      badtime: '{"version":1,"savedAt":"nope","aggregate":{"id":"badtime"}}',
    };
    for (const [id, value] of Object.entries(damaged)) {
      await kv.put(`A.${id}`, value);
      await expectCode(repo.loadVersioned(id), ErrorCode.Corruption);
      await expectCode(repo.history(id), ErrorCode.Corruption);
      // A list returns aggregates only: it fails on a damaged aggregate, not on a damaged savedAt.
      if (id === "badtime") expect((await repo.list()).items).toEqual([{ id: "badtime" }]);
      else await expectCode(repo.list(), ErrorCode.Corruption);
      // A damaged record can still be written over (a save needs only its version) and deleted.
      expect((await repo.save({ id })).version).toBe(2);
      expect((await repo.loadVersioned(id))?.aggregate).toEqual({ id });
      expect(await repo.delete(id)).toBe(true);
      await kv.purge(`A.${id}`);
    }
    await repo.save({ id: "fine" });
    expect((await repo.list()).items).toEqual([{ id: "fine" }]);
    await repo.close();
  });
});

describe("NATS repositories: per-save TTL bounds", () => {
  it("a per-save ttlSeconds beyond what the server's TTL holds is a ValidationError, nothing written", async () => {
    const repo = await NatsKvRepository.open<{ id: string }>({
      client: nc,
      bucket: uniqueBucket("ttl_bound"),
      aggregateType: "A",
    });
    await expectCode(repo.save({ id: "a" }, { ttlSeconds: 1e10 }), ErrorCode.Validation);
    expect(await repo.exists("a")).toBe(false);
    await repo.close();
  });
});
