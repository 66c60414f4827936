/**
 * Locks: an in-process mutex, and `flock(2)` between processes, through
 * the `fs-ext` dependency, which package.json resolves to
 * `fs-ext-extra-prebuilt`: fs-ext's API with prebuilt binaries for Linux,
 * macOS and Windows (x64, arm64) inside its package, so installing it needs
 * no compiler (it builds from source only on a platform without a binary).
 *
 * Within one process every namespace has one lock-file descriptor and one
 * {@link Mutex}; the process takes the mutex before it takes the OS lock,
 * so the OS lock never waits for the same process (a wait that could tie
 * up libuv's thread pool, which the holder needs to finish its write).
 */
import { closeSync, constants, openSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { UnavailableError, UnsupportedError } from "../index.js";
import { LockedError, NOT_OPENED, writeFailed } from "./errors.js";

interface FsExt {
  flock(fd: number, flags: string, callback: (error: NodeJS.ErrnoException | null) => void): void;
  flockSync(fd: number, flags: string): void;
}

const require = createRequire(import.meta.url);
let fsExt: FsExt | undefined;
function flockModule(): FsExt {
  if (!fsExt) {
    try {
      fsExt = require("fs-ext") as FsExt;
    } catch (error) {
      throw new UnsupportedError(
        "statelog/file locks its files with flock(2) through the fs-ext dependency (fs-ext-extra-prebuilt), which could not be loaded: " +
          "reinstall statelog's dependencies (npm install); on a platform without a prebuilt binary its install builds one, which needs a C++ compiler",
        { cause: error },
      );
    }
  }
  return fsExt;
}

/** `ex`: one writer; `sh`: readers. */
export type LockMode = "ex" | "sh";

/**
 * Takes the OS lock on `fd`: a non-blocking attempt first (no thread-pool
 * hop when nobody holds it), then a blocking wait in the thread pool.
 */
export async function flockAcquire(fd: number, mode: LockMode): Promise<void> {
  const fl = flockModule();
  try {
    fl.flockSync(fd, `${mode}nb`);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EAGAIN" && code !== "EWOULDBLOCK" && code !== "EINTR") throw error;
  }
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => fl.flock(fd, mode, (e) => (e ? reject(e) : resolve())));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EINTR") throw error;
    }
  }
}

/** Releases the OS lock on `fd`. */
export function flockRelease(fd: number): void {
  flockModule().flockSync(fd, "un");
}

/** A FIFO async mutex. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Runs `fn` once every earlier `run` has finished; returns its result. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** One lock file's descriptor and mutex, shared by every store of this process that uses it. */
export interface SharedLock {
  /**
   * The lock file's descriptor; -1 while it has none (read-only storage
   * without the lock file): whoever holds the mutex opens it before it
   * takes the OS lock.
   */
  fd: number;
  readonly mutex: Mutex;
  refs: number;
}

const sharedLocks = new Map<string, SharedLock>();

/**
 * The process-wide mutex of the lock file at `file`, and its descriptor
 * once opened (under the mutex): two stores of one process on the same
 * directory wait for each other on the mutex, never inside `flock`.
 */
export function openSharedLock(file: string): SharedLock {
  let lock = sharedLocks.get(file);
  if (!lock) {
    lock = { fd: -1, mutex: new Mutex(), refs: 0 };
    sharedLocks.set(file, lock);
  }
  lock.refs++;
  return lock;
}

/** Drops one reference; the last one closes the descriptor (after `close` runs). */
export function closeSharedLock(file: string, lock: SharedLock, close: (fd: number) => void): void {
  lock.refs--;
  if (lock.refs === 0 && sharedLocks.get(file) === lock) {
    sharedLocks.delete(file);
    if (lock.fd >= 0) close(lock.fd);
    lock.fd = -1;
  }
}

/**
 * Takes the OS lock on `fd` without waiting: `false` when another open
 * file description (of this or another process) holds it.
 */
export function flockTry(fd: number, mode: LockMode): boolean {
  try {
    flockModule().flockSync(fd, `${mode}nb`);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EAGAIN" || code === "EWOULDBLOCK") return false;
    throw error;
  }
}

/**
 * The `LOCK` file (`file`) of a store one process at a time opens (an
 * event store, a read-model store): opened, created if missing, and held
 * with an exclusive `flock` (refused with a `LockedError` when another
 * open store holds it). When the open finds storage it cannot write
 * (`readOnly`: the error codes it accepts as that), an existing `LOCK` is
 * opened for reading (`flock` needs no write access), and a missing one
 * is -1: the store opens for reading without the lock, and takes it (with
 * `atOpen` false) before it writes anything.
 * @throws WriteFailedError (`open`) | LockedError
 */
function lockStore(directory: string, file: string, atOpen: boolean, readOnly: readonly string[]): number {
  const failed = (error: unknown) => writeFailed("open", file, error, undefined, atOpen ? NOT_OPENED : undefined);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (error) {
    if (!atOpen || !readOnly.includes((error as NodeJS.ErrnoException).code ?? "")) throw failed(error);
    try {
      fd = openSync(file, constants.O_RDONLY);
    } catch (readError) {
      if ((readError as NodeJS.ErrnoException).code === "ENOENT") return -1;
      throw failed(readError);
    }
  }
  try {
    if (!flockTry(fd, "ex")) throw new LockedError(directory);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/**
 * The `LOCK` file of a store one process at a time opens (an event store,
 * a read-model store), from its open to its close. An open on read-only
 * storage without `LOCK` (`readOnly`: the error codes taken as that)
 * reads unlocked and records what its files were (`state()`); before its
 * first write ({@link StoreLock.forWrite}) it creates and locks `LOCK`,
 * and refuses to write when another store changed the files meanwhile.
 */
export class StoreLock {
  #fd: number;
  /** What `state()` gave at an open without the lock; `undefined` once locked. */
  #unlockedAt: string | undefined;

  private constructor(
    readonly directory: string,
    /** The store, for messages: `event store "orders"`. */
    readonly what: string,
    readonly state: () => string,
    fd: number,
    unlockedAt: string | undefined,
  ) {
    this.#fd = fd;
    this.#unlockedAt = unlockedAt;
  }

  /**
   * Locks `directory`'s `LOCK` at a store's open (see {@link lockStore}).
   * @throws WriteFailedError (`open`, the store was not opened) | LockedError
   */
  static open(directory: string, what: string, readOnly: readonly string[], state: () => string): StoreLock {
    const fd = lockStore(directory, join(directory, "LOCK"), true, readOnly);
    // Before anything is read: a change after this makes the first write refuse.
    return new StoreLock(directory, what, state, fd, fd < 0 ? state() : undefined);
  }

  /** True while the store holds `LOCK`. */
  get held(): boolean {
    return this.#fd >= 0;
  }

  /**
   * Before a write: locks `LOCK` if the store opened without it.
   * @throws WriteFailedError | LockedError | UnavailableError (another store changed the files: reopen the store)
   */
  forWrite(): void {
    if (this.#fd >= 0) return;
    const fd = lockStore(this.directory, join(this.directory, "LOCK"), false, []);
    if (this.state() !== this.#unlockedAt) {
      closeSync(fd);
      throw new UnavailableError(
        `${this.what}: another store changed the files in ${this.directory} after this one opened them without its LOCK file (read-only storage); reopen the store to write`,
      );
    }
    this.#fd = fd;
    this.#unlockedAt = undefined;
  }

  /** Closes `LOCK`'s descriptor, which releases the lock. */
  release(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) closeSync(fd);
  }
}
