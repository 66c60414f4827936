/**
 * Compaction: rewrites a namespace file to its latest line per key,
 * atomically, without losing saves that happen meanwhile in this or
 * another process.
 *
 * 1. Under a shared lock, take a read descriptor and the size (whole
 *    writes only). Without any lock: find the winners and write them,
 *    verbatim and in file order, to `<name>.<pid>.tmp`; fdatasync.
 * 2. Under the exclusive lock: if the path no longer is the file we read
 *    (another process compacted), give up; otherwise append, verbatim,
 *    the lines written since step 1, fsync the temp file, rename it over
 *    the data file and fsync the directory. Writers in other processes
 *    notice the new inode when they next take the lock.
 *
 * A crash before the rename leaves the old file (and a stale temp file,
 * removed by the next compaction); after it, the new one. Both hold the
 * same state (minus expired tombstones in the new one).
 */
import {
  closeSync,
  constants,
  fdatasync,
  fstatSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  write,
} from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { ChangeType } from "../core/change.js";
import { fsyncDir, type NamespaceLog } from "./log.js";
import { type FileText, readText, resolve, type ScanContext } from "./reader.js";

const writeAsync = promisify(write) as (
  fd: number,
  buffer: Buffer,
  offset: number,
  length: number,
  position: null,
) => Promise<{ bytesWritten: number }>;
const fdatasyncAsync = promisify(fdatasync);

/** The steps of a compaction, for the crash tests (`STATELOG_TEST_CRASH_AT=<step>`). */
export const CompactionStep = {
  BeforeTempWrite: "before-temp-write",
  AfterTempWrite: "after-temp-write",
  AfterTempFsync: "after-temp-fsync",
  AfterRename: "after-rename",
  AfterDirFsync: "after-dir-fsync",
} as const;
export type CompactionStep = (typeof CompactionStep)[keyof typeof CompactionStep];

/** Test hook: dies by SIGKILL at `step` when `STATELOG_TEST_CRASH_AT` names it. */
function crashPoint(step: CompactionStep): void {
  if (process.env.STATELOG_TEST_CRASH_AT === step) process.kill(process.pid, "SIGKILL");
}

/** Options of {@link compactLog}. */
export interface CompactLogOptions {
  readonly ctx: ScanContext;
  /** Drop tombstones older than this many ms. @default keep them */
  readonly tombstoneRetentionMs?: number | undefined;
  /** Current time in ms (for tombstone retention). */
  readonly now: number;
  /** Compact only if this says so, given the scanned lines and keys (automatic compaction). */
  readonly worthIt?: ((lines: number, keys: number) => boolean) | undefined;
  /** Told about damaged lines skipped (with `ctx.skip`). */
  readonly onSkipped?: ((lines: number[]) => void) | undefined;
}

/** What a compaction did. */
export type CompactOutcome = "compacted" | "missing" | "not-worth-it" | "raced";

/** Compacts the file of `log` (see the module comment). */
export async function compactLog(log: NamespaceLog, options: CompactLogOptions): Promise<CompactOutcome> {
  let linesAtSnapshot = 0;
  const snap = await log.withLock("sh", async () => {
    linesAtSnapshot = log.stats.lines;
    return log.openSnapshot();
  });
  if (!snap) return "missing";
  const dir = path.dirname(log.file);
  const base = path.basename(log.file, ".jsonl");
  const temp = path.join(dir, `${base}.${process.pid}.tmp`);
  let tempFd = -1;
  try {
    const text = await readText(snap.fd, snap.size);
    const resolved = await resolve(text.chunks, options.ctx, false, () => new Promise((r) => setImmediate(r)));
    if (resolved.skipped.length > 0) options.onSkipped?.(resolved.skipped);
    const lines = resolved.scan.lines;
    log.scanned(lines, resolved.decoded.length, log.stats.lines - linesAtSnapshot);
    if (options.worthIt && !options.worthIt(lines, resolved.decoded.length)) return "not-worth-it";

    removeStaleTemps(dir, base);
    const expiredBefore =
      options.tombstoneRetentionMs === undefined
        ? Number.NEGATIVE_INFINITY
        : options.now - options.tombstoneRetentionMs;
    tempFd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    crashPoint(CompactionStep.BeforeTempWrite);
    let kept = 0;
    // Winning lines are copied byte for byte into one buffer, written out whenever it fills.
    const { scan } = resolved;
    let out = Buffer.allocUnsafe(OUT_BYTES);
    let used = 0;
    for (let i = 0; i < resolved.decoded.length; i++) {
      const change = resolved.decoded[i]!;
      if (change.changeType === ChangeType.Unset && change.timestamp.getTime() < expiredBefore) continue;
      const w = resolved.positions[i]!;
      const chunk = scan.chunks[scan.chunkOf[w]!]!;
      const start = scan.starts[w]!;
      const end = scan.ends[w]!;
      const n = end - start + 1;
      if (used + n > out.length) {
        await writeAll(tempFd, out.subarray(0, used));
        used = 0;
        if (n > out.length) out = Buffer.allocUnsafe(n);
      }
      chunk.copy(out, used, start, end);
      out[used + n - 1] = 10;
      used += n;
      kept++;
    }
    await writeAll(tempFd, out.subarray(0, used));
    await fdatasyncAsync(tempFd);

    return await log.withLock("ex", async () => {
      const current = statSync(log.file, { throwIfNoEntry: false });
      if (!current || current.ino !== snap.ino || current.dev !== snap.dev) {
        unlinkSync(temp);
        return "raced" as const;
      }
      // Lines appended since the snapshot, after cutting off a torn tail a crashed writer left.
      const size = log.prepareWrite();
      const tail: FileText = await readText(snap.fd, size, text.completeBytes);
      let tailLines = 0;
      for (const t of tail.chunks) {
        for (let i = t.indexOf(10); i >= 0; i = t.indexOf(10, i + 1)) tailLines++;
        await writeAll(tempFd, t);
      }
      crashPoint(CompactionStep.AfterTempWrite);
      await fdatasyncAsync(tempFd);
      crashPoint(CompactionStep.AfterTempFsync);
      const newSize = fstatSync(tempFd).size;
      renameSync(temp, log.file);
      crashPoint(CompactionStep.AfterRename);
      fsyncDir(dir);
      crashPoint(CompactionStep.AfterDirFsync);
      log.replaced(newSize, { lines: kept + tailLines, keys: kept });
      return "compacted" as const;
    });
  } catch (error) {
    if (tempFd >= 0) {
      try {
        unlinkSync(temp);
      } catch {
        // already renamed or gone
      }
    }
    throw error;
  } finally {
    if (tempFd >= 0) closeSync(tempFd);
    closeSync(snap.fd);
  }
}

/** Bytes of winning lines gathered before each write of the temp file. */
const OUT_BYTES = 4 * 1024 * 1024;

async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await writeAsync(fd, buf, offset, buf.length - offset, null);
    offset += bytesWritten;
  }
}

/** Removes `<base>.<pid>.tmp` files of compactions whose process is gone (or is this one). */
function removeStaleTemps(dir: string, base: string): void {
  const prefix = `${base}.`;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith(".tmp")) continue;
    const pid = Number(name.slice(prefix.length, -".tmp".length));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (pid !== process.pid && processAlive(pid)) continue;
    try {
      unlinkSync(path.join(dir, name));
    } catch {
      // removed by someone else
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
