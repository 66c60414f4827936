/**
 * The core-store benchmarks of issue 2, each a ratio against a baseline
 * measured in the same run (see docs/performance.md, "Core stores"):
 *
 * 1. durable batched writes: FileStore vs better-sqlite3 and vs the
 *    "stringify + write + fsync per batch" floor;
 * 2. 32 concurrent single-change durable saves vs one fsync per save;
 * 3. restore of the live state, with the history as written (with and
 *    without its hint file), after `compact` and as the default store
 *    wrote it, vs better-sqlite3 loading the same state;
 * 4. MemoryStore save + load vs a plain `Map`.
 *
 * `STATELOG_BENCH_CORE=<sections>` (comma-separated: `writes`, `restores`,
 * `concurrent`, `memory`) runs only those, with the same baselines, to
 * iterate on one path; `restores` includes the writes they restore.
 */
import { rmSync } from "node:fs";
import path from "node:path";
import type { Change, ChangeInput } from "../src/core/change.js";
import { concurrentSaves } from "./lib/concurrent.js";
import { fileStoreRestore, fileStoreWrite, openFileStore } from "./lib/filestore.js";
import { floorWrite } from "./lib/fsync.js";
import { loadNow } from "./lib/machine.js";
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
import { memoryStore } from "./lib/memory.js";
import { FULL, log, type Plan, QUICK, SUITE } from "./lib/plan.js";
import { SqliteBaseline } from "./lib/sqlite.js";
import { batches, summarize, type WorkloadOptions } from "./lib/workload.js";

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
  const only = process.env.STATELOG_BENCH_CORE?.split(",").map((s) => s.trim());
  const wanted = (key: string) => only === undefined || only.includes(key);
  const sections: [string, boolean, () => Promise<BenchResult[]>][] = [
    [
      "durable batched writes and restores",
      wanted("writes") || wanted("restores"),
      () => writesAndRestores(plan, signal, wanted("restores")),
    ],
    ["concurrent saves", wanted("concurrent"), () => concurrentSaves(plan, signal)],
    ["MemoryStore vs Map", wanted("memory"), async () => [await memoryStore(plan, signal)]],
  ];
  if (only) log(`STATELOG_BENCH_CORE=${only.join(",")}: only these sections`);
  for (const [name, run, section] of sections) {
    if (!run) continue;
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

/** Sections 1 and 3: the writes, then (unless `withRestores` is false) restores of what the last repetition wrote. */
async function writesAndRestores(
  plan: Plan,
  signal: AbortSignal | undefined,
  withRestores: boolean,
): Promise<BenchResult[]> {
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
        log(`durable batched writes ${rep + 1}/${plan.writeRepetitions}: ${writer} ${formatMs(ms)} (${loadNow()})`);
      }
      if (last && withRestores) out = await restores(plan, dir, signal);
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
    compare({ ...base, subject: "FileStore (defaults)", ...sqlite, target: 5 }, samples.file, samples.sqlite),
    compare({ ...base, subject: "FileStore (defaults)", ...floor, target: 0.85 }, samples.file, samples.floor),
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

  /** `withoutHint`: the hint file is removed before each timed FileStore restore (which then reads every line and writes it again). */
  const measure = async (
    label: string,
    storeDir = historyDir,
    withoutHint = false,
  ): Promise<{ file: number[]; sqlite: number[] }> => {
    const dropHint = (): void => {
      if (withoutHint) rmSync(path.join(storeDir, `${namespace}.hint`), { force: true });
    };
    checkSameState(
      `FileStore (${label})`,
      (await fileStoreRestore(storeDir, namespace)).changes,
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
        if (which === "file") dropHint();
        if (which === "file") file.push((await fileStoreRestore(storeDir, namespace)).ms);
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
  const firstLoad = await measure("history as written, no hint", historyDir, true);
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
  const autoCompacted = await measure("as written with autoCompact on", path.join(dir, "file"));
  return [
    compare(
      {
        ...base,
        target: 2,
        operation: "restore, history as written",
        subject: "FileStore (open + load)",
        note: `warm page cache; ${HINTED}`,
      },
      history.file,
      history.sqlite,
    ),
    compare(
      {
        ...base,
        target: undefined,
        operation: "restore, history as written, no hint file",
        subject: "FileStore (open + load)",
        note: "informational: the hint file removed before each load, which reads every line (and writes the hint again); warm page cache",
      },
      firstLoad.file,
      firstLoad.sqlite,
    ),
    compare(
      {
        ...base,
        target: 0.7,
        operation: "restore, after compact",
        subject: "FileStore (open + load)",
        note: `warm page cache; compact itself took ${formatMs(compactMs)}`,
      },
      compacted.file,
      compacted.sqlite,
    ),
    compare(
      {
        ...base,
        operation: "restore, file as the default store wrote it",
        subject: "FileStore (open + load)",
        note: `the file written with autoCompact on (defaults), so it holds some history; warm page cache; ${HINTED}`,
      },
      autoCompacted.file,
      autoCompacted.sqlite,
    ),
  ];
}

/** How the timed restores of a file with history find its live lines. */
const HINTED =
  "the untimed check load before the timed ones wrote the hint file (<name>.hint: where each key's latest line lies), which the timed loads read";

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
