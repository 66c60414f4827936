/**
 * The `fsyncOn` option of the file backend's writers (FileStore,
 * FileEventStore, FileReadModelStore): with `"event-loop"` a durable write
 * never waits for a thread-pool thread; with the default `"thread-pool"`
 * its fsync queues behind whatever occupies the pool. Shown by occupying
 * every pool thread with an `open` of a FIFO that no writer has opened yet.
 */
import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/core/errors.js";
import {
  FILE_EVENT_STORE_DEFAULTS,
  FILE_READ_MODEL_STORE_DEFAULTS,
  FILE_STORE_DEFAULTS,
  FileEventStore,
  FileReadModelStore,
  FileStore,
  FsyncOn,
} from "../../src/file/index.js";
import { itemSet, tempDir } from "./helpers.js";

/** libuv's thread pool size in this process. */
const POOL_THREADS = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

/**
 * Occupies every thread of the pool: each runs an `open` of a FIFO for
 * reading, which blocks until {@link release} opens the FIFOs for writing.
 */
class BlockedPool {
  readonly #fifos: string[] = [];
  readonly #opens: Promise<FileHandle>[] = [];
  #released = false;

  constructor() {
    const dir = tempDir("statelog-fifo-");
    for (let i = 0; i < POOL_THREADS; i++) {
      const fifo = path.join(dir, `f${i}`);
      execFileSync("mkfifo", [fifo]);
      this.#fifos.push(fifo);
      this.#opens.push(open(fifo, "r"));
    }
  }

  /** Opens each FIFO for writing: every blocked `open` returns, and the pool is free again. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    for (const fifo of this.#fifos) {
      // A reader is waiting in open(2): a non-blocking open for writing succeeds (ENXIO only before it got there).
      for (let attempt = 0; ; attempt++) {
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENXIO" || attempt > 500) throw error;
          await sleep(10);
        }
      }
    }
    for (const handle of await Promise.all(this.#opens)) await handle.close();
  }
}

let pool: BlockedPool | undefined;
afterEach(async () => {
  await pool?.release();
  pool = undefined;
});

/** Whether `promise` settles within `ms` (timers do not use the thread pool). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timeout = Symbol("timeout");
  const winner = await Promise.race([promise.then(() => true), sleep(ms, timeout)]);
  return winner !== timeout;
}

/** One durable write of each writer, its store opened with `fsyncOn` (and written once before, so its files exist). */
interface Writer {
  readonly name: string;
  /** Opens the store in `dir`; `write(i)` makes durable write `i`; `read()` what a reopened store holds. */
  open(
    dir: string,
    fsyncOn?: FsyncOn,
  ): Promise<{ write(i: number): Promise<unknown>; close(): Promise<void>; read(): Promise<string[]> }>;
}

const writers: Writer[] = [
  {
    name: "FileStore",
    async open(directory, fsyncOn) {
      const store = await FileStore.open({ directory, sync: "fsync", ...(fsyncOn ? { fsyncOn } : {}) });
      return {
        write: (i) => store.save([itemSet(`k${i}`, { i })]),
        close: () => store.close(),
        async read() {
          const reopened = await FileStore.open({ directory });
          try {
            return (await reopened.load("ws")).map((c) => c.entityId);
          } finally {
            await reopened.close();
          }
        },
      };
    },
  },
  {
    name: "FileEventStore",
    async open(directory, fsyncOn) {
      const store = await FileEventStore.open({ directory, sync: "fsync", ...(fsyncOn ? { fsyncOn } : {}) });
      return {
        write: (i) => store.append("s", [{ id: `k${i}`, type: "n", data: { i }, timestamp: new Date(0) }]),
        close: () => store.close(),
        async read() {
          const reopened = await FileEventStore.open({ directory });
          try {
            return (await reopened.readStream("s")).map((e) => e.id);
          } finally {
            await reopened.close();
          }
        },
      };
    },
  },
  {
    name: "FileReadModelStore",
    async open(directory, fsyncOn) {
      const store = await FileReadModelStore.open({ directory, sync: "fsync", ...(fsyncOn ? { fsyncOn } : {}) });
      const meta = (id: string) => ({
        id,
        modelType: "M",
        schemaVersion: 1,
        lastUpdated: new Date(0),
        lastEventPosition: 1,
        metadata: {},
      });
      return {
        write: (i) => store.save({ i }, meta(`k${i}`)),
        close: () => store.close(),
        async read() {
          const reopened = await FileReadModelStore.open({ directory });
          try {
            return [...(await reopened.list("M"))].sort();
          } finally {
            await reopened.close();
          }
        },
      };
    },
  },
];

describe.each(writers)("$name fsyncOn", (writer) => {
  it('"event-loop": a durable write resolves while every thread-pool thread is busy, and a reopened store holds it', async () => {
    const dir = tempDir();
    const store = await writer.open(dir, FsyncOn.EventLoop);
    await store.write(0);
    pool = new BlockedPool();
    expect(await settlesWithin(store.write(1), 5_000)).toBe(true);
    await pool.release();
    await store.close();
    expect(await store.read()).toEqual(["k0", "k1"]);
  });

  it('"thread-pool" (the default): the write waits for a pool thread, and resolves once one is free', async () => {
    const dir = tempDir();
    const store = await writer.open(dir);
    await store.write(0);
    pool = new BlockedPool();
    const write = store.write(1);
    expect(await settlesWithin(write, 300)).toBe(false);
    await pool.release();
    await write;
    await store.close();
    expect(await store.read()).toEqual(["k0", "k1"]);
  });
});

describe("fsyncOn values", () => {
  it('defaults to "thread-pool" in every writer', () => {
    expect(FsyncOn).toEqual({ ThreadPool: "thread-pool", EventLoop: "event-loop" });
    expect(FILE_STORE_DEFAULTS.fsyncOn).toBe("thread-pool");
    expect(FILE_EVENT_STORE_DEFAULTS.fsyncOn).toBe("thread-pool");
    expect(FILE_READ_MODEL_STORE_DEFAULTS.fsyncOn).toBe("thread-pool");
  });

  it.each([
    ["FileStore", (directory: string) => FileStore.open({ directory, fsyncOn: "main" as FsyncOn })],
    ["FileEventStore", (directory: string) => FileEventStore.open({ directory, fsyncOn: true as unknown as FsyncOn })],
    ["FileReadModelStore", (directory: string) => FileReadModelStore.open({ directory, fsyncOn: "" as FsyncOn })],
  ])("%s refuses another value with a ConfigurationError naming the option and creates nothing", async (_, open) => {
    const dir = path.join(tempDir(), "not-created");
    const error = await open(dir).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe(ErrorCode.Configuration);
    expect((error as Error).message).toContain("fsyncOn");
    expect((error as Error).message).toContain("event-loop");
    expect(() => openSync(dir, constants.O_RDONLY)).toThrow(/ENOENT/);
  });
});
