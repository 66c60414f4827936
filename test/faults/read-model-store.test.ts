/**
 * Storage faults on the FileReadModelStore (its log, `read-models.jsonl`,
 * which also holds the projections' checkpoints): disk full on a
 * test-mounted tmpfs (during writes and during compaction), read-only
 * storage, and I/O errors on write and fsync injected by the LD_PRELOAD
 * shim in a child. Acknowledged writes lost must be 0.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileReadModelStore, isLockedError, isWriteFailedError, type WriteFailedError } from "../../src/file/index.js";
import { isUnavailableError } from "../../src/index.js";
import type { ReadModelMetadata } from "../../src/read-models/index.js";
import { tempDir } from "../file/helpers.js";
import { figures } from "./figures.js";
import { expectOneFailedCall, runUnderShim } from "./harness.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("file-read-model-store");
const LOG = "read-models.jsonl";

const meta = (id: string, lastEventPosition = 1): ReadModelMetadata => ({
  id,
  modelType: "M",
  schemaVersion: 1,
  lastUpdated: new Date(0),
  lastEventPosition,
  metadata: {},
});
const open = (dir: string, compactionMinDeadRecords = Number.POSITIVE_INFINITY): Promise<FileReadModelStore> =>
  FileReadModelStore.open({ directory: dir, sync: "fsync", compactionMinDeadRecords });
const pad = "p".repeat(300);

function expectWriteFailed(error: unknown, errno: string): WriteFailedError {
  expect(isWriteFailedError(error), String(error)).toBe(true);
  const e = error as WriteFailedError;
  expect(e.code).toBe("STATELOG_WRITE_FAILED");
  expect(e.errno).toBe(errno);
  expect((e.cause as NodeJS.ErrnoException).code).toBe(errno);
  expect(e.path.length).toBeGreaterThan(0);
  return e;
}

const temps = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith(".tmp"));

/** The ids of the stored models of type M, each with its model's `i`. */
async function models(store: FileReadModelStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const id of await store.list("M")) {
    const stored = await store.load<{ i: number }>("M", id);
    out.set(id, stored ? stored.model.i : Number.NaN);
  }
  return out;
}

describe("FileReadModelStore under storage faults", () => {
  it("disk full during writes: the write rejects (WriteFailedError, ENOSPC) and changes nothing, writes resume once space returns", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const store = await open(fs.dir);
    const acked: string[] = [];
    for (let i = 0; i < 10; i++) {
      await store.save({ i, pad }, meta(`m${i}`));
      acked.push(`m${i}`);
    }
    fs.fill();
    let error: unknown;
    let failedId = "";
    for (let i = 10; i < 2000 && error === undefined; i++) {
      await store
        .saveWithCheckpoint([{ type: "save", model: { i, pad }, metadata: meta(`m${i}`, i) }], {
          name: "p",
          status: "catching_up",
          checkpoint: i,
          updatedAt: new Date(0),
        })
        .then(
          () => acked.push(`m${i}`),
          (e: unknown) => {
            error = e;
            failedId = `m${i}`;
          },
        );
    }
    expectWriteFailed(error, "ENOSPC");
    // Neither the model nor the checkpoint of the failed write is there.
    expect([...(await models(store)).keys()].sort()).toEqual([...acked].sort());
    expect((await store.getProjectionStatus("p"))?.checkpoint ?? 0).toBe(acked.length > 10 ? acked.length - 1 : 0);
    const freed = Date.now();
    fs.free();
    await store.save({ i: -1 }, meta("after"));
    const recoveryMs = Date.now() - freed;
    acked.push("after");
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = await models(reopened);
    expect([...loaded.keys()].sort()).toEqual([...acked].sort());
    expect(loaded.has(failedId)).toBe(false);
    await reopened.close();
    record({
      backend: "FileReadModelStore",
      fault: "disk full (ENOSPC) during writes (models + checkpoint)",
      injection: "tmpfs of 256 KiB filled by a filler file",
      injections: 1,
      acknowledged: acked.length,
      acknowledgedLost: acked.filter((id) => !loaded.has(id)).length,
      rejectedVisible: loaded.has(failedId) ? 1 : 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("disk full during compaction: the old log stays intact and loadable, no temp file remains, writes and compactions work again", async () => {
    const fs = Tmpfs.mount(512 * 1024);
    const store = await open(fs.dir);
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < 10; k++) await store.save({ i: round, pad: "q".repeat(100) }, meta(`m${k}`));
    }
    const file = path.join(fs.dir, LOG);
    const before = readFileSync(file);
    fs.fill();
    expectWriteFailed(await store.compact().catch((e: unknown) => e), "ENOSPC");
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(temps(fs.dir)).toEqual([]);
    expect([...(await models(store)).values()]).toEqual(Array(10).fill(39));
    // Another process (a reopen) loads the old log as it was.
    const freed = Date.now();
    fs.free();
    await store.save({ i: 40 }, meta("m0"));
    const recoveryMs = Date.now() - freed;
    await store.compact();
    expect(readFileSync(file).length).toBeLessThan(before.length / 10);
    await store.save({ i: 41 }, meta("m1"));
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = await models(reopened);
    expect(loaded).toEqual(new Map([...Array(10).keys()].map((k) => [`m${k}`, k === 0 ? 40 : k === 1 ? 41 : 39])));
    expect(temps(fs.dir)).toEqual([]);
    await reopened.close();
    record({
      backend: "FileReadModelStore",
      fault: "disk full (ENOSPC) during compaction",
      injection: "tmpfs of 512 KiB filled before compact()",
      injections: 1,
      acknowledged: 402,
      acknowledgedLost: 10 - loaded.size,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage: the store opens and loads, writes and compactions fail with WriteFailedError (EROFS); writable again, writes work", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.save({ i: 1 }, meta("a"));
    await writer.updateProjectionStatus({ name: "p", status: "up_to_date", checkpoint: 7, updatedAt: new Date(0) });
    await writer.close();
    fs.readOnly();
    const store = await open(fs.dir);
    expect(await models(store)).toEqual(new Map([["a", 1]]));
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(7);
    expectWriteFailed(await store.save({ i: 2 }, meta("b")).catch((e: unknown) => e), "EROFS");
    expectWriteFailed(
      await store
        .updateProjectionStatus({ name: "p", status: "up_to_date", checkpoint: 8, updatedAt: new Date(0) })
        .catch((e: unknown) => e),
      "EROFS",
    );
    expectWriteFailed(await store.compact().catch((e: unknown) => e), "EROFS");
    expect(await models(store)).toEqual(new Map([["a", 1]]));
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(7);
    const back = Date.now();
    fs.readWrite();
    await store.save({ i: 2 }, meta("b"));
    const recoveryMs = Date.now() - back;
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = await models(reopened);
    expect(loaded).toEqual(
      new Map([
        ["a", 1],
        ["b", 2],
      ]),
    );
    const checkpoint = (await reopened.getProjectionStatus("p"))?.checkpoint;
    expect(checkpoint).toBe(7);
    await reopened.close();
    record({
      backend: "FileReadModelStore",
      fault: "read-only storage (EROFS)",
      injection: "tmpfs remounted ro (save, checkpoint, compact)",
      injections: 3,
      acknowledged: 3,
      acknowledgedLost: 2 - loaded.size + (checkpoint === 7 ? 0 : 1),
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage without a LOCK file: the store opens and loads unlocked; writable again, it writes only under LOCK, never beside a store holding it", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.save({ i: 1 }, meta("a"));
    await writer.close();
    rmSync(path.join(fs.dir, "LOCK"));
    fs.readOnly();
    const early = await open(fs.dir);
    expect(await models(early)).toEqual(new Map([["a", 1]]));
    expectWriteFailed(await early.save({ i: 2 }, meta("b")).catch((e: unknown) => e), "EROFS");
    fs.readWrite();
    // A store opened now creates LOCK and holds it: the early one's writes are refused, not made beside its.
    const later = await open(fs.dir);
    expect(isLockedError(await early.save({ i: 2 }, meta("b")).catch((e: unknown) => e))).toBe(true);
    expect(isLockedError(await early.compact().catch((e: unknown) => e))).toBe(true);
    await later.save({ i: 3 }, meta("c"));
    await later.close();
    // The log changed under the early store: it must be reopened to write (what it would write is stale).
    expect(isUnavailableError(await early.save({ i: 2 }, meta("b")).catch((e: unknown) => e))).toBe(true);
    await early.close();
    const reopened = await open(fs.dir);
    expect(await models(reopened)).toEqual(
      new Map([
        ["a", 1],
        ["c", 3],
      ]),
    );
    await reopened.close();
    // Unchanged meanwhile: the first write once writable takes LOCK (created) and works.
    rmSync(path.join(fs.dir, "LOCK"));
    fs.readOnly();
    const alone = await open(fs.dir);
    fs.readWrite();
    await alone.save({ i: 4 }, meta("d"));
    expect(readdirSync(fs.dir)).toContain("LOCK");
    expect(isLockedError(await open(fs.dir).catch((e: unknown) => e))).toBe(true);
    await alone.close();
    const last = await open(fs.dir);
    expect([...(await models(last)).keys()]).toEqual(["a", "c", "d"]);
    await last.close();
  });

  // The fsync's failure in the thread pool (a rejected callback) and on the event loop (a thrown error) alike.
  for (const [op, fsyncOn] of [
    ["write", "thread-pool"],
    ["fsync", "thread-pool"],
    ["fsync", "event-loop"],
  ] as const) {
    it(`I/O error (EIO) on the 3rd ${op} (fsyncOn: ${fsyncOn}) of the log: that write (model + checkpoint) rejects, the descriptor is never fsynced again, later writes succeed, nothing acknowledged is lost`, async () => {
      const dir = tempDir("statelog-faults-");
      const report = path.join(tempDir("statelog-shim-"), "counters.json");
      const saves = 8;
      const run = await runUnderShim("read-model-saves", { dir, saves, fsyncOn }, { path: LOG, op, nth: 3, report });
      expectOneFailedCall(run, op, saves, 2);
      const started = Date.now();
      const store = await open(dir);
      const loaded = await models(store);
      await store.save({ i: -1 }, meta("after"));
      const recoveryMs = Date.now() - started;
      const checkpoint = (await store.getProjectionStatus("p"))?.checkpoint;
      await store.close();
      const acked = run.acked.map((i) => `m${i}`);
      expect([...loaded.keys()].sort()).toEqual([...acked].sort());
      expect(checkpoint).toBe(8);
      record({
        backend: "FileReadModelStore",
        fault: `I/O error (EIO) on ${op}${fsyncOn === "event-loop" ? " (fsync on the event loop)" : ""}`,
        injection: `LD_PRELOAD shim fails the 3rd ${op === "write" ? "write/pwrite/writev" : "fsync/fdatasync"} on read-models.jsonl, child process`,
        injections: run.counters.injected,
        acknowledged: acked.length,
        acknowledgedLost: acked.filter((id) => !loaded.has(id)).length,
        rejectedVisible: loaded.has("m2") ? 1 : 0,
        unloadableStores: 0,
        recoveryMs,
      });
    });
  }

  it("a directory that cannot be created: open rejects with a WriteFailedError (mkdir, ENOTDIR) naming it", async () => {
    const file = path.join(tempDir("statelog-faults-"), "a-file");
    writeFileSync(file, "not a directory");
    const directory = path.join(file, "models");
    const error = expectWriteFailed(await open(directory).catch((e: unknown) => e), "ENOTDIR");
    expect(error.operation).toBe("mkdir");
    expect(error.path).toBe(directory);
  });
});
