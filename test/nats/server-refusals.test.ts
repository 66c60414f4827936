/**
 * What the server refuses when `open` creates a bucket or stream, because
 * of the options, is a `ConfigurationError` that names the option, quotes
 * the server and keeps its error as `cause`: subjects that overlap another
 * stream's (`subjectPrefix`, `bucket`), more than one replica on a server
 * that is not clustered (`replicas`), a configuration the server finds
 * invalid. A `subjectPrefix` under `$` (the server's own subjects) is
 * refused by the option check, before anything is created.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { bucketCreation, creationRefusal, isJetStreamApiError } from "../../src/nats/errors.js";
import {
  NatsEventStore,
  NatsKvRepository,
  NatsKvSnapshotStore,
  NatsKvStore,
  NatsReadModelStore,
} from "../../src/nats/index.js";
import { replicatedOnAnyServer } from "./cluster.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("server-refusals");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** The refusal of `opening`: a ConfigurationError matching every pattern, whose cause is the server's error `code`. */
async function refused(opening: Promise<{ close(): Promise<void> }>, code: number, ...patterns: RegExp[]) {
  const error = await opening.then(
    async (opened) => {
      await opened.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(isStatelogError(error, ErrorCode.Configuration), `expected a ConfigurationError, got ${String(error)}`).toBe(
    true,
  );
  for (const p of patterns) expect((error as Error).message).toMatch(p);
  const cause = (error as Error).cause;
  expect(isJetStreamApiError(cause) && cause.code).toBe(code);
}

async function streamNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const n of (await jetstreamManager(nc)).streams.names()) names.push(n);
  return names;
}

describe("NatsEventStore", () => {
  it("subjectPrefix taken by another stream: a ConfigurationError naming subjectPrefix", async () => {
    const prefix = `app.${uniqueBucket("p")}`;
    const first = await NatsEventStore.open({ client: nc, stream: uniqueBucket("ES_A"), subjectPrefix: prefix });
    await first.close();
    const other = uniqueBucket("ES_B");
    await refused(
      NatsEventStore.open({ client: nc, stream: other, subjectPrefix: prefix }),
      10065,
      /^NatsEventStore: the server refused to create JetStream stream "ES_B_[^"]+" for option subjectPrefix "app\./,
      /"subjects overlap with an existing stream"/,
      /use another subjectPrefix/,
    );
    expect(await streamNames()).not.toContain(other);
  });

  it("the default subjectPrefix under another stream's subjects: named too", async () => {
    const stream = uniqueBucket("ES_D");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: uniqueBucket("wide"), subjects: [`statelog.events.${stream}.>`] });
    await refused(
      NatsEventStore.open({ client: nc, stream }),
      10065,
      new RegExp(`option subjectPrefix "statelog\\.events\\.${stream}"`),
    );
  });

  it("replicas 3 on a server that is not clustered: a ConfigurationError naming replicas", async () => {
    const stream = uniqueBucket("ES_R");
    await refused(
      NatsEventStore.open(replicatedOnAnyServer({ client: nc, stream, replicas: 3 })),
      10074,
      /for option replicas \(3\): "replicas > 1 not supported in non-clustered mode"/,
      /use replicas 1/,
    );
    expect(await streamNames()).not.toContain(stream);
  });

  it("a subjectPrefix under $ is refused by the option check, before anything is created", async () => {
    for (const subjectPrefix of ["$JS.API", `$KV.${uniqueBucket("x")}`, "$SYS.x", "$"]) {
      const stream = uniqueBucket("ES_S");
      const error = await NatsEventStore.open({ client: nc, stream, subjectPrefix }).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(isStatelogError(error, ErrorCode.Configuration), `${subjectPrefix}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toMatch(/option subjectPrefix must be .*not starting with "\$"/);
      expect((error as Error).cause).toBeUndefined();
      expect(await streamNames()).not.toContain(stream);
    }
    // "$" inside a token is an ordinary character.
    const fine = await NatsEventStore.open({
      client: nc,
      stream: uniqueBucket("ES_F"),
      subjectPrefix: `a$.${uniqueBucket("b")}`,
    });
    await fine.close();
  });
});

const buckets: { name: string; open: (bucket: string, replicas?: number) => Promise<{ close(): Promise<void> }> }[] = [
  {
    name: "NatsKvStore",
    open: (bucket, replicas) => NatsKvStore.open({ client: nc, bucket, ...(replicas ? { replicas } : {}) }),
  },
  {
    name: "NatsKvRepository",
    open: (bucket, replicas) =>
      NatsKvRepository.open(
        replicatedOnAnyServer({ client: nc, bucket, aggregateType: "acct", ...(replicas ? { replicas } : {}) }),
      ),
  },
  {
    name: "NatsReadModelStore",
    open: (bucket, replicas) =>
      NatsReadModelStore.open(replicatedOnAnyServer({ client: nc, bucket, ...(replicas ? { replicas } : {}) })),
  },
  {
    name: "NatsKvSnapshotStore",
    open: (bucket, replicas) =>
      NatsKvSnapshotStore.open(replicatedOnAnyServer({ client: nc, bucket, ...(replicas ? { replicas } : {}) })),
  },
];

for (const b of buckets) {
  describe(b.name, () => {
    it("a bucket whose subjects another stream holds: a ConfigurationError naming bucket", async () => {
      const bucket = uniqueBucket("kv");
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: uniqueBucket("squatter"), subjects: [`$KV.${bucket}.>`] });
      await refused(
        b.open(bucket),
        10065,
        new RegExp(`^${b.name}: the server refused to create KV bucket "${bucket}" for option bucket "${bucket}"`),
        /"subjects overlap with an existing stream"/,
        /use another bucket/,
      );
      expect(await streamNames()).not.toContain(`KV_${bucket}`);
    });

    it("replicas 3 on a server that is not clustered: a ConfigurationError naming replicas", async () => {
      const bucket = uniqueBucket("kv");
      await refused(
        b.open(bucket, 3),
        10074,
        /for option replicas \(3\): "replicas > 1 not supported in non-clustered mode" \(use replicas 1/,
      );
      expect(await streamNames()).not.toContain(`KV_${bucket}`);
    });
  });
}

describe("creationRefusal", () => {
  /** An error as the JetStream client makes it for an API error reply. */
  const apiError = (code: number, description: string) =>
    Object.assign(new Error(description), { code, apiError: () => ({ err_code: code, description }) });
  const from = bucketCreation("NatsKvStore", "orders", 1);

  it("maps a configuration the server finds invalid: its subjects to their option, the rest to the bucket's", () => {
    const jsApi = creationRefusal(apiError(10052, "subjects overlap with jetstream api"), from) as Error;
    expect(isStatelogError(jsApi, ErrorCode.Configuration)).toBe(true);
    expect(jsApi.message).toMatch(/for option bucket "orders": "subjects overlap with jetstream api"/);
    const other = creationRefusal(apiError(10052, "max age needs to be >= 100ms"), from) as Error;
    expect(isStatelogError(other, ErrorCode.Configuration)).toBe(true);
    expect(other.message).toMatch(/KV bucket "orders" for its options: "max age needs to be >= 100ms"/);
    expect(other.cause).toBeInstanceOf(Error);
  });

  it("leaves other errors as they are", () => {
    for (const e of [apiError(10023, "insufficient resources"), new Error("TIMEOUT"), "text"]) {
      expect(creationRefusal(e, from)).toBe(e);
    }
  });
});
