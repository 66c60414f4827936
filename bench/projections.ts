/**
 * Projection benchmarks: catch-up of a projection over 1,000,000 events
 * (in a MemoryEventStore) into 100,000 read models, in events per second,
 * against a plain loop folding the same events with the same `evolve` into
 * a `Map`, measured in the same run. Target: at least 0.5× the loop's rate.
 *
 * The read models go to a MemoryReadModelStore (atomic checkpoints: at the
 * head, and during a catch-up longer than `checkpointIntervalMs` about once
 * a second), so the figure is the projector's and the memory store's together.
 *
 * A second row, reported without a target: the same catch-up into a
 * FileReadModelStore (fsync), against the same plain loop.
 *
 * `npx tsx bench/projections.ts [--quick]`, or `npm run bench -- projections`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createEvent, type RecordedEvent } from "../src/events/index.js";
import { FileReadModelStore } from "../src/file/index.js";
import { MemoryEventStore, MemoryReadModelStore } from "../src/memory/index.js";
import { type Projection, Projector, type ReadModelStore } from "../src/read-models/index.js";
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

/** One catch-up of a fresh projector from the first event into a fresh store; returns ms and checks the result. */
async function catchUp(
  eventStore: MemoryEventStore,
  models: number,
  open: () => Promise<ReadModelStore> = () => MemoryReadModelStore.open(),
): Promise<number> {
  const readModels = await open();
  await collectGarbage();
  const start = now();
  const projector = await Projector.open({ eventStore, readModels, projections: [accounts] });
  await projector.waitForCatchUp();
  const ms = now() - start;
  await projector.close();
  const stored = (await readModels.list("Account")).length;
  await readModels.close();
  if (stored !== models) throw new Error(`${stored} models, expected ${models}`);
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
  const repetitions = quick ? 1 : 5;
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
  // The same catch-up into a FileReadModelStore (fsync), reported only: each run in a fresh directory.
  const fileSubject: number[] = [];
  const fileBaseline: number[] = [];
  const base = await mkdtemp(path.join(os.tmpdir(), "statelog-bench-projections-"));
  try {
    let run = 0;
    const openFile = () => FileReadModelStore.open({ directory: path.join(base, `run-${run++}`) });
    await catchUp(store, models, openFile);
    for (let i = 0; i < repetitions; i++) {
      options.signal?.throwIfAborted();
      t = await catchUp(store, models, openFile);
      fileSubject.push(t);
      fileBaseline.push(await plainLoop(all, models));
      console.log(
        `catch-up into files ${i + 1}/${repetitions}: projector ${formatMs(t)}, plain loop ${formatMs(fileBaseline.at(-1) as number)}`,
      );
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  await store.close();
  const operation = `projection catch-up, ${events.toLocaleString("en-US")} events into ${models.toLocaleString("en-US")} models`;
  const baselineDetail =
    "the same events, already in an array, folded with the same evolve into a Map (no checkpoint, no status)";
  return [
    compare(
      {
        suite: SUITE,
        operation,
        subject: "Projector (MemoryReadModelStore)",
        baseline: "plain loop into a Map",
        baselineDetail,
        units: events,
        unit: "events",
        ratioKind: RatioKind.Speedup,
        target: 0.5,
        note: "MemoryEventStore's global subscription into a MemoryReadModelStore (atomic checkpoints at the head and about once a second during catch-up), default batchSize, maxCachedModels and checkpointIntervalMs",
      },
      subject,
      baseline,
    ),
    compare(
      {
        suite: SUITE,
        operation,
        subject: "Projector (FileReadModelStore)",
        baseline: "plain loop into a Map",
        baselineDetail,
        units: events,
        unit: "events",
        ratioKind: RatioKind.Speedup,
        note: "the same catch-up into a FileReadModelStore (sync fsync, a fresh directory per run): reported, no target",
      },
      fileSubject,
      fileBaseline,
    ),
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await runProjectionBenchmarks();
  const { table } = await import("./lib/measure.js");
  console.log(table(rows));
}
