/**
 * Fault test: a 3-node NATS cluster on loopback ports with an R3 KV bucket
 * and an R3 stream. While writers run compare-and-set updates (repository),
 * store saves and expected-sequence appends, the stream leader is killed
 * with SIGKILL. Right after it restarts every acknowledged write is
 * present, versions and sequences strictly increase, and every write
 * either resolved or rejected (none hangs or vanishes).
 *
 * Restart test: four times, a node (the leader, then a follower) is
 * SIGKILLed, 2,000 changes are saved while it is down, and every kind of
 * read runs in a loop from its restart until 2 s after it is healthy. A
 * read's R1 consumer can land on the restarted peer while it is still
 * catching up; each read must still see every acknowledged write
 * (without the leader check in src/nats/reader.ts this fails in the
 * first cycle or two).
 */
import { jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/types.js";
import { NatsEventStore, NatsKvRepository, NatsKvStore, NatsReadModelStore } from "../../src/nats/index.js";
import { ReadMode, readFiltered } from "../../src/nats/reader.js";
import type { ContractAggregate } from "../../src/testing/index.js";
import { replicatedOnAnyServer, startCluster, type TestNatsCluster } from "./cluster.js";
import type { NatsServerProcess } from "./nats-server.js";

const clusters: TestNatsCluster[] = [];
const conns: NatsConnection[] = [];

afterAll(async () => {
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await Promise.all(clusters.map((c) => c.stop()));
});

/** A 3-node cluster, stopped after the file's tests. */
async function cluster(): Promise<TestNatsCluster> {
  const started = await startCluster({ name: "statelog-fault" });
  clusters.push(started);
  return started;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("NATS cluster: SIGKILL of the leader during writes", () => {
  it("loses no acknowledged write; versions and sequences strictly increase", { timeout: 90_000 }, async () => {
    const { urls, nodes, start } = await cluster();
    const opts = { servers: urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5_000 };
    const nc = await connect({ ...opts, name: "fault-writer" });
    conns.push(nc);

    const repo = await NatsKvRepository.open<ContractAggregate>(
      replicatedOnAnyServer({
        client: nc,
        bucket: "fault_repo",
        aggregateType: "acct",
        history: 64,
        replicas: 3,
      }),
    );
    const store = await NatsKvStore.open({ client: nc, bucket: "fault_store", replicas: 3 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: "FAULT_EVENTS",
      subjects: ["fault.>"],
      num_replicas: 3,
      retention: RetentionPolicy.Limits,
    });
    const js = jetstream(nc, { timeout: 3_000 });
    const eventStore = await NatsEventStore.open(
      replicatedOnAnyServer({ client: nc, stream: "FAULT_ES", replicas: 3 }),
    );

    let stop = false;
    const casAcked: { id: string; version: number; n: number }[] = [];
    const saveAcked: { id: string; n: number }[] = [];
    const appendAcked: { subject: string; seq: number; n: number }[] = [];
    const esAcked: { position: number; id: string }[] = [];
    let rejected = 0;
    const classify = (error: unknown) => {
      // A rejection must be a typed error, never a hang or a silent success.
      expect(isStatelogError(error) || error instanceof Error, String(error)).toBe(true);
      rejected++;
    };

    const casWriter = async (w: number) => {
      let round = 0;
      let id = `w${w}-0`;
      let version = 0;
      for (let n = 0; !stop; n++) {
        if (version >= 50) {
          round++;
          id = `w${w}-${round}`;
          version = 0;
        }
        try {
          const r = await repo.save({ id, name: id, n }, { expectedVersion: version });
          expect(r.version).toBe(version + 1);
          version = r.version;
          casAcked.push({ id, version: r.version, n });
        } catch (error) {
          if (isStatelogError(error, ErrorCode.VersionConflict)) {
            // A timed-out save that did land: continue from the actual version.
            version = Number((error as unknown as { actual: number }).actual);
          } else {
            classify(error);
            const current = await repo.loadVersioned(id).catch(() => undefined);
            if (current) version = current.version;
          }
          await sleep(20);
        }
      }
    };
    const saveWriter = async () => {
      for (let n = 0; !stop; n++) {
        try {
          await store.save([
            { namespace: "fault", changeType: "set", entityType: "e", entityId: `e${n}`, entity: { n } },
          ]);
          saveAcked.push({ id: `e${n}`, n });
        } catch (error) {
          classify(error);
          await sleep(20);
        }
      }
    };
    const appender = async (k: number) => {
      const subject = `fault.s${k}`;
      let last = 0;
      for (let n = 0; !stop; n++) {
        try {
          const ack = await js.publish(subject, JSON.stringify({ k, n }), { expect: { lastSubjectSequence: last } });
          expect(ack.seq).toBeGreaterThan(last);
          last = ack.seq;
          appendAcked.push({ subject, seq: ack.seq, n });
        } catch (error) {
          classify(error);
          await sleep(20);
          const m = await jsm.streams.getMessage("FAULT_EVENTS", { last_by_subj: subject }).catch(() => undefined);
          if (m) last = m.seq;
        }
      }
    };

    const eventAppender = async () => {
      for (let n = 0; !stop; n++) {
        try {
          // A hung append (never resolved nor rejected) fails the test through this time-out.
          const r = await Promise.race([
            eventStore.append("orders", [createEvent("placed", { n }, { id: `ev-${n}` })]),
            sleep(20_000).then(() => Promise.reject(new Error(`append ev-${n} hung`))),
          ]);
          if (esAcked.length > 0)
            expect(r.lastPosition).toBeGreaterThan((esAcked.at(-1) as { position: number }).position);
          esAcked.push({ position: r.lastPosition, id: `ev-${n}` });
        } catch (error) {
          expect(String(error)).not.toMatch(/hung/);
          classify(error);
          await sleep(20);
        }
      }
    };

    const writers = [casWriter(0), casWriter(1), saveWriter(), appender(0), appender(1), eventAppender()];
    await sleep(2_000);
    const info = await jsm.streams.info("KV_fault_repo");
    const leaderName = info.cluster?.leader;
    const leader = nodes.find((s) => s.name === leaderName);
    expect(leader, `leader ${leaderName} is one of ours`).toBeDefined();
    const before = casAcked.length + saveAcked.length + appendAcked.length;
    await leader?.kill("SIGKILL");
    await sleep(8_000);
    stop = true;
    await Promise.all(writers);
    const after = casAcked.length + saveAcked.length + appendAcked.length;
    expect(before).toBeGreaterThan(10);
    expect(after, "writes resumed after the election").toBeGreaterThan(before + 10);

    // The killed node comes back on its store directory; verify with a fresh connection.
    await start(nodes.indexOf(leader as NatsServerProcess));
    const check = await connect({ servers: urls, name: "fault-check" });
    conns.push(check);
    // Verify at once, while the restarted node may still be catching up: every read must still
    // see every acknowledged write (reads are checked against the stream leader: docs/nats.md).
    const store2 = await NatsKvStore.open({ client: check, bucket: "fault_store", replicas: 3 });
    const loaded = new Map((await store2.load("fault")).map((c) => [c.entityId, c.entity]));
    for (const s of saveAcked) expect(loaded.get(s.id), s.id).toEqual({ n: s.n });
    const repo2 = await NatsKvRepository.open<ContractAggregate>(
      replicatedOnAnyServer({
        client: check,
        bucket: "fault_repo",
        aggregateType: "acct",
        history: 64,
        replicas: 3,
      }),
    );
    const byId = new Map<string, { version: number; n: number }[]>();
    for (const a of casAcked) byId.set(a.id, [...(byId.get(a.id) ?? []), a]);
    for (const [id, acks] of byId) {
      const history = await repo2.history(id);
      const versions = history.map((h) => h.version);
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);
      const stored = new Map(history.map((h) => [h.version, h.aggregate?.n]));
      for (const a of acks) expect(stored.get(a.version), `${id} v${a.version}`).toBe(a.n);
    }
    const jsm2 = await jetstreamManager(check);
    const events = new Map<number, { subject: string; n: number }>();
    await readFiltered(
      jetstream(check),
      jsm2,
      "FAULT_EVENTS",
      "fault.>",
      (m) => events.set(m.seq, { subject: m.subject, n: m.json<{ n: number }>().n }),
      { mode: ReadMode.All },
    );
    for (const a of appendAcked)
      expect(events.get(a.seq), `append seq ${a.seq}`).toEqual({ subject: a.subject, n: a.n });
    const events2 = await NatsEventStore.open(
      replicatedOnAnyServer({ client: check, stream: "FAULT_ES", replicas: 3 }),
    );
    const stored = new Map((await events2.readStream("orders")).map((e) => [e.position, e.id]));
    for (const a of esAcked) expect(stored.get(a.position), `event position ${a.position}`).toBe(a.id);
    expect([...stored.keys()]).toEqual(Array.from({ length: stored.size }, (_, i) => i + 1));
    await eventStore.close();
    await events2.close();
    for (const k of [0, 1]) {
      const seqs = appendAcked.filter((a) => a.subject === `fault.s${k}`).map((a) => a.seq);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
    }
    console.log(
      `[fault] acknowledged: ${casAcked.length} CAS updates, ${saveAcked.length} saves, ${appendAcked.length} appends, ` +
        `${esAcked.length} event-store appends; ` +
        `${rejected} rejected during the election; leader ${leaderName} killed`,
    );
  });
});

describe("NATS cluster: reads while a restarted node catches up", () => {
  it("every read during and right after a restart sees every acknowledged write", { timeout: 150_000 }, async () => {
    const { urls, nodes, start } = await cluster();
    const nc = await connect({ servers: urls, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5_000 });
    conns.push(nc);
    const store = await NatsKvStore.open({ client: nc, bucket: "lag_store", replicas: 3 });
    const repo = await NatsKvRepository.open<ContractAggregate>(
      replicatedOnAnyServer({
        client: nc,
        bucket: "lag_repo",
        aggregateType: "acct",
        replicas: 3,
      }),
    );
    const models = await NatsReadModelStore.open(
      replicatedOnAnyServer({ client: nc, bucket: "lag_models", replicas: 3 }),
    );
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    /** Retries a write while the cluster elects a leader (a rejected write is simply not acknowledged). */
    const acked = async <T>(write: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await write();
        } catch (error) {
          if (attempt >= 300) throw error;
          await sleep(100);
        }
      }
    };
    let reads = 0;
    let lagged = 0;
    const cycles = 4;
    for (let c = 0; c < cycles; c++) {
      // Kill the store's stream leader and a follower in turn; write while it is down.
      const leaderName = (await acked(() => jsm.streams.info("KV_lag_store"))).cluster?.leader;
      const victim = nodes.findIndex((n) => (c % 2 === 0 ? n.name === leaderName : n.name !== leaderName));
      await nodes[victim]?.kill("SIGKILL");
      const ns = `c${c}`;
      const ids: string[] = [];
      for (let b = 0; b < 8; b++) {
        const batch = Array.from({ length: 250 }, (_, i) => ({
          namespace: ns,
          changeType: "set" as const,
          entityType: "e",
          entityId: `e${b}-${i}`,
          entity: { c, b, i },
        }));
        await acked(() => store.save(batch));
        ids.push(...batch.map((x) => x.entityId));
      }
      await acked(() => repo.save({ id: `a${c}`, name: `a${c}`, n: c }));
      await acked(() =>
        models.save(
          { c },
          {
            id: `m${c}`,
            modelType: "lag",
            schemaVersion: 1,
            lastUpdated: new Date(),
            lastEventPosition: c,
            metadata: {},
          },
        ),
      );

      const filter = `$KV.lag_store.${ns}.e.>`;
      // Read continuously from the restart until 2 s after the node reports healthy.
      let upAt = 0;
      const restarted = start(victim).then(() => {
        upAt = Date.now();
      });
      while (upAt === 0 || Date.now() - upAt < 2_000) {
        const loaded = await store.load(ns);
        const got = new Set(loaded.map((x) => x.entityId));
        expect(loaded.length, `cycle ${c}: one change per key`).toBe(got.size);
        expect(
          ids.filter((id) => !got.has(id)),
          `cycle ${c}: acknowledged saves missing from a load`,
        ).toEqual([]);
        expect((await repo.list()).items.map((a) => a.id)).toEqual(Array.from({ length: c + 1 }, (_, i) => `a${i}`));
        expect((await repo.loadVersioned(`a${c}`))?.version).toBe(1);
        expect((await models.load<{ c: number }>("lag", `m${c}`))?.model).toEqual({ c });
        expect(await models.list("lag")).toEqual(Array.from({ length: c + 1 }, (_, i) => `m${i}`));
        // The reader itself, in both modes, over the namespace's entities.
        for (const mode of [ReadMode.LastPerSubject, ReadMode.All]) {
          const subjects: string[] = [];
          const seqs: number[] = [];
          const r = await readFiltered(
            js,
            jsm,
            "KV_lag_store",
            filter,
            (m, seq) => {
              subjects.push(m.subject);
              seqs.push(seq);
            },
            { mode },
          );
          // Every key, in stream order, each stored message at most once. A key may come twice only when the read
          // says so (lagged): a batch retried while a node was down wrote some keys again, and a peer behind the
          // leader may still hold the revision the newer one replaced.
          expect(new Set(subjects).size, `cycle ${c}: every key of the namespace (${mode})`).toBe(ids.length);
          expect(seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] as number))).toBe(true);
          if (!r.lagged) expect(subjects.length, `cycle ${c}: one delivery per key (${mode})`).toBe(ids.length);
          if (r.lagged) lagged++;
        }
        reads++;
      }
      await restarted;
    }
    // How often the scenario was hit (a read's consumer on a peer behind the leader): for the log only.
    console.log(
      `[restart] ${cycles} restarts, ${reads} rounds of reads, ${lagged} direct reads found their peer behind the leader`,
    );
    await models.close();
  });
});
