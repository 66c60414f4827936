/**
 * NATS benchmarks (`npx tsx bench/nats.ts [--quick]`, or `npm run bench --
 * nats`) on a local nats-server (started here; `NATS_URL` uses another):
 *  - NatsKvStore: save of 100,000 entities (one `save`) vs the raw
 *    `@nats-io/kv` client putting the same values with the same number of
 *    puts in flight; load of the namespace vs the raw client's full-bucket
 *    read (`kv.watch()` of the last values, parsed);
 *  - NatsKvRepository: save (CAS: read revision + conditional publish) vs
 *    the raw client's `kv.get` + `kv.update(key, value, revision)`, and
 *    load vs `kv.get` + parse, 32 callers in parallel.
 * Target: >= 0.8x the raw client. Figures: docs/performance.md ("NATS").
 *
 * Then, on a 3-node cluster started here (not with `NATS_URL`), an R3
 * bucket: the cost of checking reads against the stream leader
 * (src/nats/reader.ts): `readFiltered` of a large and of a small namespace
 * with the check vs without it (the read path before the check), and a
 * read model's leader-served get vs the KV client's direct get.
 */
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ChangeInput } from "../src/core/change.js";
import { NatsKvRepository, NatsKvStore, NatsReadModelStore } from "../src/nats/index.js";
import { entityKey } from "../src/nats/keys.js";
import { readFiltered } from "../src/nats/reader.js";
import { freePort, type NatsServerProcess, startNatsServer } from "../test/nats/nats-server.js";
import { type BenchOptions, type BenchResult, compare, RatioKind, table, time } from "./lib/measure.js";

const NAMESPACE = "bench";
const IN_FLIGHT = 1024;
const WORKERS = 32;

interface Entity {
  id: string;
  name: string;
  version: number;
  tags: string[];
}

function entities(n: number): Entity[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `e${i}`,
    name: `entity number ${i}`,
    version: 1,
    tags: ["bench", `group-${i % 100}`],
  }));
}

async function rawPutAll(kv: KV, list: Entity[]): Promise<void> {
  const acks: Promise<number>[] = [];
  let head = 0;
  for (const e of list) {
    if (acks.length - head >= IN_FLIGHT) await acks[head++];
    acks.push(kv.put(entityKey(NAMESPACE, "item", e.id), JSON.stringify(e)));
  }
  for (; head < acks.length; head++) await acks[head];
}

async function rawReadAll(kv: KV, expected: number): Promise<number> {
  const out = new Map<string, unknown>();
  if (expected === 0) return 0;
  const iter = await kv.watch();
  for await (const e of iter) {
    out.set(e.key, e.json());
    if (out.size >= expected) break;
  }
  iter.stop();
  return out.size;
}

async function parallel(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function destroy(nc: NatsConnection, bucket: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(`KV_${bucket}`).catch(() => undefined);
}

async function storeRound(nc: NatsConnection, round: number, n: number) {
  const list = entities(n);
  const changes: ChangeInput[] = list.map((e) => ({
    namespace: NAMESPACE,
    changeType: "set",
    entityType: "item",
    entityId: e.id,
    entity: e,
  }));
  const rawBucket = `bench_raw_${round}`;
  const ourBucket = `bench_store_${round}`;
  const kv = await new Kvm(nc).create(rawBucket, { history: 1 });
  const store = await NatsKvStore.open({ client: nc, bucket: ourBucket, maxInFlight: IN_FLIGHT });
  // Alternate who goes first so neither side always runs on a warmer server.
  let rawSave = 0;
  let ourSave = 0;
  if (round % 2 === 1) {
    rawSave = await time(() => rawPutAll(kv, list));
    ourSave = await time(() => store.save(changes));
  } else {
    ourSave = await time(() => store.save(changes));
    rawSave = await time(() => rawPutAll(kv, list));
  }
  let loaded = 0;
  let read = 0;
  const loadOurs = () =>
    time(async () => {
      loaded = (await store.load(NAMESPACE)).length;
    });
  const loadRaw = () =>
    time(async () => {
      read = await rawReadAll(kv, n);
    });
  // The loads alternate who goes first too.
  let rawLoad = 0;
  let ourLoad = 0;
  if (round % 2 === 1) {
    rawLoad = await loadRaw();
    ourLoad = await loadOurs();
  } else {
    ourLoad = await loadOurs();
    rawLoad = await loadRaw();
  }
  if (loaded !== n || read !== n) throw new Error(`bench read ${loaded} / ${read} of ${n} entities`);
  await store.close();
  await destroy(nc, rawBucket);
  await destroy(nc, ourBucket);
  return { rawSave, ourSave, rawLoad, ourLoad };
}

async function repositoryRound(nc: NatsConnection, round: number, n: number) {
  const list = entities(n);
  const rawBucket = `bench_repo_raw_${round}`;
  const ourBucket = `bench_repo_${round}`;
  const kv = await new Kvm(nc).create(rawBucket, { history: 1 });
  const repo = await NatsKvRepository.open<Entity>({ client: nc, bucket: ourBucket, aggregateType: "item" });
  const rawSaveOne = async (e: Entity) => {
    const key = `item.${e.id}`;
    const current = await kv.get(key);
    const value = JSON.stringify({ ...e, version: e.version });
    if (current && current.operation === "PUT") await kv.update(key, value, current.revision);
    else await kv.create(key, value);
  };
  const saveRaw = () => time(() => parallel(n, (i) => rawSaveOne(list[i] as Entity)));
  const saveOurs = () => time(() => parallel(n, (i) => repo.save(list[i] as Entity)));
  const loadOurs = () => time(() => parallel(n, (i) => repo.load(`e${i}`)));
  const loadRaw = () => time(() => parallel(n, async (i) => (await kv.get(`item.e${i}`))?.json()));
  // Alternate who goes first, as in storeRound.
  const first = round % 2 === 1;
  const rawSave = first ? await saveRaw() : 0;
  const ourSave = await saveOurs();
  const rawSave2 = first ? rawSave : await saveRaw();
  const ourLoad = first ? 0 : await loadOurs();
  const rawLoad = await loadRaw();
  const ourLoad2 = first ? await loadOurs() : ourLoad;
  await repo.close();
  await destroy(nc, rawBucket);
  await destroy(nc, ourBucket);
  return { rawSave: rawSave2, ourSave, rawLoad, ourLoad: ourLoad2 };
}

/** Runs the NATS benchmarks, prints a table, and returns the rows. */
export async function runNatsBenchmarks(options: Partial<BenchOptions> = {}): Promise<BenchResult[]> {
  const n = options.quick ? 10_000 : 100_000;
  const repoN = options.quick ? 1_000 : 5_000;
  const rounds = options.quick ? 1 : 3;
  const server = process.env.NATS_URL ? undefined : await startNatsServer({ name: "statelog-bench" });
  const nc = await connect({ servers: process.env.NATS_URL ?? server?.url, name: "statelog-bench" });
  try {
    const s = { rawSave: [] as number[], ourSave: [] as number[], rawLoad: [] as number[], ourLoad: [] as number[] };
    const r = { rawSave: [] as number[], ourSave: [] as number[], rawLoad: [] as number[], ourLoad: [] as number[] };
    for (let round = 1; round <= rounds; round++) {
      options.signal?.throwIfAborted();
      const a = await storeRound(nc, round, n);
      const b = await repositoryRound(nc, round, repoN);
      for (const k of ["rawSave", "ourSave", "rawLoad", "ourLoad"] as const) {
        s[k].push(a[k]);
        r[k].push(b[k]);
      }
    }
    const row = { suite: "nats", ratioKind: RatioKind.Speedup, target: 0.8 } as const;
    const results = [
      compare(
        {
          ...row,
          operation: `save ${n} entities`,
          subject: "NatsKvStore.save",
          baseline: "raw kv.put",
          units: n,
          unit: "entities",
          baselineDetail: `@nats-io/kv put of the same JSON, ${IN_FLIGHT} in flight`,
        },
        s.ourSave,
        s.rawSave,
      ),
      compare(
        {
          ...row,
          operation: `load ${n} entities`,
          subject: "NatsKvStore.load",
          baseline: "raw kv.watch",
          units: n,
          unit: "entities",
          baselineDetail: "@nats-io/kv watch() of the last values, JSON-parsed",
        },
        s.ourLoad,
        s.rawLoad,
      ),
      compare(
        {
          ...row,
          operation: `repository save ${repoN} (${WORKERS} parallel)`,
          subject: "NatsKvRepository.save",
          baseline: "raw kv.get+update",
          units: repoN,
          unit: "saves",
          baselineDetail: "@nats-io/kv get + update(key, value, revision): the same compare-and-set",
        },
        r.ourSave,
        r.rawSave,
      ),
      compare(
        {
          ...row,
          operation: `repository load ${repoN} (${WORKERS} parallel)`,
          subject: "NatsKvRepository.load",
          baseline: "raw kv.get",
          units: repoN,
          unit: "loads",
          baselineDetail: "@nats-io/kv get (direct get) + JSON parse",
        },
        r.ourLoad,
        r.rawLoad,
      ),
    ];
    console.log(`\nNATS (nats-server ${nc.info?.version}, R1 file storage, ${rounds} round(s))`);
    console.log(table(results));
    if (process.env.NATS_URL) return results;
    return [...results, ...(await runNatsClusterBenchmarks(options))];
  } finally {
    await nc.close();
    await server?.stop();
  }
}

/** Three nodes on loopback ports, each with a temporary store directory. */
async function startCluster(): Promise<NatsServerProcess[]> {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const routes = await Promise.all([0, 1, 2].map(() => freePort()));
  const started = await Promise.allSettled(
    [0, 1, 2].map((i) =>
      startNatsServer({
        name: `bench-n${i}`,
        port: ports[i] as number,
        cluster: { name: "statelog-bench", port: routes[i] as number, routes: routes.filter((_, j) => j !== i) },
        readyTimeoutMs: 30_000,
      }),
    ),
  );
  const nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw failed.reason;
  }
  return nodes;
}

/**
 * The cost of checking replicated reads against the stream leader, on a
 * 3-node cluster and R3 buckets: each pair is measured alternately in the
 * same run, the unchecked read (`replicated: false`, the read path before
 * the check) as the baseline.
 */
export async function runNatsClusterBenchmarks(options: Partial<BenchOptions> = {}): Promise<BenchResult[]> {
  const big = options.quick ? 5_000 : 20_000;
  const small = 20;
  const reads = options.quick ? 20 : 100;
  const rounds = options.quick ? 3 : 7;
  const nodes = await startCluster();
  const nc = await connect({ servers: nodes.map((n) => n.url), name: "statelog-bench-cluster" });
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const store = await NatsKvStore.open({ client: nc, bucket: "bench_r3", replicas: 3 });
    const put = (ns: string, n: number) =>
      store.save(
        entities(n).map((e) => ({
          namespace: ns,
          changeType: "set" as const,
          entityType: "item",
          entityId: e.id,
          entity: e,
        })),
      );
    await put("big", big);
    await put("small", small);
    const read = async (ns: string, replicated: boolean, expected: number) => {
      let count = 0;
      await readFiltered(
        js,
        jsm,
        store.stream,
        `$KV.bench_r3.${ns}.>`,
        (m) => {
          m.json();
          count++;
        },
        {
          replicated,
        },
      );
      if (count !== expected) throw new Error(`bench read ${count} of ${expected} entities`);
    };
    const models = await NatsReadModelStore.open({ client: nc, bucket: "bench_r3_models", replicas: 3 });
    const kv = await new Kvm(nc).open("bench_r3_models");
    const meta = (id: string) => ({
      id,
      modelType: "m",
      schemaVersion: 1,
      lastUpdated: new Date(),
      lastEventPosition: 1,
      metadata: {},
    });
    for (let i = 0; i < small; i++) await models.save({ i }, meta(`r${i}`));
    const pairs = {
      big: [[] as number[], [] as number[]],
      small: [[] as number[], [] as number[]],
      get: [[] as number[], [] as number[]],
    };
    for (let round = 0; round < rounds; round++) {
      options.signal?.throwIfAborted();
      for (const checked of round % 2 === 0 ? [true, false] : [false, true]) {
        const k = checked ? 0 : 1;
        pairs.big[k]?.push(await time(() => read("big", checked, big)));
        pairs.small[k]?.push(
          await time(async () => {
            for (let i = 0; i < reads; i++) await read("small", checked, small);
          }),
        );
        pairs.get[k]?.push(
          await time(async () => {
            for (let i = 0; i < reads; i++) {
              if (checked) await models.load("m", `r${i % small}`);
              else (await kv.get(`m.m.r${i % small}`))?.json();
            }
          }),
        );
      }
    }
    const row = { suite: "nats", ratioKind: RatioKind.TimeRatio, target: 1.25 } as const;
    const results = [
      compare(
        {
          ...row,
          operation: `R3 read of ${big} entities`,
          subject: "readFiltered, checked",
          baseline: "unchecked",
          units: big,
          unit: "entities",
          baselineDetail: "readFiltered with replicated: false (the read before the leader check)",
        },
        pairs.big[0] as number[],
        pairs.big[1] as number[],
      ),
      compare(
        {
          ...row,
          operation: `R3 read of ${small} entities, ${reads}x in a row`,
          subject: "readFiltered, checked",
          baseline: "unchecked",
          units: reads,
          unit: "reads",
          baselineDetail: "readFiltered with replicated: false",
        },
        pairs.small[0] as number[],
        pairs.small[1] as number[],
      ),
      compare(
        {
          ...row,
          operation: `R3 read-model get, ${reads}x in a row`,
          subject: "NatsReadModelStore.load",
          baseline: "kv.get",
          units: reads,
          unit: "gets",
          baselineDetail: "@nats-io/kv get: a direct get any replica may answer",
        },
        pairs.get[0] as number[],
        pairs.get[1] as number[],
      ),
    ];
    console.log(`\nNATS cluster (3 nodes, R3 file storage, ${rounds} round(s)): cost of leader-checked reads`);
    console.log(table(results));
    await models.close();
    await store.destroy();
    return results;
  } finally {
    await nc.close();
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runNatsBenchmarks({ quick: process.argv.includes("--quick") });
}
