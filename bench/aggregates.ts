/**
 * Event-sourced repository benchmarks, ratios measured in one run:
 * - the load of an aggregate with 10,000 events from its newest snapshot
 *   (snapshots every 100 events) vs folding all of them, on memory and file
 *   (and, on file, the first load after the snapshot store was opened,
 *   which reads the snapshot file);
 * - commands per second of `EventSourcedRepository.handle` on the memory
 *   event store vs Emmett's `CommandHandler` over its in-memory event store,
 *   with the same decider and workload;
 * - commands per second on the file event store with fsync vs
 *   better-sqlite3 doing the same read-modify-write of a row per command in
 *   a transaction.
 *
 * Every measurement starts after a full garbage collection; the two sides
 * alternate which runs first; each figure is the median of several rounds
 * after a warm-up. Both sides are checked to reach the same states.
 *
 * `npx tsx bench/aggregates.ts [--quick]`, or `npm run bench -- aggregates`.
 */
import { deepStrictEqual } from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommandHandler, getInMemoryEventStore } from "@event-driven-io/emmett";
import Database from "better-sqlite3";
import type { EventStore } from "../src/events/index.js";
import { FileEventStore, FileSnapshotStore } from "../src/file/index.js";
import { MemoryEventStore, MemorySnapshotStore } from "../src/memory/index.js";
import { EventSourcedRepository, type SnapshotStore } from "../src/repository/index.js";
import {
  type BenchOptions,
  type BenchResult,
  collectGarbage,
  compare,
  RatioKind,
  time,
  withTempDir,
} from "./lib/measure.js";

type Added = { type: "Added"; data: { amount: number } };
type Tally = { count: number; total: number };
const initialState = (): Tally => ({ count: 0, total: 0 });
const evolve = (s: Tally, e: Added): Tally => ({ count: s.count + 1, total: s.total + e.data.amount });
const decide = (s: Tally): Added[] => [{ type: "Added", data: { amount: (s.count % 7) + 1 } }];
/** The state `n` commands leave (what both sides must reach). */
const expectedTally = (n: number): Tally => {
  let s = initialState();
  for (let i = 0; i < n; i++) for (const e of decide(s)) s = evolve(s, e);
  return s;
};

/** Events of the aggregate the load benchmark folds: the figure the targets are defined for. */
const LOAD_EVENTS = 10_000;
const SUITE = "aggregates";

/**
 * `rounds` measurements of each side after `warmup` unmeasured ones, a full
 * GC before each, alternating which side goes first.
 */
async function alternate(
  rounds: number,
  warmup: number,
  subject: () => Promise<number>,
  baseline: () => Promise<number>,
  signal: AbortSignal | undefined,
): Promise<{ subject: number[]; baseline: number[] }> {
  for (let i = 0; i < warmup; i++) {
    await subject();
    await baseline();
  }
  const out = { subject: [] as number[], baseline: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? (["subject", "baseline"] as const) : (["baseline", "subject"] as const)) {
      signal?.throwIfAborted();
      await collectGarbage();
      out[side].push(await (side === "subject" ? subject : baseline)());
    }
  }
  return out;
}

async function openTallies(eventStore: EventStore, snapshots?: SnapshotStore) {
  return EventSourcedRepository.open({
    eventStore,
    ...(snapshots === undefined ? {} : { snapshots, snapshotEvery: 100 }),
    aggregateType: "tally",
    initialState,
    evolve,
  });
}

/**
 * Appends `events` events in batches of 30 (snapshots every 100). The save
 * that reaches `events - 10` takes a snapshot and the last one none, so the
 * newest snapshot is 10 events behind: a load from it folds 10 events.
 */
async function fillAggregate(repo: EventSourcedRepository<Tally, Added>, events: number): Promise<void> {
  const batches: number[] = [];
  for (let n = 0; n < events - 10; n += 30) batches.push(Math.min(30, events - 10 - n));
  batches.push(10);
  let n = 0;
  for (let b = 0; b < batches.length; b++) {
    const count = batches[b] as number;
    const last = b === batches.length - 1;
    await repo.save(
      "a",
      Array.from({ length: count }, (_, i) => ({ type: "Added", data: { amount: ((n + i) % 7) + 1 } }) as Added),
      { createSnapshot: b === batches.length - 2 ? true : last ? false : undefined },
    );
    n += count;
  }
  await repo.flushSnapshots();
}

/**
 * Loads timed together in one sample, on both sides. A snapshot load takes
 * a few µs: with 20 per sample (before) the timer, the awaits around the
 * sample and a stray collection weighed as much as the loads themselves.
 */
const LOADS_PER_SAMPLE = 500;

async function loadRatio(
  subject: string,
  eventStore: EventStore,
  snapshots: SnapshotStore,
  loads: number,
  rounds: number,
  signal: AbortSignal | undefined,
): Promise<BenchResult> {
  await using repo = await openTallies(eventStore, snapshots);
  await fillAggregate(repo, LOAD_EVENTS);
  const fromSnapshot = await repo.load("a");
  const full = await repo.load("a", { useSnapshot: false });
  deepStrictEqual([fromSnapshot.state, fromSnapshot.version], [full.state, full.version]);
  if (fromSnapshot.eventsFolded !== 10) throw new Error(`the load folded ${fromSnapshot.eventsFolded} events, not 10`);
  const many = (useSnapshot: boolean) => () =>
    time(async () => {
      for (let i = 0; i < loads; i++) await repo.load("a", { useSnapshot });
    });
  const samples = await alternate(rounds, 3, many(true), many(false), signal);
  return compare(
    {
      suite: SUITE,
      operation: `load of a ${LOAD_EVENTS.toLocaleString("en-US")}-event aggregate`,
      subject: `${subject}, snapshots every 100`,
      baseline: "folding all events",
      units: loads,
      unit: "loads",
      ratioKind: RatioKind.Speedup,
      target: 20,
      note: `the newest snapshot is at version ${fromSnapshot.snapshotVersionAt}: each load folds ${fromSnapshot.eventsFolded} events after it`,
    },
    samples.subject,
    samples.baseline,
  );
}

/** The first load after the file snapshot store opened: it reads and parses the snapshot file. */
async function coldFileLoadRatio(dir: string, rounds: number, signal: AbortSignal | undefined): Promise<BenchResult> {
  await using eventStore = await FileEventStore.open({
    directory: path.join(dir, "events"),
    maxEventsPerStream: 0,
    snapshotIntervalMs: 0,
  });
  const snapshotDir = path.join(dir, "snapshots");
  {
    await using snapshots = await FileSnapshotStore.open({ directory: snapshotDir });
    await using repo = await openTallies(eventStore, snapshots);
    await fillAggregate(repo, LOAD_EVENTS);
  }
  await using fold = await openTallies(eventStore);
  const cold = async () => {
    await using snapshots = await FileSnapshotStore.open({ directory: snapshotDir });
    await using repo = await openTallies(eventStore, snapshots);
    return await time(() => repo.load("a"));
  };
  const samples = await alternate(rounds, 3, cold, () => time(() => fold.load("a")), signal);
  return compare(
    {
      suite: SUITE,
      operation: `load of a ${LOAD_EVENTS.toLocaleString("en-US")}-event aggregate`,
      subject: "FileEventStore, snapshots every 100, first load after the snapshot store opened",
      baseline: "folding all events",
      units: 1,
      unit: "loads",
      ratioKind: RatioKind.Speedup,
      note: "the snapshot store reads the stream's snapshot file (later loads are served from memory until a save of the stream)",
    },
    samples.subject,
    samples.baseline,
  );
}

async function emmettRatio(
  commands: number,
  aggregates: number,
  rounds: number,
  signal: AbortSignal | undefined,
  target: number | undefined,
): Promise<BenchResult> {
  const expected = Array.from({ length: aggregates }, (_, a) =>
    expectedTally(Math.floor(commands / aggregates) + (a < commands % aggregates ? 1 : 0)),
  );
  const ours = async () => {
    await using eventStore = await MemoryEventStore.open({ maxEventsPerStream: 0, maxStreams: 0 });
    await using repo = await openTallies(eventStore);
    const ms = await time(async () => {
      for (let i = 0; i < commands; i++) await repo.handle(`a${i % aggregates}`, decide);
    });
    for (let a = 0; a < aggregates; a++) deepStrictEqual((await repo.load(`a${a}`)).state, expected[a]);
    return ms;
  };
  const emmett = async () => {
    const store = getInMemoryEventStore();
    const handle = CommandHandler<Tally, Added>({ evolve, initialState, mapToStreamId: (id) => `tally-${id}` });
    const ms = await time(async () => {
      for (let i = 0; i < commands; i++) await handle(store, `a${i % aggregates}`, decide);
    });
    for (let a = 0; a < aggregates; a++) {
      const { state } = await store.aggregateStream(`tally-a${a}`, { evolve, initialState });
      deepStrictEqual(state, expected[a]);
    }
    return ms;
  };
  const samples = await alternate(rounds, 1, ours, emmett, signal);
  const perStream = commands / aggregates;
  return compare(
    {
      suite: SUITE,
      operation: `${commands.toLocaleString("en-US")} commands on ${aggregates.toLocaleString("en-US")} aggregates`,
      subject: "EventSourcedRepository.handle on MemoryEventStore",
      baseline: "Emmett CommandHandler",
      baselineDetail:
        "@event-driven-io/emmett CommandHandler over getInMemoryEventStore, the same evolve and decider, one command at a time",
      units: commands,
      unit: "commands",
      ratioKind: RatioKind.Speedup,
      target,
      note: `streams grow to ${perStream.toLocaleString("en-US")} events: each command folds the events before it (no snapshots on either side)`,
    },
    samples.subject,
    samples.baseline,
  );
}

/** better-sqlite3's read-modify-write of one row per command, in a transaction, fsynced at commit. */
class SqliteTallies {
  readonly #db: Database.Database;
  readonly #command: (id: string) => void;
  readonly #get: Database.Statement;

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = FULL");
    this.#db.exec("CREATE TABLE tallies (id TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL)");
    const get = this.#db.prepare("SELECT version, state FROM tallies WHERE id = ?");
    const put = this.#db.prepare(
      "INSERT INTO tallies (id, version, state) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state",
    );
    this.#get = get;
    const tx = this.#db.transaction((id: string) => {
      const row = get.get(id) as { version: number; state: string } | undefined;
      let state = row === undefined ? initialState() : (JSON.parse(row.state) as Tally);
      const events = decide(state);
      for (const e of events) state = evolve(state, e);
      put.run(id, (row?.version ?? 0) + events.length, JSON.stringify(state));
    });
    // BEGIN IMMEDIATE: the read and the write are one atomic step, as a command is.
    this.#command = (id) => tx.immediate(id);
  }

  command(id: string): void {
    this.#command(id);
  }

  state(id: string): Tally | undefined {
    const row = this.#get.get(id) as { state: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.state) as Tally);
  }

  close(): void {
    this.#db.close();
  }
}

async function fileCommandRatio(
  commands: number,
  aggregates: number,
  rounds: number,
  signal: AbortSignal | undefined,
): Promise<BenchResult> {
  const expected = (a: number) =>
    expectedTally(Math.floor(commands / aggregates) + (a < commands % aggregates ? 1 : 0));
  const ours = () =>
    withTempDir("aggregates-file-commands", async (dir) => {
      await using eventStore = await FileEventStore.open({
        directory: dir,
        sync: "fsync",
        maxEventsPerStream: 0,
        maxStreams: 0,
        snapshotIntervalMs: 0,
      });
      await using repo = await openTallies(eventStore);
      const ms = await time(async () => {
        for (let i = 0; i < commands; i++) await repo.handle(`a${i % aggregates}`, decide);
      });
      for (let a = 0; a < aggregates; a++) deepStrictEqual((await repo.load(`a${a}`)).state, expected(a));
      return ms;
    });
  const sqlite = () =>
    withTempDir("aggregates-sqlite-commands", async (dir) => {
      const db = new SqliteTallies(path.join(dir, "tallies.db"));
      try {
        const ms = await time(() => {
          for (let i = 0; i < commands; i++) db.command(`a${i % aggregates}`);
        });
        for (let a = 0; a < aggregates; a++) deepStrictEqual(db.state(`a${a}`), expected(a));
        return ms;
      } finally {
        db.close();
      }
    });
  const samples = await alternate(rounds, 1, ours, sqlite, signal);
  return compare(
    {
      suite: SUITE,
      operation: `${commands.toLocaleString("en-US")} durable commands on ${aggregates} aggregates`,
      subject: "EventSourcedRepository.handle on FileEventStore (fsync)",
      baseline: "better-sqlite3 (row per aggregate)",
      baselineDetail:
        "better-sqlite3, WAL, synchronous=FULL: per command one BEGIN IMMEDIATE transaction that selects the aggregate's row, runs the same decider and evolve on its JSON state and upserts it",
      units: commands,
      unit: "commands",
      ratioKind: RatioKind.Speedup,
      note: "one command at a time on both sides, each durable (fsynced) before the next starts; statelog appends events, SQLite overwrites a state",
    },
    samples.subject,
    samples.baseline,
  );
}

/** Runs the aggregate benchmarks. */
export async function runAggregateBenchmarks(options: Partial<BenchOptions> = {}): Promise<BenchResult[]> {
  const quick = options.quick ?? process.argv.includes("--quick");
  const signal = options.signal;
  const rounds = quick ? 5 : 15;
  const results: BenchResult[] = [];
  try {
    {
      await using store = await MemoryEventStore.open({ maxEventsPerStream: 0 });
      await using snapshots = await MemorySnapshotStore.open();
      results.push(await loadRatio("MemoryEventStore", store, snapshots, LOADS_PER_SAMPLE, rounds, signal));
    }
    results.push(
      await withTempDir("aggregates", async (dir) => {
        await using store = await FileEventStore.open({
          directory: path.join(dir, "events"),
          maxEventsPerStream: 0,
          snapshotIntervalMs: 0,
        });
        await using snapshots = await FileSnapshotStore.open({ directory: path.join(dir, "snapshots") });
        return await loadRatio("FileEventStore (fsync)", store, snapshots, LOADS_PER_SAMPLE, rounds, signal);
      }),
    );
    results.push(await withTempDir("aggregates-cold", (dir) => coldFileLoadRatio(dir, rounds, signal)));
    results.push(await emmettRatio(20_000, 100, quick ? 3 : 7, signal, 2));
    results.push(await emmettRatio(20_000, 10_000, quick ? 3 : 7, signal, undefined));
    results.push(await fileCommandRatio(quick ? 200 : 1_000, 100, quick ? 3 : 5, signal));
  } catch (error) {
    if (results.length > 0 && typeof error === "object" && error !== null) {
      Object.assign(error, { partialResults: results });
    }
    throw error;
  }
  return results;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const r of await runAggregateBenchmarks()) {
    console.log(
      `${r.operation} — ${r.subject} vs ${r.baseline}: ${r.ratio.toFixed(2)}x${r.target === undefined ? "" : ` (target ${r.target}x: ${r.met ? "met" : "NOT met"})`}`,
    );
  }
}
