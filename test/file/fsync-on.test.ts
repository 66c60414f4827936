/**
 * The `fsyncOn` option of the file backend's writers (FileStore,
 * FileEventStore, FileReadModelStore): with `"event-loop"` a durable write
 * never waits for a thread-pool thread; with the default `"thread-pool"`
 * its fsync queues behind whatever occupies the pool. Shown by occupying
 * every pool thread with an `open` of a FIFO that no writer has opened yet
 * (libuv's pool is per process: this relies on vitest running each test
 * file in a process of its own, `pool: "forks"` in vitest.config.ts).
 * Also: the event loop turns between the group writes of writers that keep
 * writing, when no fsync runs in the pool.
 */
import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
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

/** libuv's thread pool size in this process: `UV_THREADPOOL_SIZE` read as libuv reads it (default 4, at least 1, at most 1024). */
const POOL_THREADS = ((): number => {
  const size = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? "", 10);
  return Number.isNaN(size) ? 4 : Math.min(1024, Math.max(1, size));
})();

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

/** How a test opens a writer's store. */
interface WriterOptions {
  readonly fsyncOn?: FsyncOn;
  readonly sync?: "fsync" | "none";
}

/** A store of each writer: `write(i)` makes write `i` (`k<i>`); `read()` what a reopened store holds. */
interface OpenWriter {
  write(i: number): Promise<unknown>;
  close(): Promise<void>;
  read(): Promise<string[]>;
}

interface Writer {
  readonly name: string;
  /** Opens the store in `dir` (`sync: "fsync"` unless `options` say otherwise). */
  open(dir: string, options?: WriterOptions): Promise<OpenWriter>;
}

/** What a store opened by `open` holds by `read`; the store is closed afterwards. */
async function readReopened<S extends { close(): Promise<void> }>(
  open: () => Promise<S>,
  read: (store: S) => Promise<string[]>,
): Promise<string[]> {
  const store = await open();
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

/** The options of `open` for `options`. */
const optionsOf = ({ fsyncOn, sync = "fsync" }: WriterOptions = {}) => ({ sync, ...(fsyncOn ? { fsyncOn } : {}) });

const writers: Writer[] = [
  {
    name: "FileStore",
    async open(directory, options) {
      const store = await FileStore.open({ directory, ...optionsOf(options) });
      return {
        write: (i) => store.save([itemSet(`k${i}`, { i })]),
        close: () => store.close(),
        read: () =>
          readReopened(
            () => FileStore.open({ directory }),
            async (reopened) => (await reopened.load("ws")).map((c) => c.entityId),
          ),
      };
    },
  },
  {
    name: "FileEventStore",
    async open(directory, options) {
      const store = await FileEventStore.open({ directory, ...optionsOf(options) });
      return {
        write: (i) => store.append("s", [{ id: `k${i}`, type: "n", data: { i }, timestamp: new Date(0) }]),
        close: () => store.close(),
        read: () =>
          readReopened(
            () => FileEventStore.open({ directory }),
            async (reopened) => (await reopened.readStream("s")).map((e) => e.id),
          ),
      };
    },
  },
  {
    name: "FileReadModelStore",
    async open(directory, options) {
      const store = await FileReadModelStore.open({ directory, ...optionsOf(options) });
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
        read: () =>
          readReopened(
            () => FileReadModelStore.open({ directory }),
            async (reopened) => [...(await reopened.list("M"))].sort(),
          ),
      };
    },
  },
];

/** Runs `test` on `writer`'s store opened in a new directory with `options`, closing it whatever happens. */
async function withWriter(
  writer: Writer,
  options: WriterOptions,
  test: (store: OpenWriter) => Promise<void>,
): Promise<OpenWriter> {
  const store = await writer.open(tempDir(), options);
  try {
    await test(store);
  } finally {
    await pool?.release();
    await store.close();
  }
  return store;
}

describe.each(writers)("$name fsyncOn", (writer) => {
  it('"event-loop": a durable write resolves while every thread-pool thread is busy, and a reopened store holds it', async () => {
    const store = await withWriter(writer, { fsyncOn: FsyncOn.EventLoop }, async (store) => {
      await store.write(0);
      pool = new BlockedPool();
      // Queued behind the blocked opens: it settles only once the pool is free again.
      const canary = stat(tempDir());
      expect(await settlesWithin(store.write(1), 5_000)).toBe(true);
      // The pool really was blocked while the write went through.
      expect(await settlesWithin(canary, 0)).toBe(false);
    });
    expect(await store.read()).toEqual(["k0", "k1"]);
  });

  it('"thread-pool" (the default): the write waits for a pool thread, and resolves once one is free', async () => {
    // What waits may be the fsync or any other step in the pool; the test above shows that with "event-loop" none does.
    const store = await withWriter(writer, {}, async (store) => {
      await store.write(0);
      pool = new BlockedPool();
      const write = store.write(1);
      expect(await settlesWithin(write, 300)).toBe(false);
      await pool.release();
      await write;
    });
    expect(await store.read()).toEqual(["k0", "k1"]);
  });

  it.each([
    ['fsyncOn: "event-loop"', { fsyncOn: FsyncOn.EventLoop }],
    ['sync: "none"', { sync: "none" }],
  ] as const)("%s: the event loop turns between the group writes of writers that keep writing", async (_, options) => {
    const store = await withWriter(writer, options, async (store) => {
      await store.write(0);
      // Counts the event loop's turns (a setImmediate that schedules itself) while 4 writers make 10 writes each in turn.
      let turns = 0;
      let ticking = true;
      const tick = (): void => {
        if (!ticking) return;
        turns++;
        setImmediate(tick);
      };
      setImmediate(tick);
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let i = 1; i <= 10; i++) await store.write(w * 100 + i);
        }),
      );
      ticking = false;
      // Each writer's 10 writes are 10 group writes at least, one after another. Without a turn after each, the
      // burst would run as one chain of promise continuations, and the ticker would not run until it ended.
      expect(turns).toBeGreaterThanOrEqual(10);
    });
    expect(await store.read()).toHaveLength(41);
  });
});

describe("fsyncOn values", () => {
  it('defaults to "thread-pool" in every writer', () => {
    expect(FsyncOn).toEqual({ ThreadPool: "thread-pool", EventLoop: "event-loop" });
    expect(FILE_STORE_DEFAULTS.fsyncOn).toBe("thread-pool");
    expect(FILE_EVENT_STORE_DEFAULTS.fsyncOn).toBe("thread-pool");
    expect(FILE_READ_MODEL_STORE_DEFAULTS.fsyncOn).toBe("thread-pool");
  });

  it("each writer says where its fsyncs run and when its writes resolve", async () => {
    const directory = tempDir();
    await using defaults = await FileStore.open({ directory: path.join(directory, "a") });
    expect([defaults.sync, defaults.fsyncOn]).toEqual(["fsync", "thread-pool"]);
    await using chosen = await FileStore.open({
      directory: path.join(directory, "b"),
      sync: "none",
      fsyncOn: "event-loop",
    });
    expect([chosen.sync, chosen.fsyncOn]).toEqual(["none", "event-loop"]);
    await using events = await FileEventStore.open({ directory: path.join(directory, "c"), fsyncOn: "event-loop" });
    expect([events.sync, events.fsyncOn]).toEqual(["fsync", "event-loop"]);
    await using models = await FileReadModelStore.open({ directory: path.join(directory, "d"), sync: "none" });
    expect([models.sync, models.fsyncOn]).toEqual(["none", "thread-pool"]);
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
