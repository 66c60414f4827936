/**
 * Event-store benchmarks: MemoryEventStore and FileEventStore side by side
 * with Emmett's in-memory event store (`getInMemoryEventStore`) on the same
 * workload, figures as ratios against Emmett measured in the same run:
 * append throughput (batch 1 and batch 100), readStream, subscription
 * fan-out (1 and 100 subscribers); then a 1,000,000-event FileEventStore
 * reopened: from its index side files, without them (every segment
 * scanned), after a snapshot; its resident memory after the open (a child
 * process); readStream and catch-up subscriptions after the open, against
 * a MemoryEventStore holding the same streams (the in-memory reads an open
 * used to rebuild) and against a plain read of as many lines of the log.
 *
 * `npx tsx bench/events.ts [--quick] [--large-only]`, or through `npm run bench`
 * (`--large-only`: only the 1,000,000-event store's figures).
 */
import { mkdir, mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { getInMemoryEventStore } from "@event-driven-io/emmett";
import { createEvent, type EventInput } from "../src/events/index.js";
import { FileEventStore } from "../src/file/index.js";
import { MemoryEventStore } from "../src/memory/index.js";

/** Options of {@link runEventBenchmarks}. */
export interface EventBenchOptions {
  /** Smaller workloads: a smoke run, not figures to record. @default false (or `--quick` on the command line) */
  quick?: boolean;
  /** Only the large store's figures (reopen, memory, reads and catch-ups after the open). @default false (or `--large-only` on the command line) */
  largeOnly?: boolean;
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

/** What {@link reopen} measured on the large store. */
interface ReopenFigures {
  /** Open with the index side files (what every open after a clean close does). */
  readonly withIndex: number;
  /** Open after deleting the index side files: every segment scanned (today's cost of an open without index). */
  readonly scan: number;
  /** Open right after a snapshot. */
  readonly withSnapshot: number;
  readonly snapshotMs: number;
  /** A child process (plain node): open time and resident memory before and after the open. */
  readonly child:
    | { openMs: number; openCpuMs: number; rssBeforeBytes: number; rssAfterBytes: number; heapUsedBytes: number }
    | undefined;
  /** readStream of one stream's events after the open: first read (from the segments), then again (cached). */
  readonly readCold: number;
  readonly readWarm: number;
  readonly readEvents: number;
  /** Catch-up of a stream subscription from position 0 over `readEvents` events, after the open. */
  readonly catchUpStream: number;
  /** Catch-up of subscribeAll from 0 over `catchUpAllEvents` events, after the open. */
  readonly catchUpAll: number;
  readonly catchUpAllEvents: number;
  /** The floor of reading events from a file: read `readEvents` lines of the same log and JSON.parse each. */
  readonly plainRead: number;
  /** The same floor for the lines a subscribeAll catch-up decodes: `plainReadAllEvents` lines (the first segment's). */
  readonly plainReadAll: number;
  readonly plainReadAllEvents: number;
  /** The same readStream and catch-ups on a MemoryEventStore holding the same stream (the in-memory reads of today's open). */
  readonly memoryRead: number;
  readonly memoryCatchUpStream: number;
  readonly memoryCatchUpAll: number;
  /** How many times the reads and catch-ups (and their baselines) were measured: the figures are medians. */
  readonly rounds: number;
  /** The CPU time (ms, medians) of the same reads, catch-ups and baselines. */
  readonly cpu: {
    readonly readCold: number;
    readonly plainRead: number;
    readonly plainReadAll: number;
    readonly catchUpStream: number;
    readonly catchUpAll: number;
    readonly memoryCatchUpStream: number;
    readonly memoryCatchUpAll: number;
  };
}

/**
 * A full garbage collection before a timed section of the large store, so
 * that it does not pay for the garbage of the stores opened before it
 * (each round opens a fresh one): `global.gc` when node runs with
 * `--expose-gc`, else the same function exposed at run time.
 */
const collect: () => void =
  global.gc ??
  (() => {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  })();

const bigOptions = { maxEventsPerStream: 0, maxStreams: 0, snapshotIntervalMs: 0 } as const;

/**
 * CPU time of this process so far (user + system, all its threads: the
 * garbage collector's too), in ms. On a machine shared with other work the
 * wall-clock time of a section depends on what else runs; its CPU time
 * much less: the large store's figures give both.
 */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Subscribes from 0 and resolves once `total` events were delivered; the time it took (its CPU time pushed to `cpu`). */
async function catchUp(sub: AsyncIterable<unknown>, total: number, cpu: number[]): Promise<number> {
  const c0 = cpuMs();
  const t0 = performance.now();
  let seen = 0;
  for await (const _ of sub) if (++seen === total) break;
  const wall = performance.now() - t0;
  cpu.push(cpuMs() - c0);
  return wall;
}

/** Opens the store in `dir` in a child process running plain node (the child bundled with esbuild). */
async function reopenInChild(dir: string): Promise<ReopenFigures["child"]> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const outfile = path.join(path.dirname(dir), "reopen-child.mjs");
  try {
    const { build } = await import("esbuild");
    await build({
      entryPoints: [path.join(here, "events-reopen-child.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      outfile,
      logLevel: "silent",
      external: ["*.node"],
    });
  } catch (error) {
    console.log(`(no child process figures: cannot bundle the child with esbuild: ${(error as Error).message})`);
    return undefined;
  }
  const { execFile } = await import("node:child_process");
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ["--expose-gc", outfile, dir], (error, out) => (error ? reject(error) : resolve(out))),
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) as string);
}

/** The median of `values` (the upper one of an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Writes `events` events to the store in `dir`, then measures its reopens,
 * and `rounds` times (the median) its reads and catch-ups after an open.
 */
async function reopen(dir: string, events: number, rounds: number): Promise<ReopenFigures> {
  const store = await FileEventStore.open({ directory: dir, sync: "none", ...bigOptions });
  for (let i = 0; i < events; i += 1000) {
    await store.append(
      `s-${(i / 1000) % STREAMS}`,
      Array.from({ length: Math.min(1000, events - i) }, (_, j) => payload(i + j)),
    );
  }
  await store.close();
  const readStreamId = "s-7";
  const readEvents = Math.floor(events / STREAMS);
  const catchUpAllEvents = Math.min(events, 100_000);

  // Without the index side files: every segment is scanned (and the side files written again).
  for (const f of await readdir(dir)) if (f.startsWith("index-")) await rm(path.join(dir, f));
  collect();
  let t0 = performance.now();
  const scanned = await FileEventStore.open({ directory: dir, ...bigOptions });
  const scan = performance.now() - t0;
  await scanned.close();

  collect();
  t0 = performance.now();
  const a = await FileEventStore.open({ directory: dir, ...bigOptions });
  const withIndex = performance.now() - t0;
  if (a.stats().totalEvents !== events) throw new Error(`reopened ${a.stats().totalEvents} events, expected ${events}`);
  await a.close();
  // Reads and catch-ups, each on a fresh open (nothing cached), `rounds` times: the median.
  const readColds: number[] = [];
  const readWarms: number[] = [];
  const catchUpStreams: number[] = [];
  const catchUpAlls: number[] = [];
  const cpu = {
    readCold: [] as number[],
    plainRead: [] as number[],
    plainReadAll: [] as number[],
    catchUpStream: [] as number[],
    catchUpAll: [] as number[],
    memoryCatchUpStream: [] as number[],
    memoryCatchUpAll: [] as number[],
  };
  for (let round = 0; round < rounds; round++) {
    const r = await FileEventStore.open({ directory: dir, ...bigOptions });
    collect();
    const c0 = cpuMs();
    t0 = performance.now();
    const first = await r.readStream(readStreamId);
    readColds.push(performance.now() - t0);
    cpu.readCold.push(cpuMs() - c0);
    t0 = performance.now();
    await r.readStream(readStreamId);
    readWarms.push(performance.now() - t0);
    if (first.length !== readEvents) throw new Error(`read ${first.length} events, expected ${readEvents}`);
    await r.close();
    const b1 = await FileEventStore.open({ directory: dir, ...bigOptions });
    collect();
    catchUpStreams.push(await catchUp(b1.subscribe("s-8"), readEvents, cpu.catchUpStream));
    await b1.close();
    const b2 = await FileEventStore.open({ directory: dir, ...bigOptions });
    collect();
    catchUpAlls.push(await catchUp(b2.subscribeAll(0), catchUpAllEvents, cpu.catchUpAll));
    await b2.close();
  }
  const b3 = await FileEventStore.open({ directory: dir, ...bigOptions });
  t0 = performance.now();
  await b3.snapshot();
  const snapshotMs = performance.now() - t0;
  await b3.close();
  collect();
  t0 = performance.now();
  const c = await FileEventStore.open({ directory: dir, ...bigOptions });
  const withSnapshot = performance.now() - t0;
  if (c.stats().totalEvents !== events)
    throw new Error(`reopened ${c.stats().totalEvents} events from the snapshot, expected ${events}`);
  await c.close();
  const child = await reopenInChild(dir);

  // The floor: read as many lines of the same log (their bytes, with one read) and JSON.parse each; the same for
  // the lines of the subscribeAll catch-up (those of the first segment, up to `catchUpAllEvents`).
  const segment = path.join(dir, (await readdir(dir)).filter((f) => f.startsWith("segment-")).sort()[0] as string);
  const prefix = await readFile(segment);
  const bytesOf = (lines: number) => {
    let bytes = 0;
    for (let i = 0; i < lines && bytes < prefix.length; i++) bytes = prefix.indexOf(10, bytes) + 1;
    return bytes;
  };
  let plainReadAllEvents = 0;
  for (let nl = prefix.indexOf(10); nl >= 0 && plainReadAllEvents < catchUpAllEvents; nl = prefix.indexOf(10, nl + 1)) {
    plainReadAllEvents++;
  }
  const plainFloor = async (bytes: number, cpuTimes: number[]): Promise<number> => {
    collect();
    const c0 = cpuMs();
    const t = performance.now();
    const handle = await open(segment, "r");
    const { buffer } = await handle.read(Buffer.allocUnsafe(bytes), 0, bytes, 0);
    await handle.close();
    for (let at = 0, nl = buffer.indexOf(10); nl >= 0; at = nl + 1, nl = buffer.indexOf(10, at)) {
      JSON.parse(buffer.toString("utf8", at, nl));
    }
    const wall = performance.now() - t;
    cpuTimes.push(cpuMs() - c0);
    return wall;
  };
  const plainReads: number[] = [];
  const plainReadAlls: number[] = [];
  for (let round = 0; round < rounds; round++) {
    plainReads.push(await plainFloor(bytesOf(readEvents), cpu.plainRead));
    plainReadAlls.push(await plainFloor(bytesOf(plainReadAllEvents), cpu.plainReadAll));
  }

  // The in-memory reads (what today's open rebuilt): a MemoryEventStore holding streams of the same shape.
  const memory = new MemoryEventStore(bigOptions);
  for (let i = 0; i < catchUpAllEvents; i += 1000) {
    await memory.append(
      `s-${(i / 1000) % STREAMS}`,
      Array.from({ length: 1000 }, (_, j) => payload(i + j)),
    );
  }
  for (let i = catchUpAllEvents; i < readEvents * STREAMS; i += 1000 * STREAMS) {
    for (const s of ["s-7", "s-8"])
      await memory.append(
        s,
        Array.from({ length: 1000 }, (_, j) => payload(i + j)),
      );
  }
  const memoryReads: number[] = [];
  const memoryCatchUpStreams: number[] = [];
  const memoryCatchUpAlls: number[] = [];
  for (let round = 0; round < rounds; round++) {
    collect();
    t0 = performance.now();
    await memory.readStream(readStreamId);
    memoryReads.push(performance.now() - t0);
    collect();
    memoryCatchUpStreams.push(await catchUp(memory.subscribe("s-8"), readEvents, cpu.memoryCatchUpStream));
    collect();
    memoryCatchUpAlls.push(await catchUp(memory.subscribeAll(0), catchUpAllEvents, cpu.memoryCatchUpAll));
  }
  await memory.close();
  return {
    withIndex,
    scan,
    withSnapshot,
    snapshotMs,
    child,
    readCold: median(readColds),
    readWarm: median(readWarms),
    readEvents,
    catchUpStream: median(catchUpStreams),
    catchUpAll: median(catchUpAlls),
    catchUpAllEvents,
    plainRead: median(plainReads),
    plainReadAll: median(plainReadAlls),
    plainReadAllEvents,
    memoryRead: median(memoryReads),
    memoryCatchUpStream: median(memoryCatchUpStreams),
    memoryCatchUpAll: median(memoryCatchUpAlls),
    rounds,
    cpu: {
      readCold: median(cpu.readCold),
      plainRead: median(cpu.plainRead),
      plainReadAll: median(cpu.plainReadAll),
      catchUpStream: median(cpu.catchUpStream),
      catchUpAll: median(cpu.catchUpAll),
      memoryCatchUpStream: median(cpu.memoryCatchUpStream),
      memoryCatchUpAll: median(cpu.memoryCatchUpAll),
    },
  };
}

const rate = (r: Row) => `${Math.round((r.units / r.ms) * 1000).toLocaleString("en-US")} ev/s`;

/** Runs the event-store benchmarks and prints the figures and the ratios against Emmett. */
export async function runEventBenchmarks(options: EventBenchOptions = {}): Promise<void> {
  const quick = options.quick ?? process.argv.includes("--quick");
  const largeOnly = options.largeOnly ?? process.argv.includes("--large-only");
  // Under `.bench/` in the work tree: the project's disk, like the other suites (ignored by git, removed afterwards).
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../.bench");
  await mkdir(root, { recursive: true });
  const base = await mkdtemp(path.join(root, "events-"));
  try {
    if (!largeOnly) await smallWorkloads(base, quick);
    await largeStore(base, quick);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** Append, readStream and fan-out of every store, against Emmett. */
async function smallWorkloads(base: string, quick: boolean): Promise<void> {
  let n = 0;
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
}

/** The large FileEventStore: reopen, resident memory, reads and catch-ups after the open. */
async function largeStore(base: string, quick: boolean): Promise<void> {
  const big = quick ? 100_000 : 1_000_000;
  const r = await reopen(path.join(base, "reopen"), big, quick ? 1 : 5);
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const msText = (ms: number) => `${ms.toFixed(1)} ms`;
  const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
  console.log(`\nFileEventStore of ${big.toLocaleString("en-US")} events (~300 B each, ${STREAMS} streams), reopened:`);
  console.log(
    `  reopen from the index side files: ${sec(r.withIndex)} (target <= 0.50 s: ${r.withIndex <= 500 ? "met" : "NOT met"}); ` +
      `without them (every segment scanned, side files rebuilt): ${sec(r.scan)}; right after a snapshot: ${sec(r.withSnapshot)} ` +
      `(taking the snapshot: ${sec(r.snapshotMs)})`,
  );
  if (r.child) {
    console.log(
      `  child process (plain node): open ${sec(r.child.openMs)} (CPU time ${sec(r.child.openCpuMs)}), resident memory ${mb(r.child.rssBeforeBytes)} before the open, ` +
        `${mb(r.child.rssAfterBytes)} after it (target <= 150 MB: ${r.child.rssAfterBytes <= 150e6 ? "met" : "NOT met"}; heap ${mb(r.child.heapUsedBytes)})`,
    );
  }
  console.log(
    `  reads and catch-ups, each on a fresh open (nothing cached) after a full GC; medians of ${r.rounds} round(s), the MemoryEventStore and floor baselines too:`,
  );
  console.log(
    `  readStream of ${r.readEvents.toLocaleString("en-US")} events: ${msText(r.readCold)} first (from the segments), ` +
      `${msText(r.readWarm)} again (cached); MemoryEventStore (in-memory reads, as before the index): ${msText(r.memoryRead)}; ` +
      `floor, one read of as many lines of the log (their bytes) + JSON.parse each: ${msText(r.plainRead)} ` +
      `(first read ${(r.readCold / r.plainRead).toFixed(2)}x the floor)`,
  );
  console.log(
    `  catch-up from 0: subscribe of ${r.readEvents.toLocaleString("en-US")} events ${msText(r.catchUpStream)} ` +
      `(MemoryEventStore ${msText(r.memoryCatchUpStream)}, ${(r.catchUpStream / r.memoryCatchUpStream).toFixed(2)}x its time); ` +
      `subscribeAll of ${r.catchUpAllEvents.toLocaleString("en-US")} events ${msText(r.catchUpAll)} ` +
      `(MemoryEventStore ${msText(r.memoryCatchUpAll)}, ${(r.catchUpAll / r.memoryCatchUpAll).toFixed(2)}x its time)`,
  );
  // What a catch-up from the segments cannot go below: the MemoryEventStore's delivery plus decoding every line.
  const allFloor = (memory: number, plain: number) => memory + (plain * r.catchUpAllEvents) / r.plainReadAllEvents;
  console.log(
    `  floor of the subscribeAll catch-up: MemoryEventStore's delivery + one read of ${r.plainReadAllEvents.toLocaleString("en-US")} lines of the log ` +
      `+ JSON.parse each (${msText(r.plainReadAll)}, scaled to ${r.catchUpAllEvents.toLocaleString("en-US")} lines): ` +
      `${msText(allFloor(r.memoryCatchUpAll, r.plainReadAll))}, the catch-up ${(r.catchUpAll / allFloor(r.memoryCatchUpAll, r.plainReadAll)).toFixed(2)}x it; ` +
      `in CPU time ${msText(allFloor(r.cpu.memoryCatchUpAll, r.cpu.plainReadAll))}, ${(r.cpu.catchUpAll / allFloor(r.cpu.memoryCatchUpAll, r.cpu.plainReadAll)).toFixed(2)}x`,
  );
  const c = r.cpu;
  console.log(
    `  the same in CPU time (less sensitive to other work on the machine): readStream ${msText(c.readCold)}, ` +
      `floor ${msText(c.plainRead)} (${(c.readCold / c.plainRead).toFixed(2)}x the floor); ` +
      `subscribe ${msText(c.catchUpStream)}, MemoryEventStore ${msText(c.memoryCatchUpStream)} (${(c.catchUpStream / c.memoryCatchUpStream).toFixed(2)}x); ` +
      `subscribeAll ${msText(c.catchUpAll)}, MemoryEventStore ${msText(c.memoryCatchUpAll)} (${(c.catchUpAll / c.memoryCatchUpAll).toFixed(2)}x)`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runEventBenchmarks();
}
