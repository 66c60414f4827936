/**
 * Compare-and-set on replicated buckets and streams: on a nats-server older
 * than `NatsFeature.ReplicatedCompareAndSet` needs, two concurrent writers
 * could both win one, so every class whose writes are compare-and-sets (the
 * repositories, the event store, the read-model store, the snapshot store)
 * refuses at `open` a bucket or stream of more than one replica, asked or
 * found, with an `UnsupportedError`. On a server new enough, they open. The
 * KV store only puts: it opens on a replicated bucket on any server. The
 * cluster tests assert whichever the test server's version calls for.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTarget } from "../../src/cli/targets.js";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import {
  NatsEventStore,
  NatsKvRepository,
  NatsKvSnapshotStore,
  NatsKvStore,
  NatsReadModelStore,
  NatsSimpleRepository,
} from "../../src/nats/index.js";
import {
  atLeast,
  minimumVersion,
  NatsFeature,
  parseServerVersion,
  requireReplicatedCompareAndSet,
  type ServerVersion,
  supports,
} from "../../src/nats/server.js";
import { replicatedOnAnyServer, startCluster, type TestNatsCluster } from "./cluster.js";

const FIXED = minimumVersion(NatsFeature.ReplicatedCompareAndSet);

/** A connection that reports `version` in its INFO: all `requireReplicatedCompareAndSet` reads of it. */
const serverOf = (version: string) => ({ info: { version } }) as unknown as NatsConnection;

const placement = {
  owner: "NatsKvRepository",
  where: 'KV bucket "orders"',
  stream: "KV_orders",
  found: false,
  allowed: false,
};

/** The refusal of `attempt`, which must be an UnsupportedError that says why and what to do. */
function refusal(attempt: () => unknown, version: string): Error {
  let error: unknown;
  try {
    attempt();
  } catch (e) {
    error = e;
  }
  expect(isStatelogError(error, ErrorCode.Unsupported), `expected an UnsupportedError, got ${String(error)}`).toBe(
    true,
  );
  const message = (error as Error).message;
  expect(message).toContain(`nats-server ${version}`);
  expect(message).toMatch(/two concurrent writers could both win a compare-and-set/);
  expect(message).toContain(`a nats-server bug, fixed in ${FIXED.join(".")}`);
  expect(message).toContain(`Upgrade the server to ${FIXED.join(".")} or newer, or use replicas 1`);
  return error as Error;
}

describe("the minimum version of compare-and-set on replicated streams", () => {
  it("is 2.10.19: the first release with both fixes (2.9.21 for concurrent writers, 2.10.19 for create-if-absent)", () => {
    expect(FIXED).toEqual([2, 10, 19]);
  });

  it("compares versions by major, then minor, then patch", () => {
    const cases: [ServerVersion, boolean][] = [
      [[2, 9, 10], false],
      [[2, 9, 21], false],
      [[2, 9, 99], false],
      [[2, 10, 18], false],
      [[2, 10, 19], true],
      [[2, 10, 20], true],
      [[2, 11, 0], true],
      [[3, 0, 0], true],
      [[1, 99, 99], false],
      [[0, 0, 0], false],
    ];
    for (const [have, expected] of cases) expect(atLeast(have, FIXED), have.join(".")).toBe(expected);
    expect(parseServerVersion("2.10.19-beta.2")).toEqual([2, 10, 19]);
    expect(parseServerVersion("v2.9.10")).toEqual([2, 9, 10]);
    expect(parseServerVersion("nonsense")).toEqual([0, 0, 0]);
    expect(supports(serverOf("2.10.19"), NatsFeature.ReplicatedCompareAndSet)).toBe(true);
    expect(supports(serverOf("2.10.18"), NatsFeature.ReplicatedCompareAndSet)).toBe(false);
  });

  it("refuses more than one replica on an older server, asked or found, naming the version and what to do", () => {
    refusal(() => requireReplicatedCompareAndSet(serverOf("2.9.10"), { ...placement, replicas: 3 }), "2.9.10");
    refusal(() => requireReplicatedCompareAndSet(serverOf("2.10.18"), { ...placement, replicas: 2 }), "2.10.18");
    const found = refusal(
      () => requireReplicatedCompareAndSet(serverOf("2.9.21"), { ...placement, replicas: 3, found: true }),
      "2.9.21",
    );
    expect(found.message).toMatch(/^NatsKvRepository: KV bucket "orders" has 3 replicas/);
    expect(found.message).toContain("nats stream edit KV_orders --replicas 1 brings it down to one replica");
  });

  it("accepts one replica on any server, more on a server new enough, and anything with the internal opt-in", () => {
    const accepted = [
      () => requireReplicatedCompareAndSet(serverOf("2.9.10"), { ...placement, replicas: 1 }),
      () => requireReplicatedCompareAndSet(serverOf("2.10.19"), { ...placement, replicas: 3 }),
      () => requireReplicatedCompareAndSet(serverOf("2.12.1"), { ...placement, replicas: 5, found: true }),
      () => requireReplicatedCompareAndSet(serverOf("2.9.10"), { ...placement, replicas: 3, allowed: true }),
    ];
    for (const check of accepted) expect(check).not.toThrow();
  });
});

describe("on a 3-node cluster", () => {
  let cluster: TestNatsCluster;
  let nc: NatsConnection;
  let fixed: boolean;
  beforeAll(async () => {
    cluster = await startCluster({ name: "statelog-replicated-cas" });
    nc = await connect({ servers: cluster.urls, name: "replicated-cas" });
    fixed = supports(nc, NatsFeature.ReplicatedCompareAndSet);
  }, 120_000);
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  async function streamNames(): Promise<string[]> {
    const names: string[] = [];
    for await (const n of (await jetstreamManager(nc)).streams.names()) names.push(n);
    return names;
  }

  /** Opens with `open`: refused (and nothing created) on an older server, opened on a newer one. */
  async function refusedIffOlder(
    open: () => Promise<{ close(): Promise<void> }>,
    stream: string,
    created: boolean,
  ): Promise<void> {
    const outcome = await open().then(
      async (opened) => {
        await opened.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    if (fixed) {
      expect(outcome, `nats-server ${nc.info?.version} has the fix: open must succeed`).toBeUndefined();
      const info = await (await jetstreamManager(nc)).streams.info(stream);
      expect(info.config.num_replicas).toBe(3);
      return;
    }
    expect(
      isStatelogError(outcome, ErrorCode.Unsupported),
      `expected an UnsupportedError, got ${String(outcome)}`,
    ).toBe(true);
    const message = (outcome as Error).message;
    expect(message).toContain(`nats-server ${nc.info?.version}`);
    expect(message).toContain(`fixed in ${FIXED.join(".")}`);
    expect(message).toMatch(/could both win a compare-and-set/);
    expect(message).toMatch(/or use replicas 1/);
    if (created) expect(message).toContain(`nats stream edit ${stream} --replicas 1`);
    // Asked for: refused before anything was created; found: left as it was.
    expect((await streamNames()).includes(stream)).toBe(created);
  }

  const affected: {
    name: string;
    stream: (name: string) => string;
    open: (client: NatsConnection, name: string, replicas?: number) => Promise<{ close(): Promise<void> }>;
  }[] = [
    {
      name: "NatsKvRepository",
      stream: (b) => `KV_${b}`,
      open: (client, bucket, replicas) =>
        NatsKvRepository.open({ client, bucket, aggregateType: "acct", ...(replicas ? { replicas } : {}) }),
    },
    {
      name: "NatsSimpleRepository",
      stream: (b) => `KV_${b}`,
      open: (client, bucket, replicas) =>
        NatsSimpleRepository.open({ client, bucket, aggregateType: "acct", ...(replicas ? { replicas } : {}) }),
    },
    {
      name: "NatsEventStore",
      stream: (s) => s,
      open: (client, stream, replicas) => NatsEventStore.open({ client, stream, ...(replicas ? { replicas } : {}) }),
    },
    {
      name: "NatsReadModelStore",
      stream: (b) => `KV_${b}`,
      open: (client, bucket, replicas) =>
        NatsReadModelStore.open({ client, bucket, ...(replicas ? { replicas } : {}) }),
    },
    {
      name: "NatsKvSnapshotStore",
      stream: (b) => `KV_${b}`,
      open: (client, bucket, replicas) =>
        NatsKvSnapshotStore.open({ client, bucket, ...(replicas ? { replicas } : {}) }),
    },
  ];

  for (const [i, c] of affected.entries()) {
    it(`${c.name} with replicas 3: refused iff the server is older than the fix`, { timeout: 60_000 }, async () => {
      const name = `asked_${i}`;
      await refusedIffOlder(() => c.open(nc, name, 3), c.stream(name), false);
    });

    it(`${c.name} on an existing R3 bucket or stream: refused iff the server is older`, {
      timeout: 60_000,
    }, async () => {
      const name = `found_${i}`;
      // Made with the internal opt-in: what another tool, or an older statelog, left.
      await (await openWithOptIn(c.name, name)).close();
      expect((await (await jetstreamManager(nc)).streams.info(c.stream(name))).config.num_replicas).toBe(3);
      // Without `replicas`: the default, 1, asks for nothing; the bucket or stream found has three.
      await refusedIffOlder(() => c.open(nc, name), c.stream(name), true);
    });
  }

  /** Opens `name` with replicas 3 and the internal opt-in. */
  function openWithOptIn(owner: string, name: string): Promise<{ close(): Promise<void> }> {
    const r3 = { client: nc, replicas: 3 };
    switch (owner) {
      case "NatsKvRepository":
      case "NatsSimpleRepository":
        return NatsKvRepository.open(replicatedOnAnyServer({ ...r3, bucket: name, aggregateType: "acct" }));
      case "NatsEventStore":
        return NatsEventStore.open(replicatedOnAnyServer({ ...r3, stream: name }));
      case "NatsReadModelStore":
        return NatsReadModelStore.open(replicatedOnAnyServer({ ...r3, bucket: name }));
      default:
        return NatsKvSnapshotStore.open(replicatedOnAnyServer({ ...r3, bucket: name }));
    }
  }

  it("the internal opt-in opens each on R3 whatever the version", { timeout: 60_000 }, async () => {
    for (const c of affected) {
      const name = `opt_in_${c.name}`;
      const opened = await openWithOptIn(c.name, name);
      await opened.close();
      expect((await (await jetstreamManager(nc)).streams.info(c.stream(name))).config.num_replicas).toBe(3);
    }
  });

  it("the command line opens an R3 event stream and read-model bucket on any server (it only reads them)", {
    timeout: 60_000,
  }, async () => {
    const events = await NatsEventStore.open(replicatedOnAnyServer({ client: nc, replicas: 3, stream: "cli_events" }));
    await events.append("order-1", [{ id: "e1", type: "placed", data: { n: 1 }, timestamp: new Date() }]);
    await events.close();
    await (await openWithOptIn("NatsReadModelStore", "cli_models")).close();
    const hosts = cluster.urls.map((u) => u.slice("nats://".length)).join(",");
    await using eventsTarget = await openTarget(`nats+events://${hosts}/cli_events`);
    expect((await eventsTarget.eventStore?.readStream("order-1"))?.map((e) => e.id)).toEqual(["e1"]);
    await using modelsTarget = await openTarget(`nats+models://${hosts}/cli_models`);
    expect(await modelsTarget.readModels?.list("Order")).toEqual([]);
  });

  it("NatsKvStore (puts only) opens on R3 buckets, asked or found, on any server", { timeout: 60_000 }, async () => {
    const store = await NatsKvStore.open({ client: nc, bucket: "kv_asked", replicas: 3 });
    await store.save([{ namespace: "n", changeType: "set", entityType: "t", entityId: "a", entity: { a: 1 } }]);
    await store.close();
    await new Kvm(nc).create("kv_found", { replicas: 3 });
    const found = await NatsKvStore.open({ client: nc, bucket: "kv_found" });
    await found.close();
    expect((await (await jetstreamManager(nc)).streams.info("KV_kv_found")).config.num_replicas).toBe(3);
  });
});
