/**
 * Projection benchmarks: catch-up of a projection over 1,000,000 events
 * (in a MemoryEventStore) into 100,000 read models, in events per second,
 * against a plain loop folding the same events with the same `evolve` into
 * a `Map`, measured in the same run. Target: at least 0.5× the loop's rate.
 *
 * The read models go to a Map-based store written here (models kept as
 * given, no copies, an atomic checkpoint): what is measured is the
 * projector, not a store.
 *
 * `npx tsx bench/projections.ts [--quick]`, or `npm run bench -- projections`.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createEvent, type RecordedEvent } from "../src/events/index.js";
import { MemoryEventStore } from "../src/memory/index.js";
import {
  type Projection,
  type ProjectionStatusRecord,
  Projector,
  type Query,
  type QueryResult,
  type ReadModelMetadata,
  type ReadModelStore,
  type ReadModelWrite,
  type StoredReadModel,
} from "../src/read-models/index.js";
import {
  type BenchOptions,
  type BenchResult,
  collectGarbage,
  compare,
  formatMs,
  now,
  RatioKind,
} from "./lib/measure.js";

const SUITE = "projections";

interface Account {
  readonly orders: number;
  readonly total: number;
}
type Placed = { account: string; amount: number };

const evolve = (m: Account | undefined, e: RecordedEvent<Placed>): Account => ({
  orders: (m?.orders ?? 0) + 1,
  total: (m?.total ?? 0) + e.data.amount,
});

const accounts: Projection<Account, Placed> = {
  name: "accounts",
  modelType: "Account",
  handles: ["order.placed"],
  id: (e) => e.data.account,
  evolve,
};

/** A ReadModelStore in a Map, with an atomic checkpoint; keeps models as given (the projector never mutates them). */
class BenchMapStore implements ReadModelStore {
  readonly capabilities = { atomicCheckpoint: true, indexes: false, durable: false };
  readonly models = new Map<string, StoredReadModel>();
  readonly statuses = new Map<string, ProjectionStatusRecord>();

  async save<M>(model: M, metadata: ReadModelMetadata): Promise<number> {
    const key = `${metadata.modelType}\u0000${metadata.id}`;
    const revision = (this.models.get(key)?.revision ?? 0) + 1;
    this.models.set(key, { model, metadata, revision });
    return revision;
  }

  async load<M>(modelType: string, id: string): Promise<StoredReadModel<M> | undefined> {
    return this.models.get(`${modelType}\u0000${id}`) as StoredReadModel<M> | undefined;
  }

  async delete(modelType: string, id: string): Promise<boolean> {
    return this.models.delete(`${modelType}\u0000${id}`);
  }

  async list(modelType: string): Promise<string[]> {
    return [...this.models.values()]
      .filter((m) => m.metadata.modelType === modelType)
      .map((m) => m.metadata.id)
      .sort();
  }

  async query<M>(q: Query): Promise<QueryResult<M>> {
    const items = [...this.models.values()].filter((m) => m.metadata.modelType === q.modelType);
    return { items: items as StoredReadModel<M>[], total: items.length };
  }

  async updateProjectionStatus(record: ProjectionStatusRecord): Promise<void> {
    this.statuses.set(record.name, record);
  }

  async getProjectionStatus(name: string): Promise<ProjectionStatusRecord | undefined> {
    return this.statuses.get(name);
  }

  async saveWithCheckpoint(writes: readonly ReadModelWrite[], status: ProjectionStatusRecord): Promise<number[]> {
    const out = writes.map((w) => {
      const key = `${w.modelType}\u0000${w.id}`;
      if (w.model === null) {
        this.models.delete(key);
        return 0;
      }
      const revision = w.expectedRevision + 1;
      this.models.set(key, { model: w.model, metadata: w.metadata, revision });
      return revision;
    });
    this.statuses.set(status.name, status);
    return out;
  }

  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}

/** `events` order events for `models` accounts over 1,000 streams, appended 1,000 at a time. */
async function fill(events: number, models: number): Promise<MemoryEventStore> {
  const store = new MemoryEventStore({ maxEventsPerStream: 0, maxStreams: 0 });
  const batch = 1000;
  for (let i = 0; i < events; i += batch) {
    const n = Math.min(batch, events - i);
    await store.append(
      `orders-${(i / batch) % 1000}`,
      Array.from({ length: n }, (_, j) => {
        const k = i + j;
        return createEvent("order.placed", { account: `acc-${(k * 7919) % models}`, amount: k % 97 });
      }),
    );
  }
  return store;
}

/** Every event of `store`, in global order (what the plain loop folds). */
async function everyEvent(store: MemoryEventStore): Promise<RecordedEvent<Placed>[]> {
  const out: RecordedEvent<Placed>[] = [];
  for (const s of await store.getStreams())
    out.push(...((await store.readStream(s.streamId)) as RecordedEvent<Placed>[]));
  return out.sort((a, b) => a.globalPosition - b.globalPosition);
}

/** One catch-up of a fresh projector from the first event; returns ms and checks the result. */
async function catchUp(eventStore: MemoryEventStore, models: number): Promise<number> {
  const readModels = new BenchMapStore();
  await collectGarbage();
  const start = now();
  const projector = await Projector.open({ eventStore, readModels, projections: [accounts] });
  await projector.waitForCatchUp();
  const ms = now() - start;
  await projector.close();
  if (readModels.models.size !== models) throw new Error(`${readModels.models.size} models, expected ${models}`);
  return ms;
}

/** The baseline: the same events folded with the same `evolve` into a Map, in a plain loop. */
async function plainLoop(events: readonly RecordedEvent<Placed>[], models: number): Promise<number> {
  await collectGarbage();
  const start = now();
  const map = new Map<string, Account>();
  for (const e of events) {
    if (e.type !== "order.placed") continue;
    const id = e.data.account;
    map.set(id, evolve(map.get(id), e));
  }
  const ms = now() - start;
  if (map.size !== models) throw new Error(`${map.size} models, expected ${models}`);
  return ms;
}

/** Runs the projection benchmarks; returns their rows. */
export async function runProjectionBenchmarks(options: Partial<BenchOptions> = {}): Promise<BenchResult[]> {
  const quick = options.quick ?? process.argv.includes("--quick");
  const events = quick ? 50_000 : 1_000_000;
  const models = quick ? 5_000 : 100_000;
  const repetitions = quick ? 1 : 3;
  let t = now();
  const store = await fill(events, models);
  const all = await everyEvent(store);
  console.log(`${events.toLocaleString("en-US")} events in a MemoryEventStore in ${formatMs(now() - t)}`);
  const subject: number[] = [];
  const baseline: number[] = [];
  // Warm-up (JIT), then the two interleaved: the machine is shared and noisy.
  await catchUp(store, models);
  await plainLoop(all, models);
  for (let i = 0; i < repetitions; i++) {
    options.signal?.throwIfAborted();
    t = await catchUp(store, models);
    subject.push(t);
    baseline.push(await plainLoop(all, models));
    console.log(
      `catch-up ${i + 1}/${repetitions}: projector ${formatMs(t)}, plain loop ${formatMs(baseline.at(-1) as number)}`,
    );
  }
  await store.close();
  return [
    compare(
      {
        suite: SUITE,
        operation: `projection catch-up, ${events.toLocaleString("en-US")} events into ${models.toLocaleString("en-US")} models`,
        subject: "Projector (memory)",
        baseline: "plain loop into a Map",
        baselineDetail:
          "the same events, already in an array, folded with the same evolve into a Map (no checkpoint, no status)",
        units: events,
        unit: "events",
        ratioKind: RatioKind.Speedup,
        target: 0.5,
        note: "MemoryEventStore's global subscription into a Map-based read-model store with an atomic checkpoint (no copies), default batchSize",
      },
      subject,
      baseline,
    ),
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await runProjectionBenchmarks();
  const { table } = await import("./lib/measure.js");
  console.log(table(rows));
}
