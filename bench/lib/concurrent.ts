/**
 * Core benchmark, section 2: `writers` async writers each doing sequential
 * single-change durable saves, FileStore (group commit) vs one write +
 * fsync per save.
 */
import path from "node:path";
import type { ChangeInput } from "../../src/core/change.js";
import { openFileStore } from "./filestore.js";
import { fsyncLatency, fsyncPerSave } from "./fsync.js";
import { type BenchResult, collectGarbage, compare, formatMs, now, RatioKind, withTempDir } from "./measure.js";
import { log, type Plan, SUITE } from "./plan.js";
import { entityIdOf, makeEntity, prng } from "./workload.js";

/** Section 2: `writers` async writers, each doing sequential single-change saves. */
export async function concurrentSaves(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult> {
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
