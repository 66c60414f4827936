/**
 * Core benchmark, section 2: `writers` async writers each doing sequential
 * single-change durable saves, FileStore (group commit) vs one write +
 * fsync per save (async, as the same writers would do it; and serialized,
 * for reference).
 */
import path from "node:path";
import type { ChangeInput } from "../../src/core/change.js";
import { openFileStore } from "./filestore.js";
import { fsyncLatency, fsyncPerSave, fsyncPerSaveSerialized } from "./fsync.js";
import { type BenchResult, collectGarbage, compare, formatMs, now, RatioKind, withTempDir } from "./measure.js";
import { log, type Plan, SUITE } from "./plan.js";
import { entityIdOf, makeEntity, prng } from "./workload.js";

/** Section 2: `writers` async writers, each doing sequential single-change saves. */
export async function concurrentSaves(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult[]> {
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
  const serialRun = (dir: string, n: number) =>
    withTempDir(dir, async (d) => {
      await collectGarbage();
      return fsyncPerSaveSerialized(path.join(d, "per-save.jsonl"), changeFor, writers, n);
    });
  const runs = { file: fileRun, fsync: fsyncRun, serial: serialRun } as const;
  type System = keyof typeof runs;
  const systems = Object.keys(runs) as System[];
  log(`concurrent saves: ${writers} writers × ${saves} sequential single-change saves`);
  const latency = await withTempDir("core-fsync", async (d) => fsyncLatency(path.join(d, "probe")));
  log(`one 300 B write + fsync on this disk: ${formatMs(latency)} (median of 200)`);
  for (const system of systems) await runs[system]("core-concurrent-warmup", Math.min(5, saves));
  const samples: Record<System, number[]> = { file: [], fsync: [], serial: [] };
  for (let rep = 0; rep < plan.concurrentRepetitions; rep++) {
    // Rotate the order so that no system always runs first.
    for (let i = 0; i < systems.length; i++) {
      signal?.throwIfAborted();
      const system = systems[(rep + i) % systems.length]!;
      samples[system].push(await runs[system]("core-concurrent", saves));
    }
    log(
      `concurrent saves ${rep + 1}/${plan.concurrentRepetitions}: FileStore ${formatMs(samples.file.at(-1)!)}, ` +
        `fsync per save ${formatMs(samples.fsync.at(-1)!)}, serialized ${formatMs(samples.serial.at(-1)!)}`,
    );
  }
  const base = {
    suite: SUITE,
    operation: `${writers} concurrent single-change durable saves`,
    subject: "FileStore (group commit)",
    units: writers * saves,
    unit: "saves",
    ratioKind: RatioKind.Speedup,
  } as const;
  return [
    compare(
      {
        ...base,
        baseline: "fsync per save",
        baselineDetail:
          "the same async writers, each save = its own write + fsync (FileHandle, one shared append-only file); libuv runs up to 4 fsyncs at once and the kernel merges overlapping fsyncs of one file",
        target: 4,
        note: `one 300 B write + fsync took ${formatMs(latency)} (median) on this disk during the run`,
      },
      samples.file,
      samples.fsync,
    ),
    compare(
      {
        ...base,
        baseline: "fsync per save, serialized",
        baselineDetail: "the same saves one after another: writeSync + fsyncSync each, nothing overlaps",
        target: 10,
        note: "what one fsync per save costs when the saves cannot overlap",
      },
      samples.file,
      samples.serial,
    ),
  ];
}
