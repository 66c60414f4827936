/**
 * The core-store benchmarks of issue 2, each a ratio against a baseline
 * measured in the same run (see docs/performance.md, "Core stores"):
 *
 * 1. durable batched writes: FileStore vs better-sqlite3 and vs the
 *    "stringify + write + fsync per batch" floor;
 * 2. 32 concurrent single-change durable saves vs one fsync per save;
 * 3. restore of the live state, with the history as written and after
 *    `compact`, vs better-sqlite3 loading the same state;
 * 4. MemoryStore save + load vs a plain `Map`.
 */
import path from "node:path";
import type { Change, ChangeInput } from "../src/core/change.js";
import { MemoryStore } from "../src/memory/index.js";
import { fileStoreRestore, fileStoreWrite, openFileStore } from "./lib/filestore.js";
import { floorWrite, fsyncLatency, fsyncPerSave } from "./lib/fsync.js";
import {
  type BenchOptions,
  type BenchResult,
  collectGarbage,
  compare,
  formatMs,
  now,
  RatioKind,
  table,
  withTempDir,
} from "./lib/measure.js";
import { SqliteBaseline } from "./lib/sqlite.js";
import {
  batches,
  entityIdOf,
  FULL_WORKLOAD,
  makeEntity,
  prng,
  QUICK_WORKLOAD,
  summarize,
  type WorkloadOptions,
} from "./lib/workload.js";

const SUITE = "core";

/** How much each measurement repeats. */
interface Plan {
  readonly workload: WorkloadOptions;
  /** A short workload run once per system before measuring (JIT, page cache, file system). */
  readonly warmupWorkload: WorkloadOptions;
  readonly writeRepetitions: number;
  readonly restoreRepetitions: number;
  readonly concurrentWriters: number;
  readonly savesPerWriter: number;
  readonly concurrentRepetitions: number;
  readonly memoryRepetitions: number;
}

const FULL: Plan = {
  workload: FULL_WORKLOAD,
  warmupWorkload: { ...FULL_WORKLOAD, changes: 30_000, entities: 10_000 },
  writeRepetitions: 3,
  restoreRepetitions: 5,
  concurrentWriters: 32,
  savesPerWriter: 50,
  concurrentRepetitions: 3,
  memoryRepetitions: 3,
};

const QUICK: Plan = {
  workload: QUICK_WORKLOAD,
  warmupWorkload: { ...QUICK_WORKLOAD, changes: 5_000, entities: 1_000 },
  writeRepetitions: 2,
  restoreRepetitions: 3,
  concurrentWriters: 32,
  savesPerWriter: 10,
  concurrentRepetitions: 2,
  memoryRepetitions: 2,
};

function log(message: string): void {
  console.log(`[core] ${message}`);
}

/** Runs every core benchmark; prints progress and a table, returns the rows. */
export async function runCoreBenchmarks(options: BenchOptions): Promise<BenchResult[]> {
  const plan = options.quick ? QUICK : FULL;
  const w = summarize(plan.workload);
  log(
    `workload: ${w.changes.toLocaleString("en")} changes over ${w.entities.toLocaleString("en")} entities ` +
      `(~${Math.round(averageEntityBytes(plan.workload))} B JSON each), batches of ${w.batchSize}, ` +
      `${w.deleted.toLocaleString("en")} deleted → ${w.live.toLocaleString("en")} live${options.quick ? " (--quick)" : ""}`,
  );
  const results: BenchResult[] = [];
  const failures: Error[] = [];
  const signal = options.signal;
  const sections: [string, () => Promise<BenchResult[]>][] = [
    ["durable batched writes and restores", () => writesAndRestores(plan, signal)],
    ["concurrent saves", async () => [await concurrentSaves(plan, signal)]],
    ["MemoryStore vs Map", async () => [await memoryStore(plan, signal)]],
  ];
  for (const [name, section] of sections) {
    signal?.throwIfAborted();
    try {
      results.push(...(await section()));
    } catch (error) {
      if (signal?.aborted) throw error;
      log(`${name} FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      failures.push(new Error(`${name}: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
    }
  }
  if (results.length > 0) console.log(`\n${table(results)}\n`);
  if (failures.length > 0) {
    // The rows that were measured still reach the summary and the JSON output.
    throw Object.assign(
      new AggregateError(
        failures,
        `${failures.length} core benchmark section(s) failed: ${failures.map((f) => f.message).join("; ")}`,
      ),
      {
        partialResults: results,
      },
    );
  }
  return results;
}

/** Mean JSON size of the entities of the first batch. */
function averageEntityBytes(workload: WorkloadOptions): number {
  const first: ChangeInput[] = batches(workload).next().value ?? [];
  const sizes = first.filter((c) => c.changeType === "set").map((c) => JSON.stringify(c.entity).length);
  return sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length);
}

type Writer = "floor" | "sqlite" | "file" | "fileHistory";
const WRITERS: readonly Writer[] = ["floor", "sqlite", "file", "fileHistory"];

/** One timed write of `workload` by `writer` into `dir`; leaves its files there. */
async function write(writer: Writer, dir: string, workload: WorkloadOptions): Promise<number> {
  await collectGarbage();
  switch (writer) {
    case "floor":
      return floorWrite(path.join(dir, "floor.jsonl"), batches(workload));
    case "sqlite": {
      const db = new SqliteBaseline(path.join(dir, "baseline.sqlite"));
      let spent = 0;
      for (const batch of batches(workload)) {
        const start = now();
        db.save(batch);
        spent += now() - start;
      }
      const start = now();
      db.close(); // checkpoints the WAL: part of the cost of writing
      return spent + now() - start;
    }
    case "file":
      return fileStoreWrite(path.join(dir, "file"), batches(workload));
    case "fileHistory":
      return fileStoreWrite(path.join(dir, "file-history"), batches(workload), { autoCompact: false });
  }
}

/** Sections 1 and 3: the writes, then restores of what the last repetition wrote. */
async function writesAndRestores(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult[]> {
  const samples: Record<Writer, number[]> = { floor: [], sqlite: [], file: [], fileHistory: [] };
  log("durable batched writes: warm-up");
  await withTempDir("core-warmup", async (dir) => {
    for (const writer of WRITERS) await write(writer, dir, plan.warmupWorkload);
  });
  const w = summarize(plan.workload);
  let out: BenchResult[] = [];
  for (let rep = 0; rep < plan.writeRepetitions; rep++) {
    const last = rep === plan.writeRepetitions - 1;
    await withTempDir("core-writes", async (dir) => {
      // Rotate the order so that no system always runs first (or last) on the shared machine.
      for (let i = 0; i < WRITERS.length; i++) {
        signal?.throwIfAborted();
        const writer = WRITERS[(rep + i) % WRITERS.length]!;
        const ms = await write(writer, dir, plan.workload);
        samples[writer].push(ms);
        log(`durable batched writes ${rep + 1}/${plan.writeRepetitions}: ${writer} ${formatMs(ms)}`);
      }
      if (last) out = await restores(plan, dir, signal);
    });
  }
  const base = {
    suite: SUITE,
    operation: "durable batched writes",
    units: w.changes,
    unit: "changes",
    ratioKind: RatioKind.Speedup,
  } as const;
  const sqlite = {
    baseline: "better-sqlite3",
    baselineDetail:
      "WAL, synchronous=FULL, one transaction per batch, INSERT … ON CONFLICT DO UPDATE per key, deletes as tombstone rows (as statelog keeps them); time includes close (WAL checkpoint)",
  };
  const floor = {
    baseline: "fsync floor",
    baselineDetail: "JSON.stringify of the whole batch as one line + 1 writeSync + 1 fsyncSync per batch",
  };
  return [
    compare({ ...base, subject: "FileStore (defaults)", ...sqlite, target: 4 }, samples.file, samples.sqlite),
    compare({ ...base, subject: "FileStore (defaults)", ...floor, target: 0.8 }, samples.file, samples.floor),
    compare(
      { ...base, subject: "FileStore (autoCompact off)", ...sqlite, note: "informational: no compaction cost" },
      samples.fileHistory,
      samples.sqlite,
    ),
    compare(
      { ...base, subject: "FileStore (autoCompact off)", ...floor, note: "informational: no compaction cost" },
      samples.fileHistory,
      samples.floor,
    ),
    ...out,
  ];
}

/** Section 3: restores from the files the last write repetition left in `dir`. */
async function restores(plan: Plan, dir: string, signal: AbortSignal | undefined): Promise<BenchResult[]> {
  const { namespace, live, entities } = summarize(plan.workload);
  const dbFile = path.join(dir, "baseline.sqlite");
  const historyDir = path.join(dir, "file-history");
  const sqliteRestore = (): { ms: number; changes: Change[] } => {
    const start = now();
    const db = new SqliteBaseline(dbFile);
    try {
      const changes = db.load(namespace);
      return { ms: now() - start, changes };
    } finally {
      db.close();
    }
  };
  const expected = sqliteRestore().changes;
  checkSameState("SQLite", expected, entities, live);

  const measure = async (label: string): Promise<{ file: number[]; sqlite: number[] }> => {
    checkSameState(
      `FileStore (${label})`,
      (await fileStoreRestore(historyDir, namespace)).changes,
      entities,
      live,
      expected,
    );
    const file: number[] = [];
    const sqlite: number[] = [];
    for (let rep = 0; rep < plan.restoreRepetitions; rep++) {
      signal?.throwIfAborted();
      // Alternate which goes first; the first of each pair was warmed up by the check above.
      for (const which of rep % 2 === 0 ? ["file", "sqlite"] : ["sqlite", "file"]) {
        await collectGarbage();
        if (which === "file") file.push((await fileStoreRestore(historyDir, namespace)).ms);
        else sqlite.push(sqliteRestore().ms);
      }
      log(
        `restore (${label}) ${rep + 1}/${plan.restoreRepetitions}: FileStore ${formatMs(file.at(-1)!)}, SQLite ${formatMs(sqlite.at(-1)!)}`,
      );
    }
    return { file, sqlite };
  };

  const base = {
    suite: SUITE,
    units: entities,
    unit: "keys",
    ratioKind: RatioKind.TimeRatio,
    target: 1,
    baseline: "better-sqlite3",
    baselineDetail:
      "restore = open + SELECT of every row (tombstones included, no ORDER BY) + JSON.parse of each entity into Change objects",
  } as const;
  const history = await measure("history as written");
  const store = await openFileStore(historyDir, { autoCompact: false });
  const compactStart = now();
  await store.compact(namespace);
  const compactMs = now() - compactStart;
  await store.close();
  log(
    `compact of ${summarize(plan.workload).changes.toLocaleString("en")} lines to ${entities.toLocaleString("en")}: ${formatMs(compactMs)}`,
  );
  const compacted = await measure("after compact");
  return [
    compare(
      {
        ...base,
        operation: "restore, history as written",
        subject: "FileStore (open + load)",
        note: "warm page cache",
      },
      history.file,
      history.sqlite,
    ),
    compare(
      {
        ...base,
        operation: "restore, after compact",
        subject: "FileStore (open + load)",
        note: `warm page cache; compact itself took ${formatMs(compactMs)}`,
      },
      compacted.file,
      compacted.sqlite,
    ),
  ];
}

/** Throws unless `actual` holds `keys` keys, `live` of them set, and (if given) the same state as `expected`. */
function checkSameState(who: string, actual: Change[], keys: number, live: number, expected?: Change[]): void {
  const liveCount = actual.filter((c) => c.changeType === "set").length;
  if (actual.length !== keys || liveCount !== live) {
    throw new Error(`${who} restored ${actual.length} keys (${liveCount} live); expected ${keys} (${live} live)`);
  }
  if (!expected) return;
  const want = new Map(expected.map((c) => [`${c.entityType}/${c.entityId}`, c]));
  for (const c of actual) {
    const e = want.get(`${c.entityType}/${c.entityId}`);
    if (
      !e ||
      e.changeType !== c.changeType ||
      e.timestamp.getTime() !== c.timestamp.getTime() ||
      JSON.stringify(e.entity) !== JSON.stringify(c.entity)
    ) {
      throw new Error(`${who} restored ${c.entityType}/${c.entityId} differently from SQLite`);
    }
  }
}

/** Section 2: `writers` async writers, each doing sequential single-change saves. */
async function concurrentSaves(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult> {
  const { concurrentWriters: writers, savesPerWriter: saves } = plan;
  const at = new Date(Date.UTC(2025, 0, 1));
  const changes: ChangeInput[][] = Array.from({ length: writers }, (_, wi) =>
    Array.from({ length: saves }, (_, s) => {
      const k = wi * saves + s;
      return {
        namespace: "concurrent",
        changeType: "set",
        entityType: "resource",
        entityId: entityIdOf(k),
        entity: makeEntity(prng(k + 1), k, 1, at),
        timestamp: at,
      };
    }),
  );
  const changeFor = (wi: number, s: number): ChangeInput => changes[wi]![s]!;
  const fileRun = (dir: string, n: number) =>
    withTempDir(dir, async (d) => {
      const store = await openFileStore(d);
      try {
        await collectGarbage();
        const start = now();
        await Promise.all(
          Array.from({ length: writers }, async (_, wi) => {
            for (let s = 0; s < n; s++) await store.save([changeFor(wi, s)]);
          }),
        );
        return now() - start;
      } finally {
        await store.close();
      }
    });
  const fsyncRun = (dir: string, n: number) =>
    withTempDir(dir, async (d) => {
      await collectGarbage();
      return fsyncPerSave(path.join(d, "per-save.jsonl"), changeFor, writers, n);
    });
  log(`concurrent saves: ${writers} writers × ${saves} sequential single-change saves`);
  const latency = await withTempDir("core-fsync", async (d) => fsyncLatency(path.join(d, "probe")));
  log(`one 300 B write + fsync on this disk: ${formatMs(latency)} (median of 200)`);
  await fileRun("core-concurrent-warmup", Math.min(5, saves));
  await fsyncRun("core-concurrent-warmup", Math.min(5, saves));
  const file: number[] = [];
  const fsync: number[] = [];
  for (let rep = 0; rep < plan.concurrentRepetitions; rep++) {
    signal?.throwIfAborted();
    if (rep % 2 === 0) {
      file.push(await fileRun("core-concurrent", saves));
      fsync.push(await fsyncRun("core-concurrent", saves));
    } else {
      fsync.push(await fsyncRun("core-concurrent", saves));
      file.push(await fileRun("core-concurrent", saves));
    }
    log(
      `concurrent saves ${rep + 1}/${plan.concurrentRepetitions}: FileStore ${formatMs(file.at(-1)!)}, one fsync per save ${formatMs(fsync.at(-1)!)}`,
    );
  }
  return compare(
    {
      suite: SUITE,
      operation: `${writers} concurrent single-change durable saves`,
      subject: "FileStore (group commit)",
      baseline: "fsync per save",
      baselineDetail: "the same writers, each save = its own write + fsync (FileHandle, one shared append-only file)",
      units: writers * saves,
      unit: "saves",
      ratioKind: RatioKind.Speedup,
      target: 10,
      note: `one 300 B write + fsync took ${formatMs(latency)} (median) on this disk during the run`,
    },
    file,
    fsync,
  );
}

/** Section 4: MemoryStore save of the whole workload + load, vs a Map doing the same sets/deletes + reading back. */
async function memoryStore(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult> {
  const { namespace, changes: units } = summarize(plan.workload);
  const storeRun = async (workload: WorkloadOptions): Promise<number> => {
    await collectGarbage();
    const store = new MemoryStore();
    let spent = 0;
    for (const batch of batches(workload)) {
      const start = now();
      await store.save(batch);
      spent += now() - start;
    }
    const start = now();
    const loaded = await store.load(namespace);
    spent += now() - start;
    if (loaded.length !== summarize(workload).entities) throw new Error(`MemoryStore loaded ${loaded.length} keys`);
    await store.close();
    return spent;
  };
  const mapRun = async (workload: WorkloadOptions): Promise<number> => {
    await collectGarbage();
    const map = new Map<string, unknown>();
    let spent = 0;
    for (const batch of batches(workload)) {
      const start = now();
      for (const c of batch) {
        const key = `${c.entityType}/${c.entityId}`;
        if (c.changeType === "set") map.set(key, c.entity);
        else map.delete(key);
      }
      spent += now() - start;
    }
    const start = now();
    const loaded = [...map.values()];
    spent += now() - start;
    if (loaded.length !== summarize(workload).live) throw new Error(`Map held ${loaded.length} entities`);
    return spent;
  };
  log("MemoryStore vs Map: warm-up");
  await storeRun(plan.warmupWorkload);
  await mapRun(plan.warmupWorkload);
  const store: number[] = [];
  const map: number[] = [];
  for (let rep = 0; rep < plan.memoryRepetitions; rep++) {
    signal?.throwIfAborted();
    store.push(await storeRun(plan.workload));
    map.push(await mapRun(plan.workload));
    log(
      `MemoryStore vs Map ${rep + 1}/${plan.memoryRepetitions}: MemoryStore ${formatMs(store.at(-1)!)}, Map ${formatMs(map.at(-1)!)}`,
    );
  }
  return compare(
    {
      suite: SUITE,
      operation: "memory: save all batches + load",
      subject: "MemoryStore",
      baseline: "Map",
      baselineDetail: "a plain Map doing the same set/delete per change, then reading back its values",
      units,
      unit: "changes",
      ratioKind: RatioKind.TimeRatio,
      note: "no target: MemoryStore validates, serializes and copies every entity; a Map keeps references",
    },
    store,
    map,
  );
}
