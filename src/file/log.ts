/**
 * One namespace's file: the appending writer with group commit, the lock
 * (in-process mutex + `flock` on `<name>.lock`), the checks a writer makes
 * after taking the lock, and consistent snapshots for readers.
 *
 * Writing a group (under the lock):
 * 1. if the data file was replaced (compaction in any process renamed a
 *    new file in: the inode of our descriptor differs from the path's),
 *    reopen it;
 * 2. if its size is not what our last write left, look at its end: a
 *    last line without `\n` is a torn line from a writer that crashed, and
 *    is cut off (`ftruncate`);
 * 3. one `write(2)` of every pending save's lines, then one `fdatasync`
 *    (`sync: "fsync"`; in the thread pool, or on the event loop's thread
 *    with `fsyncOn: "event-loop"`), then every save of the group resolves
 *    (when no fsync ran in the thread pool, after a turn of the event loop:
 *    see `afterGroupWrite`).
 *
 * A failed write or fsync rejects the group with a `WriteFailedError`,
 * cuts its bytes back off, and closes the descriptor: after a failed
 * fsync the kernel may have dropped the dirty pages and marked them clean,
 * so a retried fsync on that descriptor could "succeed" for data that is
 * gone. The next write opens the file anew and checks it from disk (its
 * size against what the last good write left, and its tail) before it
 * writes, as after a write by another process.
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import path from "node:path";
import { CorruptionError, messageOf, UnavailableError } from "../index.js";
import { ByteSink } from "./encode.js";
import { DATA_SUFFIX, LOCK_SUFFIX } from "./encoding.js";
import { writeFailed } from "./errors.js";
import { afterGroupWrite, fsyncDir, writeAllSync } from "./fs.js";
import {
  closeSharedLock,
  flockAcquire,
  flockRelease,
  type LockMode,
  Mutex,
  openSharedLock,
  type SharedLock,
} from "./lock.js";

/** How much a namespace file holds, as far as this process knows. */
export interface LogStats {
  /** Lines in the file (exact after a scan; estimated for other processes' writes). */
  lines: number;
  /** Distinct keys (entities and tombstones) at the last scan. */
  keys: number;
  /**
   * Lines of `lines` that this process's last compaction of the file
   * copied as they were (saved while it ran): automatic compaction counts
   * them once, when they were saved, not again towards the next one.
   */
  carried: number;
}

/**
 * What the owner of a log learns about its groups, synchronously: each
 * call happens before the group's saves resolve (or reject), so that
 * whatever it starts is in place when the callers continue.
 */
export interface GroupEvents {
  /** A save made a new group (the first of the next write): the log is in use until {@link settled}. */
  started(log: NamespaceLog): void;
  /** The group's lines are written (and fsynced): its saves resolve next. */
  written(log: NamespaceLog): void;
  /** The group resolved or failed: the log is no longer in use for it. */
  settled(log: NamespaceLog): void;
}

/**
 * The saves queued for the next group write: their lines in call order,
 * encoded into one {@link ByteSink}, and ONE promise that settles them all
 * (a round of 32 saves makes one resolver, not 32), resolved after the
 * write and fsync, or rejected with the group's error.
 */
class Group {
  readonly sink = new ByteSink();
  lines = 0;
  saves = 0;
  done: Promise<void> = Promise.resolve();
  resolve: () => void = () => undefined;
  reject: (error: unknown) => void = () => undefined;

  /** Makes this group empty, with a new promise. */
  reset(): this {
    this.sink.length = 0;
    this.lines = 0;
    this.saves = 0;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    return this;
  }
}

/**
 * Settled groups, reused by the next groups of any namespace with their
 * buffers (a group write copies its bytes to the page cache, after which
 * its buffer is free). At most {@link SPARE_GROUPS} are kept, with a
 * buffer of at most {@link SPARE_GROUP_BYTES} each (a large batch's is
 * let go). Keeping some alive also keeps the JIT's code for them valid: the
 * shape of an object that no live object has any more is dropped by a full
 * garbage collection, and the optimised code that relied on it with it.
 */
const spareGroups: Group[] = [new Group()];
const SPARE_GROUPS = 8;
const SPARE_GROUP_BYTES = 256 * 1024;

function takeGroup(): Group {
  return (spareGroups.pop() ?? new Group()).reset();
}

function giveBackGroup(group: Group): void {
  if (spareGroups.length < SPARE_GROUPS && group.sink.buffer.length <= SPARE_GROUP_BYTES) spareGroups.push(group);
}

/** A read-only descriptor on the file as it was at one moment, with its size then. */
export interface Snapshot {
  readonly fd: number;
  /** Bytes of whole lines (a torn last line left out). */
  readonly size: number;
  /** The file's size and modification time under the lock, a torn last line included. */
  readonly rawSize: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly dev: number;
}

/** Creates `dir` (and its parents below `root`), fsyncing each parent that got a new entry. */
export function ensureDir(root: string, dir: string): void {
  if (dir === root || statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return;
  ensureDir(root, path.dirname(dir));
  try {
    mkdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  fsyncDir(path.dirname(dir));
}

/** The file of one namespace and its writer. */
export class NamespaceLog {
  /** This store's own serialisation (close waits on it); the shared lock's mutex serialises the process. */
  readonly mutex = new Mutex();
  readonly stats: LogStats = { lines: 0, keys: 0, carried: 0 };
  /** What this log did: saves written, group writes, fsyncs. */
  readonly counters = { saves: 0, groups: 0, fsyncs: 0 };
  #lock: SharedLock | undefined;
  #fd = -1;
  #ino = -1;
  #dev = -1;
  /** Size our last write (or check) left the file at; -1 when unknown. */
  #expectedSize = -1;
  #bytesPerLine = 200;
  /** Whether `stats.lines` counts the lines that were in the file before this process wrote. */
  #statsKnown = false;
  /** The group the next saves join; `undefined` until a save makes one. */
  #pending: Group | undefined;
  #flushing: Promise<void> | undefined;
  /** The data file as {@link release} left it (inode and size, -1 if unknown), to tell on reopening whether `stats` still hold. */
  #released: { readonly ino: number; readonly dev: number; readonly size: number } | undefined;
  /** Operations of the store using this log now (saves, loads, compactions): it is not released meanwhile. */
  users = 0;

  /**
   * @param root the store directory
   * @param file the data file's path
   * @param sync fdatasync after every group write
   * @param fsyncOnEventLoop that fdatasync runs on the event loop's thread (else in the thread pool)
   * @param events told when a group starts, is written, and settles
   */
  constructor(
    readonly namespace: string,
    readonly root: string,
    readonly file: string,
    readonly sync: boolean,
    readonly fsyncOnEventLoop: boolean,
    readonly events?: GroupEvents,
  ) {}

  /** The lock file: `<name>.lock` next to `<name>.jsonl`. */
  get lockFile(): string {
    return this.file.slice(0, -DATA_SUFFIX.length) + LOCK_SUFFIX;
  }

  /**
   * Queues lines to be written with the next group: `encode` appends them
   * (whole lines) to the group's bytes and returns how many it appended.
   * Resolves once they are written (and fsynced), or rejects with the
   * group's error: each save gets a promise of its own, derived from the
   * group's (so that a failed save nobody awaits is still reported as an
   * unhandled rejection). Queued synchronously: call order is write
   * order. When `encode` throws, nothing of it is queued.
   */
  append(encode: (sink: ByteSink) => number): Promise<void> {
    let group = this.#pending;
    if (!group) {
      group = takeGroup();
      this.#pending = group;
      this.#flushing ??= this.#flushLoop();
      this.events?.started(this);
    }
    const { sink } = group;
    const start = sink.length;
    try {
      group.lines += encode(sink);
    } catch (error) {
      sink.length = start;
      throw error;
    }
    group.saves++;
    return group.done.then();
  }

  /** Resolves when nothing is queued or being written. */
  async idle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /**
   * Writes groups while saves are queued. Before it takes a group it waits
   * until the microtask queue has drained ({@link settled}): the writers
   * that the previous group's resolution woke up, and the callers of saves
   * made in the same tick, queue their next saves from promise
   * continuations, however many `await`s deep; they join this group
   * instead of splitting the round into a small group and a late one (two
   * fsyncs where one does). Saves that arrive while a group is written and
   * fsynced wait and form the next group together.
   */
  async #flushLoop(): Promise<void> {
    try {
      for (;;) {
        await settled();
        if (!this.#pending) break;
        await this.withLock("ex", async () => {
          // Taken under the lock: saves made while it was awaited join this group.
          const group = this.#pending;
          this.#pending = undefined;
          if (!group) return;
          if (group.saves === 0) {
            // Its only save failed to encode (and threw to its caller): nothing to write.
            this.#settle(group);
            return;
          }
          try {
            await this.#writeGroup(group);
          } catch (error) {
            this.#settle(group, { error });
            return;
          }
          this.events?.written(this);
          this.#settle(group);
        }).catch((error: unknown) => {
          // The lock could not be taken (or released after the previous group): the queued saves fail with its error.
          const group = this.#pending;
          this.#pending = undefined;
          if (group) this.#settle(group, { error });
        });
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Runs `fn` holding this process's mutex and the OS lock (`ex` for
   * writers, `sh` for readers) on the lock file, opened (created if
   * missing) the first time. On read-only storage without the lock file a
   * reader runs without the OS lock (nobody can write there), and the
   * next use tries to open the lock file again; a writer never goes on
   * without it.
   */
  withLock<T>(mode: LockMode, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(() => {
      this.#lock ??= openSharedLock(this.lockFile);
      const lock = this.#lock;
      return lock.mutex.run(async () => {
        if (lock.fd < 0) lock.fd = openLockFile(this.root, this.file, this.lockFile, mode);
        if (lock.fd < 0) return await fn();
        await flockAcquire(lock.fd, mode);
        try {
          return await fn();
        } finally {
          flockRelease(lock.fd);
        }
      });
    });
  }

  /**
   * Under the `ex` lock: makes the data descriptor refer to the current
   * file (creating it) and cuts off a torn last line. Returns the size.
   */
  prepareWrite(): number {
    const onDisk = statSync(this.file, { throwIfNoEntry: false });
    if (this.#fd >= 0 && (!onDisk || onDisk.ino !== this.#ino || onDisk.dev !== this.#dev)) {
      // Another process compacted (or removed) the file: what we knew about it is gone.
      this.#closeData();
      this.#expectedSize = -1;
      this.#statsKnown = false;
      this.stats.keys = 0;
      this.stats.carried = 0;
    }
    let known = this.#expectedSize;
    // The path's size is our descriptor's while both name the same inode (checked above): no fstat then.
    let size = onDisk?.size ?? 0;
    if (this.#fd < 0) {
      try {
        if (!onDisk) ensureDir(this.root, path.dirname(this.file));
        this.#fd = openSync(this.file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o644);
        if (!onDisk) fsyncDir(path.dirname(this.file));
      } catch (error) {
        this.#closeData();
        throw writeFailed("open", this.file, error);
      }
      const st = fstatSync(this.#fd);
      this.#ino = st.ino;
      this.#dev = st.dev;
      const reopened = this.#reopened(st.ino, st.dev, st.size);
      if (known < 0) known = reopened;
      size = st.size;
    }
    if (size === this.#expectedSize) return size;
    // Always checked after a reopen (expectedSize is -1 then): a torn tail may have appeared while the file was closed.
    let repaired: number;
    try {
      repaired = repairTail(this.#fd, size);
    } catch (error) {
      this.#closeData();
      throw writeFailed("truncate", this.file, error);
    }
    if (known >= 0 && repaired > known) {
      this.stats.lines += Math.round((repaired - known) / this.#bytesPerLine);
    }
    this.#expectedSize = repaired;
    return repaired;
  }

  /**
   * Resolves every save of `group` (or rejects each with `failure.error`),
   * then tells {@link GroupEvents.settled}. A group without saves (its only
   * save failed to encode) is resolved: no caller holds its promise, and a
   * rejection nobody handles would end the process.
   */
  #settle(group: Group, failure?: { readonly error: unknown }): void {
    if (failure && group.saves > 0) group.reject(failure.error);
    else group.resolve();
    giveBackGroup(group);
    this.events?.settled(this);
  }

  async #writeGroup(group: Group): Promise<void> {
    const before = this.prepareWrite();
    const { lines } = group;
    const buf = group.sink.bytes();
    let operation: "write" | "fsync" = "write";
    try {
      // A write to the page cache takes microseconds: done here, it saves a thread-pool round trip per group.
      writeAllSync(this.#fd, buf);
      operation = "fsync";
      await afterGroupWrite(this.#fd, this.sync, this.fsyncOnEventLoop);
      if (this.sync) this.counters.fsyncs++;
    } catch (error) {
      // The saves of this group fail: take their lines back out, so that none of them shows up later.
      let detail: string | undefined;
      try {
        ftruncateSync(this.#fd, before);
      } catch (truncateError) {
        detail = `its lines could not be cut off (${(truncateError as Error).message}): they may show up on a later load`;
      }
      // Never fsync this descriptor again: the next write reopens the file and checks it from disk.
      this.#expectedSize = -1;
      try {
        this.#closeData();
      } catch {
        this.#fd = -1;
      }
      throw writeFailed(operation, this.file, error, detail);
    }
    this.#expectedSize = before + buf.length;
    this.counters.saves += group.saves;
    this.counters.groups++;
    this.#bytesPerLine = Math.max(1, Math.round(buf.length / Math.max(1, lines)));
    if (this.#statsKnown) {
      this.stats.lines += lines;
    } else {
      // First write to a file we have not scanned: estimate its lines from its size.
      this.stats.lines = Math.round(before / this.#bytesPerLine) + lines;
      this.#statsKnown = true;
    }
  }

  /**
   * Under a lock: a read-only descriptor on the current file and its size
   * (which covers whole writes only). `undefined` when there is no file.
   */
  openSnapshot(): Snapshot | undefined {
    let fd: number;
    try {
      fd = openSync(this.file, constants.O_RDONLY);
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException;
      if (code === "ENOENT") return undefined;
      throw new UnavailableError(`cannot read ${this.file} (${code ?? messageOf(error)})`, { cause: error });
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      const what = st.isDirectory() ? "a directory" : "not a regular file";
      throw new CorruptionError(this.file, undefined, `${what} where the namespace's file belongs: move it away`);
    }
    // Up to the last `\n` only: a writer may cut a torn tail and write over its bytes after we unlock.
    return { fd, size: completeLines(fd, st.size), rawSize: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
  }

  /** After a scan of the whole file: exact counts (plus `linesSince`, written after the scan's snapshot). */
  scanned(lines: number, keys: number, linesSince: number): void {
    // Counted by the scan: not to be counted again from the size at release.
    this.#released = undefined;
    this.stats.lines = lines + linesSince;
    this.stats.keys = keys;
    this.#statsKnown = true;
  }

  /** After compaction renamed a new file of `size` bytes in (under the `ex` lock): forget the old descriptor. */
  replaced(size: number, stats: LogStats): void {
    this.#closeData();
    this.#expectedSize = size;
    this.scanned(stats.lines, stats.keys, 0);
    this.stats.carried = stats.carried;
  }

  /**
   * After opening the data file anew once {@link release} closed it: the
   * size the file had then when it still is that file (its lines counted
   * in `stats`; -1 if it was not known), else -1 and `stats` are
   * forgotten (another process compacted or removed it meanwhile). A file
   * of the same inode that is smaller is not the same file either (the
   * inode number was reused); one that is not smaller may still be, which
   * only makes the line count (an estimate for automatic compaction) off.
   */
  #reopened(ino: number, dev: number, size: number): number {
    const released = this.#released;
    this.#released = undefined;
    if (!released) return -1;
    if (released.ino === ino && released.dev === dev && size >= released.size) return released.size;
    this.#statsKnown = false;
    this.stats.keys = 0;
    this.stats.carried = 0;
    return -1;
  }

  #closeData(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
    this.#ino = -1;
    this.#dev = -1;
  }

  /** Whether a descriptor of this log (data or lock file) is open. */
  get isOpen(): boolean {
    return this.#fd >= 0 || this.#lock !== undefined;
  }

  /**
   * Closes the descriptors (which releases any `flock`) once the writes
   * queued before it are done; the next write or lock opens them again.
   * What the log knows about the file (line and key counts for automatic
   * compaction, counters) is kept; on reopening, the file's inode tells
   * whether that still holds, and a torn tail is checked for as after any
   * write by another process.
   */
  release(): Promise<void> {
    return this.mutex.run(async () => this.#closeAll(true));
  }

  #closeAll(remember: boolean): void {
    if (this.#fd >= 0 && remember) {
      this.#released = { ino: this.#ino, dev: this.#dev, size: this.#expectedSize };
    }
    this.#closeData();
    this.#expectedSize = -1;
    const lock = this.#lock;
    this.#lock = undefined;
    if (lock) closeSharedLock(this.lockFile, lock, closeSync);
  }

  /** Waits for queued writes, then closes the descriptors. */
  async close(): Promise<void> {
    await this.idle();
    await this.mutex.run(async () => this.#closeAll(false));
  }
}

/**
 * The descriptor of a namespace's lock file, created if missing. On
 * read-only storage (`EROFS`, or no write permission) an existing lock
 * file is opened read-only (`flock` needs no write access); a missing (or
 * unreadable) one is -1 for a reader (nobody can write there: it reads
 * without the OS lock) and a `WriteFailedError` for a writer, which never
 * writes without the lock every other process takes.
 */
function openLockFile(root: string, file: string, lockFile: string, mode: LockMode): number {
  try {
    ensureDir(root, path.dirname(file));
    return openSync(lockFile, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EROFS" && code !== "EACCES") throw writeFailed("open", lockFile, error);
    try {
      return openSync(lockFile, constants.O_RDONLY);
    } catch {
      if (mode === "sh") return -1;
      throw writeFailed("open", lockFile, error);
    }
  }
}

/**
 * Resolves once the microtask queue has drained: a microtask that queues a
 * `process.nextTick`, which Node runs only after every microtask queued
 * meanwhile (including those queued by microtasks) has run. No event-loop
 * turn, no timer (fake timers do not hold it up).
 */
function settled(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(() => process.nextTick(resolve)));
}

/** Cuts the file at `fd` (of `size` bytes) back to its last `\n`; returns the new size. */
export function repairTail(fd: number, size: number): number {
  const keep = completeLines(fd, size);
  if (keep !== size) ftruncateSync(fd, keep);
  return keep;
}

/** The size of the file at `fd` (of `size` bytes) up to and including its last `\n`. */
export function completeLines(fd: number, size: number): number {
  if (size === 0) return 0;
  const last = Buffer.allocUnsafe(1);
  if (readSync(fd, last, 0, 1, size - 1) === 1 && last[0] === 10) return size;
  const block = Buffer.allocUnsafe(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - block.length);
    const n = readSync(fd, block, 0, end - start, start);
    const nl = block.lastIndexOf(10, n - 1);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}
