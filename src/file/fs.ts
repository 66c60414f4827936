/**
 * File-system primitives of the file backend, written once and used by its
 * stores: whole reads and writes at a descriptor, the fdatasync after a
 * group write (where `fsyncOn` says), fsync of a directory, and the atomic
 * replacement of a whole file.
 */

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readSync,
  write,
  writeSync,
} from "node:fs";
import { open, readdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { TEMP_SUFFIX } from "./encoding.js";
import { type FileOperation, writeFailed } from "./errors.js";
import type { SyncPolicy } from "./options.js";

const writeAsync = promisify(write) as (
  fd: number,
  buffer: Buffer,
  offset: number,
  length: number,
  position: null,
) => Promise<{ bytesWritten: number }>;

/** `fdatasync(2)` in the thread pool. */
export const fdatasyncAsync: (fd: number) => Promise<void> = promisify(fdatasync);

/**
 * What a writer does after its synchronous `write(2)` of a group, before
 * the group's writes resolve: with `fsync`, the `fdatasync(2)` where the
 * store's `fsyncOn` option says (in the thread pool; or, `onEventLoop`,
 * synchronously before this returns, its error thrown). Unless the
 * fdatasync ran in the thread pool, the promise resolves on the event
 * loop's next turn: timers and I/O run between two group writes, so
 * writers that keep writing block the event loop one write (and fsync)
 * at a time, never for the whole run of their writes.
 */
export function afterGroupWrite(fd: number, fsync: boolean, onEventLoop: boolean): Promise<void> {
  if (fsync && !onEventLoop) return fdatasyncAsync(fd);
  if (fsync) fdatasyncSync(fd);
  return new Promise((resolve) => setImmediate(resolve));
}

/** Writes all of `buf` at the descriptor's position (a short write continues where it stopped). */
export async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await writeAsync(fd, buf, offset, buf.length - offset, null);
    offset += bytesWritten;
  }
}

/**
 * Writes all of `buf` at the descriptor's position, synchronously (a short
 * write continues where it stopped). A write to the page cache takes
 * microseconds: done on the event loop, it saves a thread-pool round trip.
 */
export function writeAllSync(fd: number, buf: Uint8Array): void {
  for (let offset = 0; offset < buf.length; ) {
    const written = writeSync(fd, buf, offset, buf.length - offset);
    // A file system that takes no byte and reports no error would make this loop spin forever.
    if (written === 0) throw new Error(`write(2) took none of ${buf.length - offset} bytes`);
    offset += written;
  }
}

/**
 * Reads up to `bytes` bytes at `position` into `buf` (which must hold
 * them), synchronously, continuing after short reads; returns how many it
 * read: fewer only where the file ends.
 * @throws system errors of reading the file
 */
export function readUpTo(fd: number, buf: Uint8Array, bytes: number, position: number): number {
  let got = 0;
  while (got < bytes) {
    const n = readSync(fd, buf, got, bytes - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** fsyncs a directory, so that a new, renamed or removed entry in it survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The temp files of this process's {@link writeFileAtomic} calls in flight. */
const atomicTemps = new Set<string>();

/** Whether process `pid` is alive (one of another user counts as alive). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temp files {@link writeFileAtomic} left in `dir` for the
 * files whose names `target` accepts, from writes that are gone: of a
 * process that is not alive, or of this process (a process started again
 * may have the pid of the one that crashed) but no write in flight; and,
 * either way, not written for `minAgeMs` (a worker thread of this process
 * has a pid of ours and a set of its own; a writer in another pid
 * namespace, or on another host, looks dead from here). Never the temp
 * file of a write of another live process. Names of earlier versions
 * (`<file>.<pid>.tmp`) are removed on the same rule.
 * @returns the number of files removed
 */
export async function removeStaleAtomicTemps(
  dir: string,
  target: (name: string) => boolean,
  minAgeMs = 60_000,
): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    const parts = name.slice(0, -TEMP_SUFFIX.length).split(".");
    const random = parts.length > 2 && /^[0-9a-f]{12}$/.test(parts[parts.length - 1] as string);
    const pid = Number(parts[parts.length - (random ? 2 : 1)]);
    const base = parts.slice(0, parts.length - (random ? 2 : 1)).join(".");
    if (!target(base) || !Number.isSafeInteger(pid) || pid <= 0) continue;
    const file = path.join(dir, name);
    if (pid === process.pid ? atomicTemps.has(file) : processAlive(pid)) continue;
    // Also old, whoever wrote it: a process that restarted may have the crashed one's pid, and a writer in another
    // pid namespace (a container sharing the directory) or on another host looks dead from here.
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || Date.now() - info.mtimeMs < minAgeMs) continue;
    try {
      await unlink(file);
      removed++;
    } catch {
      // removed by someone else
    }
  }
  return removed;
}

/**
 * Replaces `file` with `data` atomically: writes `<file>.<pid>.<random>.tmp`
 * (a name of its own, so that two writers of one file in a process, or
 * in its worker threads, never share one), fsyncs it, renames it over
 * `file` and fsyncs the directory. After a crash
 * the path holds the old content or the new one, never a mix. On failure
 * the temp file is removed and a `WriteFailedError` says which step
 * failed. A crash may leave it: the FileEventStore and the
 * FileReadModelStore remove stale `*.tmp` files when they open their
 * directory (which they lock); the FileSnapshotStore those of writers that
 * are gone ({@link removeStaleAtomicTemps}: it locks nothing).
 *
 * With `sync: "none"` both fsyncs are skipped: still atomic for a crash of
 * the process, not for one of the machine.
 * @returns the number of bytes written
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | readonly Uint8Array[],
  sync: SyncPolicy,
): Promise<number> {
  const parts = data instanceof Uint8Array ? [data] : data;
  const temp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`;
  let bytes = 0;
  let operation: FileOperation = "open";
  atomicTemps.add(temp);
  try {
    const handle = await open(temp, "wx");
    try {
      operation = "write";
      // writeFile writes all of a part (write(2) may write less), each after the previous one.
      for (const part of parts) {
        await handle.writeFile(part);
        bytes += part.byteLength;
      }
      operation = "fsync";
      if (sync === "fsync") await handle.sync();
    } finally {
      await handle.close();
    }
    operation = "rename";
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw writeFailed(operation, operation === "rename" ? file : temp, error, `${file} is unchanged`);
  } finally {
    atomicTemps.delete(temp);
  }
  try {
    if (sync === "fsync") fsyncDir(path.dirname(file));
  } catch (error) {
    throw writeFailed(
      "fsync",
      path.dirname(file),
      error,
      `${file} is replaced, its directory entry may not be durable yet`,
    );
  }
  return bytes;
}
