/**
 * Event-store benchmarks: MemoryEventStore and FileEventStore side by side
 * with Emmett's in-memory event store (`getInMemoryEventStore`) on the same
 * workload, figures as ratios against Emmett measured in the same run:
 * append throughput (batch 1 and batch 100), readStream, subscription
 * fan-out (1 and 100 subscribers); then the reopen time of a
 * 1,000,000-event FileEventStore without and with a snapshot.
 *
 * `npx tsx bench/events.ts [--quick]`, or through `npm run bench`.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getInMemoryEventStore } from "@event-driven-io/emmett";
import { createEvent, type EventInput } from "../src/events/index.js";
import { FileEventStore } from "../src/file/index.js";
import { MemoryEventStore } from "../src/memory/index.js";

/** Options of {@link runEventBenchmarks}. */
export interface EventBenchOptions {
  /** Smaller workloads: a smoke run, not figures to record. @default false (or `--quick` on the command line) */
  quick?: boolean;
}

/** One measured row. */
interface Row {
  readonly name: string;
  readonly store: string;
  readonly ms: number;
  readonly units: number;
}

type Subject = {
  name: string;
  /** Appends `events` to `stream` (one call). */
  append(stream: string, events: EventInput[]): Promise<unknown>;
  readStream(stream: string): Promise<number>;
  /** Starts `n` subscribers on `stream` that resolve after `total` events each. */
  subscribe(stream: string, n: number, total: number): Promise<void>[];
  close(): Promise<void>;
};

const STREAMS = 100;
const CONCURRENCY = 64;

function payload(k: number): EventInput {
  return createEvent(
    "bench.event",
    { k, user: `user-${k % 1000}`, amount: k % 977, tags: ["a", "b"] },
    { id: `e-${k}` },
  );
}

function memorySubject(): Subject {
  const store = new MemoryEventStore({ maxEventsPerStream: 0, maxStreams: 0 });
  return ourSubject("MemoryEventStore", store);
}

async function fileSubject(dir: string, fsync: boolean): Promise<Subject> {
  const store = await FileEventStore.open({
    directory: dir,
    sync: fsync ? "fsync" : "none",
    maxEventsPerStream: 0,
    maxStreams: 0,
    snapshotIntervalMs: 0,
  });
  return ourSubject(fsync ? "FileEventStore (fsync)" : "FileEventStore (no fsync)", store);
}

function ourSubject(name: string, store: MemoryEventStore | FileEventStore): Subject {
  return {
    name,
    append: (s, events) => store.append(s, events),
    readStream: async (s) => (await store.readStream(s)).length,
    subscribe: (s, n, total) =>
      Array.from({ length: n }, async () => {
        let seen = 0;
        for await (const _ of store.subscribe(s)) if (++seen === total) break;
      }),
    close: () => store.close(),
  };
}

function emmettSubject(): Subject {
  // Emmett's in-memory store has no subscription API: its onAfterCommit hook pushes each committed batch to the listeners.
  const listeners = new Set<(count: number) => void>();
  const store = getInMemoryEventStore({
    hooks: {
      onAfterCommit: (messages) => {
        for (const l of listeners) l(messages.length);
      },
    },
  });
  return {
    name: "Emmett in-memory",
    append: (s, events) =>
      store.appendToStream(
        s,
        events.map((e) => ({ type: e.type, data: e.data as Record<string, unknown>, metadata: { id: e.id } })),
      ),
    readStream: async (s) => (await store.readStream(s)).events.length,
    subscribe: (_s, n, total) =>
      Array.from(
        { length: n },
        () =>
          new Promise<void>((resolve) => {
            let seen = 0;
            const l = (count: number) => {
              seen += count;
              if (seen >= total) {
                listeners.delete(l);
                resolve();
              }
            };
            listeners.add(l);
          }),
      ),
    close: async () => {},
  };
}

/** Appends `total` events in batches of `batch`, `CONCURRENCY` appends in flight, round-robin over streams. */
async function appendAll(subject: Subject, total: number, batch: number, prefix: string): Promise<number> {
  const t0 = performance.now();
  let k = 0;
  let call = 0;
  const calls = Math.ceil(total / batch);
  const worker = async () => {
    while (call < calls) {
      const c = call++;
      const events = Array.from({ length: batch }, () => payload(k++));
      await subject.append(`${prefix}-${c % STREAMS}`, events);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return performance.now() - t0;
}

async function measure(subjects: (() => Promise<Subject>)[], quick: boolean, rows: Row[]): Promise<void> {
  const n1 = quick ? 5_000 : 50_000;
  const n100 = quick ? 20_000 : 200_000;
  const readLen = quick ? 2_000 : 10_000;
  const readReps = quick ? 20 : 500;
  const fanEvents = quick ? 1_000 : 10_000;
  for (const make of subjects) {
    for (const [batch, total] of [
      [1, n1],
      [100, n100],
    ] as const) {
      const s = await make();
      const ms = await appendAll(s, total, batch, `a${batch}`);
      rows.push({ name: `append, batch ${batch}`, store: s.name, ms, units: total });
      await s.close();
    }
    {
      const s = await make();
      for (let i = 0; i < readLen; i += 100)
        await s.append(
          "r",
          Array.from({ length: 100 }, (_, j) => payload(i + j)),
        );
      const t0 = performance.now();
      let read = 0;
      for (let i = 0; i < readReps; i++) read += await s.readStream("r");
      rows.push({ name: `readStream (${readLen} events)`, store: s.name, ms: performance.now() - t0, units: read });
      await s.close();
    }
    for (const subscribers of [1, 100]) {
      const s = await make();
      const done = s.subscribe("f", subscribers, fanEvents);
      const t0 = performance.now();
      for (let i = 0; i < fanEvents; i += 10)
        await s.append(
          "f",
          Array.from({ length: 10 }, (_, j) => payload(i + j)),
        );
      await Promise.all(done);
      rows.push({
        name: `fan-out, ${subscribers} subscriber(s)`,
        store: s.name,
        ms: performance.now() - t0,
        units: fanEvents * subscribers,
      });
      await s.close();
    }
  }
}

async function reopen(
  dir: string,
  events: number,
): Promise<{ without: number; withSnapshot: number; snapshotMs: number }> {
  const store = await FileEventStore.open({
    directory: dir,
    sync: "none",
    maxEventsPerStream: 0,
    maxStreams: 0,
    snapshotIntervalMs: 0,
  });
  for (let i = 0; i < events; i += 1000) {
    await store.append(
      `s-${(i / 1000) % STREAMS}`,
      Array.from({ length: Math.min(1000, events - i) }, (_, j) => payload(i + j)),
    );
  }
  await store.close();
  global.gc?.();
  let t0 = performance.now();
  const a = await FileEventStore.open({ directory: dir, snapshotIntervalMs: 0, maxEventsPerStream: 0, maxStreams: 0 });
  const without = performance.now() - t0;
  if (a.stats().totalEvents !== events) throw new Error(`reopened ${a.stats().totalEvents} events, expected ${events}`);
  t0 = performance.now();
  await a.snapshot();
  const snapshotMs = performance.now() - t0;
  await a.close();
  global.gc?.();
  t0 = performance.now();
  const b = await FileEventStore.open({ directory: dir, snapshotIntervalMs: 0, maxEventsPerStream: 0, maxStreams: 0 });
  const withSnapshot = performance.now() - t0;
  if (b.stats().totalEvents !== events)
    throw new Error(`reopened ${b.stats().totalEvents} events from the snapshot, expected ${events}`);
  await b.close();
  return { without, withSnapshot, snapshotMs };
}

const rate = (r: Row) => `${Math.round((r.units / r.ms) * 1000).toLocaleString("en-US")} ev/s`;

/** Runs the event-store benchmarks and prints the figures and the ratios against Emmett. */
export async function runEventBenchmarks(options: EventBenchOptions = {}): Promise<void> {
  const quick = options.quick ?? process.argv.includes("--quick");
  // Under `.bench/` in the work tree: the project's disk, like the other suites (ignored by git, removed afterwards).
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../.bench");
  await mkdir(root, { recursive: true });
  const base = await mkdtemp(path.join(root, "events-"));
  let n = 0;
  try {
    const subjects = [
      async () => emmettSubject(),
      async () => memorySubject(),
      () => fileSubject(path.join(base, `f${++n}`), true),
      () => fileSubject(path.join(base, `f${++n}`), false),
    ];
    // A smaller warm-up pass first (JIT), then ROUNDS measured passes, every store in each round (the machine is
    // shared and noisy: interleaving spreads the noise), reported as the median time per workload and store.
    await measure(subjects, true, []);
    const rounds = quick ? 1 : 3;
    const all: Row[] = [];
    for (let i = 0; i < rounds; i++) await measure(subjects, quick, all);
    const rows: Row[] = [];
    for (const r of all) {
      if (rows.some((x) => x.name === r.name && x.store === r.store)) continue;
      const same = all.filter((x) => x.name === r.name && x.store === r.store).map((x) => x.ms);
      same.sort((a, b) => a - b);
      rows.push({ ...r, ms: same[Math.floor(same.length / 2)] as number });
    }
    console.log(
      `\nEvent store${quick ? " (--quick: smoke run)" : ""}: ${CONCURRENCY} appends in flight, ${STREAMS} streams`,
    );
    console.log(
      ["workload".padEnd(34), "store".padEnd(26), "throughput".padStart(16), "vs Emmett".padStart(10)].join(" "),
    );
    for (const r of rows) {
      const emmett = rows.find((e) => e.name === r.name && e.store === "Emmett in-memory") as Row;
      const ratio = r.units / r.ms / (emmett.units / emmett.ms);
      console.log(
        [r.name.padEnd(34), r.store.padEnd(26), rate(r).padStart(16), `${ratio.toFixed(2)}x`.padStart(10)].join(" "),
      );
    }
    for (const batch of [1, 100]) {
      const name = `append, batch ${batch}`;
      const ours = rows.find((r) => r.name === name && r.store === "MemoryEventStore") as Row;
      const emmett = rows.find((r) => r.name === name && r.store === "Emmett in-memory") as Row;
      const ratio = ours.units / ours.ms / (emmett.units / emmett.ms);
      console.log(
        `target MemoryEventStore ${name} >= 2x Emmett: ${ratio.toFixed(2)}x — ${ratio >= 2 ? "met" : "NOT met"}`,
      );
    }
    const big = quick ? 100_000 : 1_000_000;
    const r = await reopen(path.join(base, "reopen"), big);
    console.log(
      `reopen of a ${big.toLocaleString("en-US")}-event FileEventStore: ${(r.without / 1000).toFixed(2)} s from the log, ` +
        `${(r.withSnapshot / 1000).toFixed(2)} s from a snapshot (${(r.without / r.withSnapshot).toFixed(2)}x faster; ` +
        `taking the snapshot: ${(r.snapshotMs / 1000).toFixed(2)} s)`,
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runEventBenchmarks();
}
