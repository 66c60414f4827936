/**
 * Event-sourced repository benchmarks, ratios measured in one run:
 * - the load of an aggregate with 10,000 events from its newest snapshot
 *   (snapshots every 100 events) vs folding all of them, on memory and file;
 * - commands per second of `EventSourcedRepository.handle` on the memory
 *   event store vs Emmett's `CommandHandler` over its in-memory event store,
 *   with the same decider.
 *
 * `npx tsx bench/aggregates.ts [--quick]`, or `npm run bench -- aggregates`.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommandHandler, getInMemoryEventStore } from "@event-driven-io/emmett";
import type { EventStore } from "../src/events/index.js";
import { FileEventStore, FileSnapshotStore } from "../src/file/index.js";
import { MemoryEventStore, MemorySnapshotStore } from "../src/memory/index.js";
import { EventSourcedRepository, type SnapshotStore } from "../src/repository/index.js";
import { type BenchOptions, type BenchResult, compare, RatioKind, sample, time, withTempDir } from "./lib/measure.js";

type Added = { type: "Added"; data: { amount: number } };
type Tally = { count: number; total: number };
const initialState = (): Tally => ({ count: 0, total: 0 });
const evolve = (s: Tally, e: Added): Tally => ({ count: s.count + 1, total: s.total + e.data.amount });
const decide = (s: Tally): Added[] => [{ type: "Added", data: { amount: (s.count % 7) + 1 } }];

async function loadRatio(
  subject: string,
  eventStore: EventStore,
  snapshots: SnapshotStore,
  events: number,
  reps: number,
) {
  await using repo = await EventSourcedRepository.open({
    eventStore,
    snapshots,
    snapshotEvery: 100,
    aggregateType: "tally",
    initialState,
    evolve,
  });
  // Batches of 30: the newest snapshot ends below the last event, so the load folds a few events after it.
  for (let n = 0; n < events; n += 30) {
    const count = Math.min(30, events - n);
    await repo.save(
      "a",
      Array.from({ length: count }, (_, i) => ({ type: "Added", data: { amount: ((n + i) % 7) + 1 } }) as Added),
    );
  }
  await repo.flushSnapshots();
  const fromSnapshot = await sample(reps, () => time(() => repo.load("a")), { warmup: 3 });
  const full = await sample(reps, () => time(() => repo.load("a", { useSnapshot: false })), { warmup: 3 });
  return compare(
    {
      suite: "aggregates",
      operation: `load of a ${events.toLocaleString("en-US")}-event aggregate`,
      subject: `${subject}, snapshots every 100`,
      baseline: "folding all events",
      units: 1,
      unit: "loads",
      ratioKind: RatioKind.Speedup,
      target: 20,
    },
    fromSnapshot,
    full,
  );
}

async function commandRatio(commands: number, aggregates: number, reps: number): Promise<BenchResult> {
  const ours = async () => {
    await using eventStore = await MemoryEventStore.open({ maxEventsPerStream: 0, maxStreams: 0 });
    await using repo = await EventSourcedRepository.open({ eventStore, aggregateType: "tally", initialState, evolve });
    return await time(async () => {
      for (let i = 0; i < commands; i++) await repo.handle(`a${i % aggregates}`, decide);
    });
  };
  const emmett = async () => {
    const store = getInMemoryEventStore();
    const handle = CommandHandler<Tally, Added>({ evolve, initialState, mapToStreamId: (id) => `tally-${id}` });
    return time(async () => {
      for (let i = 0; i < commands; i++) await handle(store, `a${i % aggregates}`, decide);
    });
  };
  const subject = await sample(reps, ours, { warmup: 1 });
  const baseline = await sample(reps, emmett, { warmup: 1 });
  return compare(
    {
      suite: "aggregates",
      operation: `${commands.toLocaleString("en-US")} commands on ${aggregates} aggregates`,
      subject: "EventSourcedRepository.handle on MemoryEventStore",
      baseline: "Emmett CommandHandler",
      baselineDetail: "@event-driven-io/emmett CommandHandler over getInMemoryEventStore, the same evolve and decider",
      units: commands,
      unit: "commands",
      ratioKind: RatioKind.Speedup,
      target: 2,
    },
    subject,
    baseline,
  );
}

/** Runs the aggregate benchmarks. */
export async function runAggregateBenchmarks(options: Partial<BenchOptions> = {}): Promise<BenchResult[]> {
  const quick = options.quick ?? process.argv.includes("--quick");
  const events = quick ? 2_000 : 10_000;
  const reps = quick ? 5 : 20;
  const results: BenchResult[] = [];
  {
    await using store = await MemoryEventStore.open({ maxEventsPerStream: 0 });
    await using snapshots = await MemorySnapshotStore.open();
    results.push(await loadRatio("MemoryEventStore", store, snapshots, events, reps));
  }
  results.push(
    await withTempDir("aggregates", async (dir) => {
      await using store = await FileEventStore.open({
        directory: path.join(dir, "events"),
        maxEventsPerStream: 0,
        snapshotIntervalMs: 0,
      });
      await using snapshots = await FileSnapshotStore.open({ directory: path.join(dir, "snapshots") });
      return await loadRatio("FileEventStore (fsync)", store, snapshots, events, reps);
    }),
  );
  results.push(await commandRatio(quick ? 2_000 : 20_000, 100, quick ? 3 : 5));
  return results;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const r of await runAggregateBenchmarks()) {
    console.log(
      `${r.operation} — ${r.subject} vs ${r.baseline}: ${r.ratio.toFixed(2)}x (target ${r.target}x: ${r.met ? "met" : "NOT met"})`,
    );
  }
}
