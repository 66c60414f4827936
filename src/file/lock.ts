/**
 * Locks: an in-process mutex, and `flock(2)` (through `fs-ext`) between
 * processes.
 *
 * Within one process every namespace has one lock-file descriptor and one
 * {@link Mutex}; the process takes the mutex before it takes the OS lock,
 * so the OS lock never waits for the same process (a wait that could tie
 * up libuv's thread pool, which the holder needs to finish its write).
 */
import { createRequire } from "node:module";

interface FsExt {
  flock(fd: number, flags: string, callback: (error: NodeJS.ErrnoException | null) => void): void;
  flockSync(fd: number, flags: string): void;
}

const require = createRequire(import.meta.url);
let fsExt: FsExt | undefined;
function flockModule(): FsExt {
  fsExt ??= require("fs-ext") as FsExt;
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
