/**
 * Single-key reads of R3 buckets while the bucket stream's leader is
 * elected anew: on a 3-node cluster, the leader is SIGKILLed and loads run
 * at once, one after another, until another leader is known. While there
 * is none, nobody answers a get (nats-server 2.9 lets it time out): each
 * load must still resolve with the last acknowledged value, its get asked
 * again (`retryingRead` in src/nats/reader.ts) instead of failing with
 * `UnavailableError`. The killed node is restarted after each test.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsKvRepository, NatsKvSnapshotStore, NatsReadModelStore } from "../../src/nats/index.js";
import { replicatedOnAnyServer, startCluster, type TestNatsCluster } from "./cluster.js";

let cluster: TestNatsCluster;
const connections: NatsConnection[] = [];
let admin: NatsConnection;
let repo: NatsKvRepository<{ id: string; n: number }>;
let models: NatsReadModelStore;
let snapshots: NatsKvSnapshotStore;

beforeAll(async () => {
  cluster = await startCluster({ name: "statelog-read-election" });
  const options = { servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5_000 };
  const client = await connect({ ...options, name: "read-election-client" });
  admin = await connect({ ...options, name: "read-election-admin" });
  connections.push(client, admin);
  // Created while all three nodes are up (an R3 bucket needs three peers).
  repo = await NatsKvRepository.open(
    replicatedOnAnyServer({ client, bucket: "election_repo", aggregateType: "acct", replicas: 3 }),
  );
  models = await NatsReadModelStore.open(replicatedOnAnyServer({ client, bucket: "election_models", replicas: 3 }));
  snapshots = await NatsKvSnapshotStore.open(
    replicatedOnAnyServer({ client, bucket: "election_snapshots", replicas: 3 }),
  );
}, 120_000);
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  await cluster?.stop();
});

/** The stream's leader and its followers as the cluster reports them now (nothing while it does not answer). */
async function placement(stream: string): Promise<{ leader?: string; current: number } | undefined> {
  try {
    const info = await (await jetstreamManager(admin)).streams.info(stream);
    const replicas = info.cluster?.replicas ?? [];
    return { leader: info.cluster?.leader, current: replicas.filter((r) => r.current && !r.offline).length };
  } catch {
    return undefined;
  }
}

/**
 * Kills the leader of `stream` with SIGKILL once all three peers are
 * current, then runs `load` at once and again until another leader is
 * known; restarts the killed node. Returns what each load resolved with.
 */
async function loadsAcrossElection<T>(stream: string, load: () => Promise<T>): Promise<T[]> {
  // A node restarted by the test before may still be catching up: the election needs two voting peers.
  let before = await placement(stream);
  for (let wait = 0; !(before?.leader && before.current === 2) && wait < 150; wait++) {
    await new Promise((r) => setTimeout(r, 200));
    before = await placement(stream);
  }
  expect(before, `${stream}: a leader and two current followers`).toMatchObject({ current: 2 });
  const killed = cluster.nodes.findIndex((n) => n.name === before?.leader);
  expect(killed, `${stream}: its leader ${before?.leader} is one of the nodes`).toBeGreaterThanOrEqual(0);
  await cluster.nodes[killed]?.kill("SIGKILL");
  const loaded: T[] = [];
  try {
    for (;;) {
      loaded.push(await load());
      const now = await placement(stream);
      if (now?.leader !== undefined && now.leader !== before?.leader) break;
    }
  } finally {
    await cluster.start(killed);
  }
  return loaded;
}

describe("NATS single-key reads of an R3 bucket while its stream leader is elected anew", () => {
  it("NatsKvRepository.loadVersioned resolves with the last saved version", { timeout: 90_000 }, async () => {
    for (let n = 1; n <= 3; n++) await repo.save({ id: "a", n });
    const loaded = await loadsAcrossElection(repo.stream, () => repo.loadVersioned("a"));
    for (const v of loaded) expect(v).toMatchObject({ version: 3, aggregate: { id: "a", n: 3 } });
  });

  it("NatsReadModelStore.load resolves with the last saved revision", { timeout: 90_000 }, async () => {
    let revision = 0;
    for (let n = 1; n <= 3; n++) {
      const metadata = {
        id: "m",
        modelType: "Summary",
        schemaVersion: 1,
        lastUpdated: new Date(),
        lastEventPosition: n,
      };
      revision = await models.save({ n }, { ...metadata, metadata: {} });
    }
    const loaded = await loadsAcrossElection(`KV_${models.bucket}`, () => models.load("Summary", "m"));
    for (const m of loaded) expect(m).toMatchObject({ model: { n: 3 }, revision });
  });

  it("NatsKvSnapshotStore.load resolves with the newest saved snapshot", { timeout: 90_000 }, async () => {
    for (let version = 1; version <= 3; version++) {
      await snapshots.save({ streamId: "s", version, snapshotVersion: 1, state: { version }, createdAt: new Date() });
    }
    const loaded = await loadsAcrossElection(`KV_${snapshots.bucket}`, () => snapshots.load("s"));
    for (const s of loaded) expect(s).toMatchObject({ streamId: "s", version: 3, state: { version: 3 } });
  });
});
