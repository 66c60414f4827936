/**
 * Compaction: rewrites a namespace file to its latest line per key,
 * atomically, without losing saves that happen meanwhile in this or
 * another process.
 *
 * 1. Under a shared lock, take a read descriptor and the size (whole
 *    writes only). Without any lock: find the winners; then, a few
 *    rounds, take the size again under a shared lock (only whole saves
 *    then: none in progress, none that a failed write could still cut
 *    off) and scan the lines saved since, so that the lines they
 *    supersede stay out of the new file too; write the winners,
 *    verbatim and in file order, to `<name>.<pid>.<tag>.tmp`; fdatasync.
 * 2. Catch up without the exclusive lock: up to a few times, take the
 *    size under a shared lock and append, verbatim, the lines written
 *    since to the temp file; fdatasync. Saves go on meanwhile, so the
 *    exclusive step has little left to do.
 * 3. Under the exclusive lock: if the path no longer is the file we read
 *    (another process compacted), give up; otherwise append, verbatim,
 *    the lines written since step 2, fsync the temp file, rename it over
 *    the data file and fsync the directory. Writers in other processes
 *    notice the new inode when they next take the lock.
 * 4. Without any lock: write the new file's hint (hint.ts: where each
 *    winner lies; files of `hintMinLines` winners or more), so that the
 *    next load reads only those lines and the ones appended after them. A hint is derived data: a crash before it
 *    is written costs that load a full read, nothing else.
 *
 * A crash before the rename leaves the old file (and a stale temp file,
 * removed by a later compaction once its process is gone); after it, the
 * new one. Both hold the
 * same state (minus expired tombstones in the new one).
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { CorruptionError } from "../index.js";
import type { WorkerError, WorkerInput } from "./compact-worker.js";
import { DATA_SUFFIX, TEMP_SUFFIX } from "./encoding.js";
import { type FileOperation, writeFailed } from "./errors.js";
import { LineError } from "./format.js";
import { fdatasyncAsync, processAlive, writeAll } from "./fs.js";
import { type Hint, removeHint, writeHint } from "./hint.js";
import type { HintSpans } from "./hint-spans.js";
import { CompactionStep, crashPoints } from "./internal.js";
import { completeLines, type LogStats, type NamespaceLog } from "./log.js";
import type { AutoCompactThresholds } from "./options.js";
import { type FileText, readText, type ScanContext } from "./reader.js";
import {
  CompactionAbandoned,
  checkStop,
  type NextSize,
  type WinnersInput,
  type WinnersResult,
  writeWinners,
} from "./winners.js";

/** Where a compaction's scan ran: a worker thread, or the main thread. */
export type ScanThread = "worker" | "main";

/** Options of {@link compactLog}. */
export interface CompactLogOptions {
  readonly ctx: ScanContext;
  /** A hint of the new file is written when it has at least this many winners. */
  readonly hintMinLines: number;
  /** Called under the shared lock when the snapshot the scan reads is taken. */
  readonly onSnapshot?: (() => void) | undefined;
  /** Drop tombstones older than this many ms (`Infinity`: keep them). */
  readonly tombstoneRetentionMs: number;
  /** Current time in ms (for tombstone retention). */
  readonly now: number;
  /** Automatic compaction: only when the file has more than `max(minLines, ratio × keys)` lines. */
  readonly worth?: { readonly minLines: number; readonly ratio: number } | undefined;
  /** Told about damaged lines skipped (with `ctx.skip`). */
  readonly onSkipped?: ((lines: number[]) => void) | undefined;
  /** Files of at least this many bytes are scanned in a worker thread. */
  readonly workerMinBytes: number;
  /** Told where the scan ran (`"worker"` also when the worker reported an error). */
  readonly onScan?: ((thread: ScanThread) => void) | undefined;
  /** The module the worker thread runs. @default compact-worker.js next to this module */
  readonly workerUrl?: URL | undefined;
  /** The step at which to kill the process (crash tests; see internal.ts). */
  readonly crashAt?: CompactionStep | undefined;
  /** Set to 1 to abandon the compaction before its exclusive step (shared memory: workers see it). */
  readonly stop?: Int32Array | undefined;
  /** `stop` applies to files of at least this many bytes (smaller ones are compacted in moments). */
  readonly stopMinBytes?: number | undefined;
}

/** Rounds of scanning the lines saved while the winners were found (step 1). */
const CATCH_UP_SCAN_ROUNDS = 3;
/** Rounds of copying, without the exclusive lock, the lines appended while the winners were written. */
const CATCH_UP_ROUNDS = 4;
/** Fewer new bytes than this are left for the exclusive step. */
const CATCH_UP_MIN_BYTES = 256 * 1024;

/**
 * The nice value of the worker thread that scans for an automatic
 * compaction (Linux; see compact-worker.ts): background work yields the
 * CPU to the thread serving saves (and to other processes) when they
 * compete for a core. Weighted by the scheduler at about a tenth of a
 * thread of nice 0, it still progresses on a busy machine; a compaction
 * the caller asked for (`compact()`) runs at normal priority.
 */
export const AUTO_COMPACTION_NICE = 10;

/**
 * Whether an automatic compaction of a file with `stats` and an estimated
 * `keys` keys is due: when it holds more than `max(minLines, ratio ×
 * keys)` lines, not counting those the last compaction copied as they
 * were (they were counted when saved). So the next compaction waits for
 * `ratio − 1` new lines per key after the last one's live lines and
 * copied tail, however long that tail: the bytes compactions read and
 * write stay a bounded multiple of the bytes saved (docs/file-store.md).
 */
export function autoCompactionDue(stats: LogStats, keys: number, auto: AutoCompactThresholds): boolean {
  return stats.lines - stats.carried > Math.max(auto.minLines, auto.ratio * keys);
}

/** What a compaction did. */
export type CompactOutcome = "compacted" | "missing" | "not-worth-it" | "raced" | "abandoned";

/** Compacts the file of `log` (see the module comment). */
export async function compactLog(log: NamespaceLog, options: CompactLogOptions): Promise<CompactOutcome> {
  let linesAtSnapshot = 0;
  const snap = await log.withLock("sh", async () => {
    linesAtSnapshot = log.stats.lines;
    options.onSnapshot?.();
    return log.openSnapshot();
  });
  if (!snap) return "missing";
  const crashPoint = crashPoints(options.crashAt);
  const stop = snap.size >= (options.stopMinBytes ?? 0) ? options.stop : undefined;
  const dir = path.dirname(log.file);
  const base = path.basename(log.file, DATA_SUFFIX);
  const temp = claimTemp(dir, base);
  let tempFd = -1;
  let renamed = false;
  let newFile: { readonly ino: number; readonly dev: number } | undefined;
  try {
    const input: WinnersInput = {
      fd: snap.fd,
      size: snap.size,
      ctx: options.ctx,
      temp,
      expiredBefore: options.now - options.tombstoneRetentionMs,
      worth: options.worth,
      yielding: true,
      crashAt: options.crashAt,
      catchUpRounds: CATCH_UP_SCAN_ROUNDS,
      stop,
    };
    // The size for a catch-up round of the scan, under the shared lock; -1 once the file was replaced.
    const linesAtSize = new Map<number, number>();
    const nextSize: NextSize = () =>
      log.withLock("sh", async () => {
        const current = statSync(log.file, { throwIfNoEntry: false });
        if (!current || current.ino !== snap.ino || current.dev !== snap.dev) return -1;
        const size = completeLines(snap.fd, fstatSync(snap.fd).size);
        linesAtSize.set(size, log.stats.lines);
        return size;
      });
    const found = await findWinners(input, nextSize, options);
    // The lines the store counted when the scan's last size was taken.
    linesAtSnapshot = linesAtSize.get(found.completeBytes) ?? linesAtSnapshot;
    if (found.skipped.length > 0) options.onSkipped?.(found.skipped);
    log.scanned(found.lines, found.keys, log.stats.lines - linesAtSnapshot);
    if (found.kept < 0) return "not-worth-it";
    removeStaleTemps(dir, base);
    const kept = found.kept;
    // Read-write: the hint of the new file (step 4) reads samples of it.
    tempFd = openSync(temp, constants.O_RDWR | constants.O_APPEND);
    const fd = tempFd;
    let tailLines = 0;
    const copy = async (from: number, to: number): Promise<number> => {
      const tail: FileText = await readText(snap.fd, to, options.ctx.chunkBytes, from);
      for (const t of tail.chunks) {
        for (let i = t.indexOf(10); i >= 0; i = t.indexOf(10, i + 1)) tailLines++;
        await writeAll(fd, t);
      }
      return tail.completeBytes;
    };
    // Catch up without the exclusive lock (saves go on meanwhile): copy the lines appended
    // since the snapshot up to a size taken under the shared lock (whole saves only: none in
    // progress, none to be cut off again), until little is left for the exclusive step.
    let copied = found.completeBytes;
    for (let round = 0; round < CATCH_UP_ROUNDS; round++) {
      checkStop(stop);
      const size = await log.withLock("sh", async () => {
        const current = statSync(log.file, { throwIfNoEntry: false });
        if (!current || current.ino !== snap.ino || current.dev !== snap.dev) return -1;
        return completeLines(snap.fd, fstatSync(snap.fd).size);
      });
      if (size - copied < CATCH_UP_MIN_BYTES) break;
      copied = await copy(copied, size);
    }
    if (copied > found.completeBytes) await fdatasyncAsync(fd);
    checkStop(stop);

    const outcome = await log.withLock("ex", async () => {
      const current = statSync(log.file, { throwIfNoEntry: false });
      if (!current || current.ino !== snap.ino || current.dev !== snap.dev) {
        unlinkSync(temp);
        return "raced" as const;
      }
      // Lines appended since the catch-up, after cutting off a torn tail a crashed writer left.
      const size = log.prepareWrite();
      if (size < copied) {
        unlinkSync(temp);
        return "raced" as const;
      }
      await copy(copied, size);
      crashPoint(CompactionStep.AfterTempWrite);
      await fdatasyncAsync(tempFd);
      crashPoint(CompactionStep.AfterTempFsync);
      const newSize = fstatSync(tempFd).size;
      renameSync(temp, log.file);
      renamed = true;
      // The hint named the old file (its inode): it would be refused anyway, so make no one read it.
      removeHint(log.file);
      crashPoint(CompactionStep.AfterRename);
      await fsyncDirAsync(dir);
      crashPoint(CompactionStep.AfterDirFsync);
      log.replaced(newSize, { lines: kept + tailLines, keys: kept, carried: tailLines });
      const st = fstatSync(tempFd);
      newFile = { ino: st.ino, dev: st.dev };
      return "compacted" as const;
    });
    if (newFile && found.keptLengths && found.kept > 0 && found.kept >= options.hintMinLines) {
      await writeHint(log.file, log.namespace, tempFd, newFile, hintOfWinners(found.keptLengths, found.keptSpans));
    }
    return outcome;
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // already renamed, gone, or never made
    }
    if (error instanceof CompactionAbandoned) return "abandoned";
    // The old file is untouched (the rename is the last step): a system error says which file could not be written.
    throw (error as NodeJS.ErrnoException | undefined)?.code === undefined
      ? error
      : writeFailed(
          operationOf(error),
          renamed ? path.dirname(log.file) : temp,
          error,
          renamed
            ? `the compacted file of ${log.file} is in place, its directory entry may not be durable yet`
            : `the compaction of ${log.file} was abandoned; that file is unchanged`,
        );
  } finally {
    if (tempFd >= 0) closeSync(tempFd);
    closeSync(snap.fd);
    liveTemps.delete(temp);
  }
}

/**
 * fsyncs `dir` (after the rename: the new file's entry survives a crash) in
 * the thread pool, so that the event loop serves other namespaces meanwhile.
 */
async function fsyncDirAsync(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The file operation a system error of a compaction comes from. */
function operationOf(error: unknown): FileOperation {
  const syscall = (error as NodeJS.ErrnoException).syscall ?? "";
  if (syscall.includes("sync")) return "fsync";
  if (syscall === "rename") return "rename";
  if (syscall === "open") return "open";
  if (syscall.includes("truncate")) return "truncate";
  return "write";
}

/**
 * Temp files of this process's running compactions. Several stores of one
 * process may compact one namespace at once: each gets its own temp file,
 * and none removes another's.
 */
const liveTemps = new Set<string>();

/**
 * A temp file name no running compaction of this process uses:
 * `<base>.<pid>.<tag>.tmp`, the tag the smallest free number in base 36
 * (one character unless 36 compactions of one namespace run at once), so
 * the name stays within NAME_MAX next to a 240-character base. The pid
 * keeps processes apart, {@link liveTemps} compactions within this one.
 */
function claimTemp(dir: string, base: string): string {
  for (let n = 0; ; n++) {
    const temp = path.join(dir, `${base}.${process.pid}.${n.toString(36)}.tmp`);
    if (liveTemps.has(temp)) continue;
    liveTemps.add(temp);
    return temp;
  }
}

/**
 * Removes the temp files of `base` left by compactions that are gone: of a
 * process that is not alive, or of this process but no running compaction
 * (a failure that could not remove its file). Never a live compaction's
 * temp file: another process's while it lives, or one in {@link liveTemps}.
 * Also removes the `<base>.<pid>.tmp` files of earlier versions on the same rule.
 */
function removeStaleTemps(dir: string, base: string): void {
  const prefix = `${base}.`;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) continue;
    const parts = name.slice(prefix.length, -TEMP_SUFFIX.length).split(".");
    if (parts.length > 2) continue;
    const pid = Number(parts[0]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const file = path.join(dir, name);
    if (pid === process.pid ? liveTemps.has(file) : processAlive(pid)) continue;
    try {
      unlinkSync(file);
    } catch {
      // removed by someone else
    }
  }
}

/**
 * The hint of a compacted file whose first lines are the winners of
 * `lengths` (each without its `\n`), one after the other, with the span
 * checksums computed as they were written (else `writeHint` reads them
 * back).
 */
export function hintOfWinners(lengths: Uint32Array, spans?: HintSpans): Hint {
  const n = lengths.length;
  const offsets = new Float64Array(n);
  const lineNumbers = new Uint32Array(n);
  let at = 0;
  for (let w = 0; w < n; w++) {
    offsets[w] = at;
    lineNumbers[w] = w;
    at += (lengths[w] as number) + 1;
  }
  return { dataBytes: at, lines: n, offsets, lengths, lineNumbers, ...(spans ? { spans } : {}) };
}

/** Step 1 ({@link writeWinners}): in a worker thread for large files, else here. */
async function findWinners(
  input: WinnersInput,
  nextSize: NextSize,
  options: CompactLogOptions,
): Promise<WinnersResult> {
  if (input.size >= options.workerMinBytes) {
    let result: WinnersResult | undefined;
    try {
      const nice = options.worth ? AUTO_COMPACTION_NICE : 0;
      result = await inWorker({ ...input, yielding: false, nice }, nextSize, options.workerUrl ?? WORKER_URL);
    } catch (error) {
      options.onScan?.("worker"); // the worker scanned, and found damage
      throw error;
    }
    if (result) {
      options.onScan?.("worker");
      return result;
    }
  }
  options.onScan?.("main");
  return writeWinners(input, nextSize);
}

/** The worker module next to this one (in the built package). */
const WORKER_URL = new URL("./compact-worker.js", import.meta.url);

/**
 * Runs {@link writeWinners} in a worker thread. `undefined` when no worker
 * could run it (e.g. sources loaded by a bundler or a loader a worker does
 * not inherit): the caller then does it on this thread.
 */
function inWorker(input: WorkerInput, nextSize: NextSize, url: URL): Promise<WinnersResult | undefined> {
  return new Promise((resolvePromise, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(url, { workerData: input });
    } catch {
      resolvePromise(undefined);
      return;
    }
    let settled = false;
    const onMessage = (message: { result?: WinnersResult; error?: WorkerError; sizeRequest?: true }): void => {
      if (message.sizeRequest) {
        // A catch-up round: the size under the shared lock (-1, which ends the rounds, if that fails).
        nextSize().then(
          (size) => worker.postMessage({ size }),
          () => worker.postMessage({ size: -1 }),
        );
        return;
      }
      settled = true;
      worker.off("message", onMessage);
      if (message.result) resolvePromise(message.result);
      else reject(rebuildError(message.error));
    };
    worker.on("message", onMessage);
    // Failing to start (module not found, e.g. sources run through a loader): do it on the main thread.
    worker.once("error", () => {
      if (!settled) resolvePromise(undefined);
      settled = true;
    });
    worker.once("exit", () => {
      if (!settled) resolvePromise(undefined);
      settled = true;
    });
  });
}

function rebuildError(error: WorkerError | undefined): Error {
  const c = error?.corruption;
  if (error?.abandoned) return new CompactionAbandoned();
  if (error?.system) {
    const rebuilt: NodeJS.ErrnoException = new Error(error.message);
    rebuilt.code = error.system.code;
    if (error.system.syscall !== undefined) rebuilt.syscall = error.system.syscall;
    return rebuilt;
  }
  if (!c) return new Error(error?.message ?? "compaction worker failed");
  const prefix = `${c.file}${c.line === undefined ? "" : `:${c.line}`}: `;
  const reason = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return new CorruptionError(c.file, c.line, reason, { cause: new LineError(c.cause) });
}
