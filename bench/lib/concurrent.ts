/**
 * Core benchmark, section 2: `writers` async writers each doing sequential
 * single-change durable saves, FileStore (group commit) vs one write +
 * fsync per save (async, as the same writers would do it; and serialized,
 * for reference). FileStore runs twice: with its defaults (each group's
 * fsync in the thread pool) and with `fsyncOn: "event-loop"` (each group's
 * fsync on the event loop's thread). Each FileStore run also reports its
 * group writes and fsyncs, and a group-commit floor per fsync placement
 * (one write + fdatasync per round, no store) shows what the disk leaves:
 * a round cannot take less than one fdatasync, so the ratio to either
 * baseline is at most that baseline's time over the floor's (both are in
 * the notes).
 */
import { closeSync, constants, fdatasync, fdatasyncSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { ChangeInput } from "../../src/core/change.js";
import { type FileStore, FsyncOn } from "../../src/file/index.js";
import { openFileStore } from "./filestore.js";
import { fsyncLatency, fsyncPerSave, fsyncPerSaveSerialized } from "./fsync.js";
import { type BenchResult, collectGarbage, compare, formatMs, median, now, RatioKind, withTempDir } from "./measure.js";
import { log, type Plan, SUITE } from "./plan.js";
import { entityIdOf, makeEntity, prng } from "./workload.js";

/** Untimed full runs of each system before the measured ones. */
const WARMUP_RUNS = 3;

/** Section 2: `writers` async writers, each doing sequential single-change saves. */
export async function concurrentSaves(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult[]> {
  return withTempDir("core-concurrent-store", (storeDir) => concurrentSavesIn(storeDir, plan, signal));
}

/** {@link concurrentSaves}, the FileStore's files in `storeDir`. */
async function concurrentSavesIn(
  storeDir: string,
  plan: Plan,
  signal: AbortSignal | undefined,
): Promise<BenchResult[]> {
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
  /** What each timed FileStore run did, per fsync placement: its group writes and fsyncs (from `stats()`). */
  const fileGroups: Record<FsyncOn, GroupRun[]> = { [FsyncOn.ThreadPool]: [], [FsyncOn.EventLoop]: [] };
  // One store per fsync placement for the whole section, as an application keeps its store open: each
  // run saves to a namespace of its own (a new file, as each baseline run writes a new file). A store
  // opened per run would die between runs, and the full garbage collections before the baselines' runs
  // would drop the shapes of its objects and the JIT's code with them: every run would start
  // deoptimised, which no application that keeps its store open pays.
  const stores = new Map<FsyncOn, FileStore>();
  let runsOfStore = 0;
  const fileRun = (fsyncOn: FsyncOn) => async (_dir: string, n: number) => {
    let store = stores.get(fsyncOn);
    if (!store) {
      store = await openFileStore(path.join(storeDir, fsyncOn), { fsyncOn });
      stores.set(fsyncOn, store);
    }
    const namespace = `concurrent-${++runsOfStore}`;
    const mine = changes.map((writes) => writes.map((c) => ({ ...c, namespace })));
    // The namespace's file (and lock file) exist before the clock starts, as the baselines' file does.
    await store.save([{ ...changeFor(0, 0), namespace, entityId: "before-the-clock" }]);
    const before = store.stats();
    await collectGarbage();
    const start = now();
    await Promise.all(
      Array.from({ length: writers }, async (_, wi) => {
        for (let s = 0; s < n; s++) await store.save([mine[wi]![s]!]);
      }),
    );
    const ms = now() - start;
    const after = store.stats();
    fileGroups[fsyncOn].push({
      groups: after.groups - before.groups,
      fsyncs: after.fsyncs - before.fsyncs,
      saves: after.saves - before.saves,
      ms,
    });
    return ms;
  };
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
  const floorRun = (fsyncOn: FsyncOn) => (dir: string, n: number) =>
    withTempDir(dir, async (d) => {
      await collectGarbage();
      return groupCommitFloor(path.join(d, "floor.jsonl"), changeFor, writers, n, fsyncOn);
    });
  const runs = {
    file: fileRun(FsyncOn.ThreadPool),
    fileEventLoop: fileRun(FsyncOn.EventLoop),
    fsync: fsyncRun,
    serial: serialRun,
    floor: floorRun(FsyncOn.ThreadPool),
    floorEventLoop: floorRun(FsyncOn.EventLoop),
  } as const;
  type System = keyof typeof runs;
  const systems = Object.keys(runs) as System[];
  try {
    log(`concurrent saves: ${writers} writers × ${saves} sequential single-change saves`);
    const latency = await withTempDir("core-fsync", async (d) => fsyncLatency(path.join(d, "probe")));
    log(`one 300 B write + fsync on this disk: ${formatMs(latency)} (median of 200)`);
    // Warm-up: full runs of every system, untimed, until the JIT has compiled the hot paths (a FileStore
    // save runs far more JavaScript than a baseline's `JSON.stringify` + write; its first runs of 1,600 saves
    // take 3–5× the CPU of the later ones).
    for (let i = 0; i < WARMUP_RUNS; i++) {
      for (const system of systems) {
        signal?.throwIfAborted();
        await runs[system]("core-concurrent-warmup", saves);
      }
    }
    for (const runs of Object.values(fileGroups)) runs.length = 0;
    const samples: Record<System, number[]> = {
      file: [],
      fileEventLoop: [],
      fsync: [],
      serial: [],
      floor: [],
      floorEventLoop: [],
    };
    for (let rep = 0; rep < plan.concurrentRepetitions; rep++) {
      // Rotate the order so that no system always runs first.
      for (let i = 0; i < systems.length; i++) {
        signal?.throwIfAborted();
        const system = systems[(rep + i) % systems.length]!;
        samples[system].push(await runs[system]("core-concurrent", saves));
      }
      const last = (fsyncOn: FsyncOn) => describeGroups(fileGroups[fsyncOn].at(-1)!);
      log(
        `concurrent saves ${rep + 1}/${plan.concurrentRepetitions}: FileStore ${formatMs(samples.file.at(-1)!)} ` +
          `(${last(FsyncOn.ThreadPool)}), with fsyncOn: event-loop ${formatMs(samples.fileEventLoop.at(-1)!)} ` +
          `(${last(FsyncOn.EventLoop)}), fsync per save ${formatMs(samples.fsync.at(-1)!)}, serialized ${formatMs(samples.serial.at(-1)!)}, ` +
          `group-commit floor ${formatMs(samples.floor.at(-1)!)} (fsync on the event loop ${formatMs(samples.floorEventLoop.at(-1)!)})`,
      );
    }
    const placements = [
      {
        fsyncOn: FsyncOn.ThreadPool,
        subject: "FileStore (group commit, defaults)",
        where: "each group's fdatasync in the thread pool",
        file: samples.file,
        floor: samples.floor,
      },
      {
        fsyncOn: FsyncOn.EventLoop,
        subject: 'FileStore (group commit, fsyncOn: "event-loop")',
        where: "each group's fdatasync on the event loop's thread, which it blocks meanwhile",
        file: samples.fileEventLoop,
        floor: samples.floorEventLoop,
      },
    ] as const;
    return placements.flatMap(({ fsyncOn, subject, where, file, floor }) => {
      const base = {
        suite: SUITE,
        operation: `${writers} concurrent single-change durable saves`,
        subject,
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
              "the same async writers, each save = its own write + fsync (FileHandle, one shared append-only file); libuv runs up to 4 fsyncs at once and the kernel merges overlapping fsyncs of one file; the same baseline for both fsync placements of the FileStore (its fsyncs always in the thread pool)",
            target: 4,
            note:
              `${where}; one 300 B write + fsync took ${formatMs(latency)} (median) on this disk during the run; ` +
              `FileStore's median run: ${describeGroups(medianRun(fileGroups[fsyncOn]))} (at best one group per round of ${writers} saves: ${saves} groups); ` +
              `group-commit floor with the same fsync placement (one write + fdatasync per round, no store) ${formatMs(median(floor))}: ` +
              `at most ${(median(samples.fsync) / median(floor)).toFixed(2)}× on this disk then`,
          },
          file,
          samples.fsync,
        ),
        compare(
          {
            ...base,
            baseline: "fsync per save, serialized",
            baselineDetail: "the same saves one after another: writeSync + fsyncSync each, nothing overlaps",
            target: 10,
            note:
              `${where}; what one fsync per save costs when the saves cannot overlap; ` +
              `the group-commit floor with the same fsync placement would be ${(median(samples.serial) / median(floor)).toFixed(2)}× this baseline on this disk`,
          },
          file,
          samples.serial,
        ),
      ];
    });
  } finally {
    for (const store of stores.values()) await store.close();
  }
}

/** What one timed FileStore run did. */
interface GroupRun {
  readonly groups: number;
  readonly fsyncs: number;
  readonly saves: number;
  readonly ms: number;
}

/** "50 groups, 50 fsyncs, 32.0 saves per group, 2.20 ms per group". */
function describeGroups(g: GroupRun): string {
  return (
    `${g.groups} groups, ${g.fsyncs} fsyncs, ${(g.saves / Math.max(1, g.groups)).toFixed(1)} saves per group, ` +
    `${formatMs(g.ms / Math.max(1, g.groups))} per group`
  );
}

/** The run of median wall time. */
function medianRun<T extends { ms: number }>(runs: readonly T[]): T {
  return [...runs].sort((a, b) => a.ms - b.ms)[runs.length >> 1]!;
}

const fdatasyncAsync = promisify(fdatasync);

/**
 * The least a group commit can cost these writers: round after round, the
 * `writers` lines of that round (`JSON.stringify`) in one `write`, then one
 * `fdatasync` in the thread pool or on the event loop (`fsyncOn`), as
 * FileStore does it, with nothing else (no validation, no lock, no
 * integrity checksum, no promise per save). Returns the wall time in
 * milliseconds.
 */
async function groupCommitFloor(
  file: string,
  changeFor: (writer: number, save: number) => ChangeInput,
  writers: number,
  savesPerWriter: number,
  fsyncOn: FsyncOn,
): Promise<number> {
  const fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
  try {
    const start = now();
    for (let s = 0; s < savesPerWriter; s++) {
      let text = "";
      for (let w = 0; w < writers; w++) text += `${JSON.stringify(changeFor(w, s))}\n`;
      const buf = Buffer.from(text);
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      if (fsyncOn === FsyncOn.EventLoop) fdatasyncSync(fd);
      else await fdatasyncAsync(fd);
    }
    return now() - start;
  } finally {
    closeSync(fd);
  }
}
