/**
 * Whole-cluster crash: while writers save to a KV store, run
 * compare-and-set saves on a repository and append to an event store (all
 * R3), all three nodes are SIGKILLed at once — the closest thing to a
 * power loss a test can do here without a block device that drops unsynced
 * writes. The nodes restart on their store directories; a fresh client
 * counts the acknowledged writes that are gone, the stores that would not
 * load, and the time until a write is acknowledged again. Two crashes
 * in a row per configuration.
 *
 * The configurations: the server's default and, when the installed
 * nats-server knows it (2.10 and later), `jetstream { sync_interval: always }`.
 * The strongest configuration the server offers must lose nothing; the
 * others are measured (their loss is reported, not asserted: see
 * docs/nats.md, "Durability"). The figures go to
 * test-output/reliability/nats-cluster-crash.json.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/types.js";
import { NatsEventStore, NatsKvRepository, NatsKvStore } from "../../src/nats/index.js";
import type { ContractAggregate } from "../../src/testing/index.js";
import { replicatedOnAnyServer, startCluster, type TestNatsCluster } from "./cluster.js";
import { natsServerSyncSettings } from "./nats-server.js";
import { type ReliabilityRow, writeReliabilityFigures } from "./reliability-report.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settings = natsServerSyncSettings();
/** The configurations to crash; the last one is the strongest the installed server offers. */
const CONFIGURATIONS: { name: string; syncInterval?: string }[] = [
  { name: "default" },
  ...(settings.syncInterval ? [{ name: "sync_interval: always", syncInterval: "always" }] : []),
];
const STRONGEST = CONFIGURATIONS.at(-1)?.name;
/** Crashes per configuration (writes resume between them; everything acknowledged is checked at the end). */
const CRASHES = 2;
const rows: ReliabilityRow[] = [];
const clusters: TestNatsCluster[] = [];
const conns: NatsConnection[] = [];

afterAll(async () => {
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await Promise.all(clusters.map((c) => c.stop()));
  if (rows.length > 0) writeReliabilityFigures("nats-cluster-crash", rows);
});

/** Rejects when `promise` has not settled within `ms` (a hung write fails the test). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Retries `attempt` until it resolves or `ms` pass; the last error is thrown then. */
async function retry<T>(attempt: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

describe("NATS cluster: SIGKILL of all three nodes at once during writes", () => {
  it("the installed nats-server's fsync settings are what docs/nats.md says", () => {
    // sync_interval (fsync policy) came with nats-server 2.10.0; 2.9 fsyncs on a timer it does not let you set.
    const [major, minor] = settings.version.split(".").map(Number) as [number, number];
    const has = major > 2 || (major === 2 && minor >= 10);
    expect(settings.syncInterval, `${settings.version}: ${settings.output}`).toBe(has);
    if (!has) expect(settings.output).toMatch(/unknown field "sync_interval"/);
  });

  for (const configuration of CONFIGURATIONS) {
    const strongest = configuration.name === STRONGEST;
    it(`${configuration.name}: ${strongest ? "no acknowledged write is lost" : "acknowledged writes lost are measured"}`, {
      timeout: 120_000,
    }, async () => {
      const cluster = await startCluster({
        name: `crash-${clusters.length}`,
        ...(configuration.syncInterval === undefined ? {} : { syncInterval: configuration.syncInterval }),
      });
      clusters.push(cluster);
      const client = { servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5_000 };
      let stop = false;
      let open: { store: NatsKvStore; repo: NatsKvRepository<ContractAggregate>; events: NatsEventStore };
      const saveAcked: { id: string; n: number }[] = [];
      const casAcked: { id: string; version: number; n: number }[] = [];
      const eventAcked: { position: number; id: string }[] = [];
      const rejected: Record<string, number> = {};
      const reject = (error: unknown) => {
        // A rejection must be an error (typed where statelog wraps it), never a silent success.
        expect(error).toBeInstanceOf(Error);
        expect(String(error)).not.toMatch(/hung/);
        const kind = isStatelogError(error) ? (error as { code: string }).code : (error as Error).name;
        rejected[kind] = (rejected[kind] ?? 0) + 1;
      };
      const saver = async (c: number, w: number) => {
        for (let n = 0; !stop; n++) {
          const id = `c${c}-s${w}-${n}`;
          const change = {
            namespace: "crash",
            changeType: "set" as const,
            entityType: "e",
            entityId: id,
            entity: { n },
          };
          try {
            await within(open.store.save([change]), 30_000, `save ${id}`);
            saveAcked.push({ id, n });
          } catch (error) {
            reject(error);
            await sleep(50);
          }
        }
      };
      const casWriter = async (c: number, w: number) => {
        let round = 0;
        let version = 0;
        for (let n = 0; !stop; n++) {
          if (version >= 40) {
            round++;
            version = 0;
          }
          const id = `c${c}-a${w}-${round}`;
          try {
            const r = await within(open.repo.save({ id, name: id, n }, { expectedVersion: version }), 30_000, id);
            version = r.version;
            casAcked.push({ id, version: r.version, n });
          } catch (error) {
            if (isStatelogError(error, ErrorCode.VersionConflict)) {
              version = Number((error as unknown as { actual: number }).actual);
            } else {
              reject(error);
              await sleep(50);
              const current = await open.repo.loadVersioned(id).catch(() => undefined);
              if (current) version = current.version;
            }
          }
        }
      };
      const appender = async (c: number) => {
        for (let n = 0; !stop; n++) {
          const id = `c${c}-ev-${n}`;
          try {
            const r = await within(open.events.append("orders", [createEvent("placed", { n }, { id })]), 30_000, id);
            eventAcked.push({ position: r.lastPosition, id });
          } catch (error) {
            reject(error);
            await sleep(50);
          }
        }
      };

      const recoveries: number[] = [];
      const ackedPerCrash: number[] = [];
      for (let c = 0; c < CRASHES; c++) {
        const nc = await connect({ ...client, name: `crash-writer-${c}` });
        conns.push(nc);
        // Right after a restart the buckets' streams may still elect their leaders.
        open = {
          store: await retry(() => NatsKvStore.open({ client: nc, bucket: "crash_store", replicas: 3 }), 60_000),
          repo: await retry(
            () =>
              NatsKvRepository.open<ContractAggregate>(
                replicatedOnAnyServer({
                  client: nc,
                  bucket: "crash_repo",
                  aggregateType: "acct",
                  history: 64,
                  replicas: 3,
                }),
              ),
            60_000,
          ),
          events: await retry(
            () => NatsEventStore.open(replicatedOnAnyServer({ client: nc, stream: "CRASH_ES", replicas: 3 })),
            60_000,
          ),
        };
        stop = false;
        const writers = [saver(c, 0), saver(c, 1), casWriter(c, 0), casWriter(c, 1), appender(c)];
        const ackedAtStart = saveAcked.length + casAcked.length + eventAcked.length;
        await sleep(3_000);
        ackedPerCrash.push(saveAcked.length + casAcked.length + eventAcked.length - ackedAtStart);
        // The crash: all three at once (SIGKILL; no node gets to flush anything).
        await Promise.all(cluster.nodes.map((node) => node.kill("SIGKILL")));
        stop = true;

        const restartAt = Date.now();
        // Each node counts as started once it knows the meta leader: bringing every replica of every
        // stream up to date after such a crash can take longer than /healthz is given on a loaded
        // machine (one node's KV_crash_store stayed "not current" for 30 s in CI), and the time
        // until writes are acknowledged again is what this test measures itself (recoveryMs).
        await Promise.all([0, 1, 2].map((i) => cluster.start(i, "meta-leader")));
        // In-flight writes reject (time-outs) or resolve; none may hang. Awaited after the restart: an
        // event append the server acknowledged just before the crash resolves only once the store's
        // index has read it back, which needs a server (see docs/reliability.md).
        await Promise.all(writers);
        await open.events.close().catch(() => undefined);
        await nc.close();
        // Time to recover: until a new save is acknowledged.
        const probe = await connect({ ...client, name: `crash-probe-${c}` });
        conns.push(probe);
        const probeStore = await retry(
          () => NatsKvStore.open({ client: probe, bucket: "crash_store", replicas: 3 }),
          60_000,
        );
        await retry(
          () =>
            probeStore.save([{ namespace: "probe", changeType: "set", entityType: "e", entityId: "p", entity: { c } }]),
          60_000,
        );
        recoveries.push(Date.now() - restartAt);
        await probe.close();
      }
      const recoveryMs = Math.max(...recoveries);
      const check = await connect({ ...client, name: "crash-check" });
      conns.push(check);
      const store2 = await retry(() => NatsKvStore.open({ client: check, bucket: "crash_store", replicas: 3 }), 60_000);

      // Count what is gone. A store that still fails after 30 s of retries "would not load".
      let storesNotLoading = 0;
      const load = async <T>(what: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await retry(what, 30_000);
        } catch {
          storesNotLoading++;
          return undefined;
        }
      };
      const loaded = await load(async () => new Map((await store2.load("crash")).map((c) => [c.entityId, c.entity])));
      const lostSaves = loaded
        ? saveAcked.filter((s) => (loaded.get(s.id) as { n: number } | undefined)?.n !== s.n)
        : saveAcked;
      const histories = await load(async () => {
        const repo2 = await NatsKvRepository.open<ContractAggregate>(
          replicatedOnAnyServer({
            client: check,
            bucket: "crash_repo",
            aggregateType: "acct",
            history: 64,
            replicas: 3,
          }),
        );
        const ids = [...new Set(casAcked.map((a) => a.id))];
        return new Map(await Promise.all(ids.map(async (id) => [id, await repo2.history(id)] as const)));
      });
      const lostCas = histories
        ? casAcked.filter((a) => histories.get(a.id)?.find((h) => h.version === a.version)?.aggregate?.n !== a.n)
        : casAcked;
      const stored = await load(async () => {
        const events2 = await NatsEventStore.open(
          replicatedOnAnyServer({ client: check, stream: "CRASH_ES", replicas: 3 }),
        );
        try {
          return new Map((await events2.readStream("orders")).map((e) => [e.position, e.id]));
        } finally {
          await events2.close();
        }
      });
      const lostEvents = stored ? eventAcked.filter((a) => stored.get(a.position) !== a.id) : eventAcked;

      const acknowledged = saveAcked.length + casAcked.length + eventAcked.length;
      const lost = lostSaves.length + lostCas.length + lostEvents.length;
      rows.push({
        fault: `SIGKILL of all 3 NATS nodes at once during writes (${configuration.name})`,
        injection:
          "kill -9 of the three nats-server processes together after 3 s of writes, then restart on the same store directories",
        count: CRASHES,
        acknowledgedWrites: acknowledged,
        acknowledgedWritesLost: lost,
        storesNotLoading,
        recoveryMs,
        details: {
          natsServer: settings.version,
          configuration: configuration.name,
          ackedPerCrash,
          recoveryMsPerCrash: recoveries,
          lost: { kvSaves: lostSaves.length, casSaves: lostCas.length, eventAppends: lostEvents.length },
          acknowledged: { kvSaves: saveAcked.length, casSaves: casAcked.length, eventAppends: eventAcked.length },
          rejected,
        },
      });
      console.log(
        `[crash] ${configuration.name}: ${acknowledged} acknowledged, ${lost} lost, ` +
          `${storesNotLoading} stores not loading, recovered in ${recoveries.join(", ")} ms`,
      );

      // What holds for every configuration: the writes ran, every store loads, the cluster takes writes again.
      for (const n of ackedPerCrash) expect(n, "writes were acknowledged before each crash").toBeGreaterThan(20);
      expect(storesNotLoading, "stores that would not load").toBe(0);
      if (stored) {
        // The event stream is gap-free from 1, whatever was lost at its end.
        expect([...stored.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: stored.size }, (_, i) => i + 1));
      }
      if (strongest) {
        expect(
          {
            kvSaves: lostSaves.map((s) => s.id),
            casSaves: lostCas.map((a) => `${a.id} v${a.version}`),
            eventAppends: lostEvents.map((e) => e.position),
          },
          // For an event: what the restarted stream holds at its position, and where the stream ends.
          `acknowledged writes lost${lostEvents
            .map(
              (e) =>
                `; event ${e.id} at ${e.position}: stored ${stored?.get(e.position) ?? "nothing"} there, the stream ends at ${stored?.size ?? "?"}`,
            )
            .join("")}`,
        ).toEqual({ kvSaves: [], casSaves: [], eventAppends: [] });
      }
    });
  }
});
