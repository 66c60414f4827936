/**
 * Storage faults on the FileSnapshotStore (one file per stream, replaced
 * atomically by each save): disk full on a test-mounted tmpfs, read-only
 * storage, and I/O errors on write, fsync, rename and open injected by the
 * LD_PRELOAD shim in a child. A failed save leaves the stream's file as it
 * was; acknowledged snapshots lost must be 0.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileSnapshotStore, isWriteFailedError, type WriteFailedError } from "../../src/file/index.js";
import type { AggregateSnapshot } from "../../src/repository/index.js";
import { tempDir } from "../file/helpers.js";
import { figures } from "./figures.js";
import { expectOneFailedCall, runUnderShim } from "./harness.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("file-snapshot-store");

const snap = (streamId: string, version: number, size = 10): AggregateSnapshot => ({
  streamId,
  version,
  snapshotVersion: 1,
  state: { version, pad: "s".repeat(size) },
  createdAt: new Date(version),
});
const open = (dir: string) => FileSnapshotStore.open({ directory: dir, sync: "fsync", maxCachedStreams: 0 });
const temps = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith(".tmp"));

function expectWriteFailed(error: unknown, errno: string): WriteFailedError {
  expect(isWriteFailedError(error), String(error)).toBe(true);
  const e = error as WriteFailedError;
  expect(e.errno).toBe(errno);
  expect((e.cause as NodeJS.ErrnoException).code).toBe(errno);
  expect(e.path.length).toBeGreaterThan(0);
  return e;
}

describe("FileSnapshotStore under storage faults", () => {
  it("disk full: the save rejects (WriteFailedError, ENOSPC), the stream's last snapshot stays, no temp file remains, saves resume once space returns", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const store = await open(fs.dir);
    await store.save(snap("a", 1, 20_000));
    await store.save(snap("a", 2, 20_000));
    fs.fill();
    const error = await store.save(snap("a", 3, 20_000)).catch((e: unknown) => e);
    expectWriteFailed(error, "ENOSPC");
    expect(temps(fs.dir)).toEqual([]);
    expect((await store.load("a"))?.version).toBe(2);
    expect((await store.load("a", { maxVersion: 1 }))?.version).toBe(1);
    const freed = Date.now();
    fs.free();
    await store.save(snap("a", 3, 20_000));
    const recoveryMs = Date.now() - freed;
    await store.close();
    const reopened = await open(fs.dir);
    const loaded: number[] = [];
    for (const v of [1, 2, 3]) {
      const s = await reopened.load("a", { maxVersion: v });
      if (s?.version === v) loaded.push(v);
    }
    expect(loaded).toEqual([1, 2, 3]);
    await reopened.close();
    record({
      backend: "FileSnapshotStore",
      fault: "disk full (ENOSPC) during a save",
      injection: "tmpfs of 256 KiB filled by a filler file",
      injections: 1,
      acknowledged: 3,
      acknowledgedLost: 3 - loaded.length,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage: loads work, saves and deletes fail with WriteFailedError (EROFS); writable again, saves work", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.save(snap("a", 1));
    await writer.close();
    fs.readOnly();
    const store = await open(fs.dir);
    expect((await store.load("a"))?.version).toBe(1);
    expectWriteFailed(await store.save(snap("a", 2)).catch((e: unknown) => e), "EROFS");
    expectWriteFailed(await store.save(snap("b", 1)).catch((e: unknown) => e), "EROFS");
    expectWriteFailed(await store.delete("a").catch((e: unknown) => e), "EROFS");
    expect((await store.load("a"))?.version).toBe(1);
    const back = Date.now();
    fs.readWrite();
    await store.save(snap("a", 2));
    const recoveryMs = Date.now() - back;
    await store.close();
    const reopened = await open(fs.dir);
    const versions = [(await reopened.load("a", { maxVersion: 1 }))?.version, (await reopened.load("a"))?.version];
    expect(versions).toEqual([1, 2]);
    await reopened.close();
    record({
      backend: "FileSnapshotStore",
      fault: "read-only storage (EROFS)",
      injection: "tmpfs remounted ro (save, save of a new stream, delete)",
      injections: 3,
      acknowledged: 2,
      acknowledgedLost: versions.filter((v) => v === undefined).length,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  // Each save opens the stream's file to read it (1st open of the save) and its temp file (2nd); the 3rd open is the
  // second save's read, the 3rd write, fsync and rename are the third save's.
  const cases = [
    { op: "write", failed: 2 },
    { op: "fsync", failed: 2 },
    { op: "rename", failed: 2 },
    { op: "open", failed: 1 },
  ] as const;
  for (const { op, failed } of cases) {
    it(`I/O error (EIO) on the 3rd ${op} of a snapshot file: that save rejects with a WriteFailedError, the file keeps the snapshots before it, no temp file remains, later saves succeed`, async () => {
      const dir = tempDir("statelog-faults-");
      const report = path.join(tempDir("statelog-shim-"), "counters.json");
      const saves = 6;
      const run = await runUnderShim("snapshot-saves", { dir, saves }, { path: "snapshots-", op, nth: 3, report });
      expectOneFailedCall(run, op, saves, failed);
      expect(temps(dir)).toEqual([]);
      const started = Date.now();
      const store = await open(dir);
      const loaded: number[] = [];
      for (let v = 1; v <= saves; v++) {
        const s = await store.load("s", { maxVersion: v });
        if (s?.version === v) loaded.push(v - 1);
      }
      await store.save(snap("s", saves + 1));
      const recoveryMs = Date.now() - started;
      await store.close();
      // The default keeps 8 snapshots per stream: every acknowledged one is there, the failed one is not.
      expect(loaded).toEqual(run.acked);
      record({
        backend: "FileSnapshotStore",
        fault: `I/O error (EIO) on ${op}`,
        injection: `LD_PRELOAD shim fails the 3rd ${op === "write" ? "write/pwrite/writev" : op === "fsync" ? "fsync/fdatasync" : op === "open" ? "open/openat" : "rename/renameat"} on the snapshot files, child process`,
        injections: run.counters.injected,
        acknowledged: run.acked.length,
        acknowledgedLost: run.acked.filter((i) => !loaded.includes(i)).length,
        rejectedVisible: loaded.includes(failed) ? 1 : 0,
        unloadableStores: 0,
        recoveryMs,
      });
    });
  }
});
