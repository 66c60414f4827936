/**
 * Storage faults on the FileStore (issue: reliability under storage
 * faults): disk full on a test-mounted tmpfs, read-only storage (the same
 * tmpfs remounted `ro`), and I/O errors injected by an LD_PRELOAD shim in
 * a child process. Each test counts acknowledged writes lost (must be 0)
 * and records its figures (figures.ts).
 */
import {
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Change, ChangeInput } from "../../src/core/change.js";
import { FileStore, isWriteFailedError, type WriteFailedError } from "../../src/file/index.js";
import { flockTry } from "../../src/file/lock.js";
import { tempDir } from "../file/helpers.js";
import { spawnChild } from "../file/spawn.js";
import { figures } from "./figures.js";
import { expectOneFailedCall, runUnderShim } from "./harness.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("file-store");
const faultChild = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "fault-child.ts");

/** Whether a process waits in `flock` for the file of inode `ino` (a `->` line of /proc/locks). */
const waitsForFlock = (ino: number): boolean =>
  readFileSync("/proc/locks", "utf8")
    .split("\n")
    .some((l) => new RegExp(`^\\d+: -> FLOCK .*:${ino} `).test(l));

const set = (namespace: string, entityId: string, entity: unknown): ChangeInput => ({
  namespace,
  changeType: "set",
  entityType: "item",
  entityId,
  entity,
  timestamp: new Date(0),
});

const open = (dir: string): Promise<FileStore> =>
  FileStore.open({
    directory: dir,
    sync: "fsync",
    autoCompact: false,
    compactionWorkerMinBytes: Number.POSITIVE_INFINITY,
  });

const ids = (changes: Change[]): Set<string> => new Set(changes.map((c) => c.entityId));

/** Saves `k<from>`…`k<to-1>`, one save each; returns the ids acknowledged and the first error. */
async function saveUntilError(store: FileStore, ns: string, from: number, to: number) {
  const acked: string[] = [];
  for (let i = from; i < to; i++) {
    try {
      await store.save([set(ns, `k${i}`, { i, pad: "x".repeat(200) })]);
      acked.push(`k${i}`);
    } catch (error) {
      return { acked, error };
    }
  }
  return { acked, error: undefined };
}

const lost = (acked: readonly string[], loaded: Set<string>): number => acked.filter((id) => !loaded.has(id)).length;

function expectWriteFailed(error: unknown, errno: string): void {
  expect(isWriteFailedError(error), String(error)).toBe(true);
  const e = error as WriteFailedError;
  expect(e.code).toBe("STATELOG_WRITE_FAILED");
  expect(e.errno).toBe(errno);
  expect((e.cause as NodeJS.ErrnoException).code).toBe(errno);
  expect(e.path.length).toBeGreaterThan(0);
}

describe("FileStore under storage faults", () => {
  it("disk full during saves: the save rejects (WriteFailedError, ENOSPC), acknowledged saves load, saves resume once space returns", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const store = await open(fs.dir);
    const first = await saveUntilError(store, "orders", 0, 20);
    expect(first.error).toBeUndefined();
    fs.fill();
    const full = await saveUntilError(store, "orders", 20, 2000);
    expectWriteFailed(full.error, "ENOSPC");
    const acked = [...first.acked, ...full.acked];
    // The failed save left nothing: a fresh load shows exactly the acknowledged ones.
    const during = ids(await store.load("orders"));
    expect(lost(acked, during)).toBe(0);
    expect(during.size).toBe(acked.length);
    const freed = Date.now();
    fs.free();
    await store.save([set("orders", "after", { ok: true })]);
    const recoveryMs = Date.now() - freed;
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = ids(await reopened.load("orders"));
    expect(lost([...acked, "after"], loaded)).toBe(0);
    expect(loaded.size).toBe(acked.length + 1);
    await reopened.close();
    record({
      backend: "FileStore",
      fault: "disk full (ENOSPC) during saves",
      injection: "tmpfs of 256 KiB filled by a filler file",
      injections: 1,
      acknowledged: acked.length + 1,
      acknowledgedLost: lost([...acked, "after"], loaded),
      rejectedVisible: loaded.size - acked.length - 1,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("disk full during compaction: the old file stays intact and loadable, no temp file remains, saves work again", async () => {
    const fs = Tmpfs.mount(512 * 1024);
    const store = await open(fs.dir);
    // 20 keys overwritten 40 times: 800 lines, a compaction keeps 20.
    const acked: string[] = [];
    for (let round = 0; round < 40; round++) {
      await store.save(Array.from({ length: 20 }, (_, k) => set("ledger", `k${k}`, { round, pad: "y".repeat(100) })));
    }
    for (let k = 0; k < 20; k++) acked.push(`k${k}`);
    const file = store.fileOf("ledger");
    const before = readFileSync(file);
    fs.fill();
    const error = await store.compact("ledger").catch((e: unknown) => e);
    expectWriteFailed(error, "ENOSPC");
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(path.dirname(file)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    const loadedFull = await store.load("ledger");
    expect(loadedFull.map((c) => (c.entity as { round: number }).round)).toEqual(Array(20).fill(39));
    const freed = Date.now();
    fs.free();
    await store.save([set("ledger", "after", { ok: true })]);
    const recoveryMs = Date.now() - freed;
    await store.compact("ledger");
    expect(readFileSync(file).length).toBeLessThan(before.length / 10);
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = ids(await reopened.load("ledger"));
    expect(lost([...acked, "after"], loaded)).toBe(0);
    expect(readdirSync(path.dirname(file)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await reopened.close();
    record({
      backend: "FileStore",
      fault: "disk full (ENOSPC) during compaction",
      injection: "tmpfs of 512 KiB filled before compact()",
      injections: 1,
      acknowledged: 40,
      acknowledgedLost: lost([...acked, "after"], loaded),
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage: a store opened on it loads, saves and compactions fail with WriteFailedError (EROFS); writable again, saves work", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.save([set("profiles", "a", { v: 1 }), set("profiles", "b", { v: 2 })]);
    await writer.close();
    fs.readOnly();
    const store = await open(fs.dir);
    expect(ids(await store.load("profiles"))).toEqual(new Set(["a", "b"]));
    expectWriteFailed(await store.save([set("profiles", "c", { v: 3 })]).catch((e: unknown) => e), "EROFS");
    expectWriteFailed(await store.save([set("fresh", "x", {})]).catch((e: unknown) => e), "EROFS");
    expectWriteFailed(await store.compact("profiles").catch((e: unknown) => e), "EROFS");
    expect(ids(await store.load("profiles"))).toEqual(new Set(["a", "b"]));
    const back = Date.now();
    fs.readWrite();
    await store.save([set("profiles", "c", { v: 3 })]);
    const recoveryMs = Date.now() - back;
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = ids(await reopened.load("profiles"));
    expect(loaded).toEqual(new Set(["a", "b", "c"]));
    await reopened.close();
    record({
      backend: "FileStore",
      fault: "read-only storage (EROFS)",
      injection: "tmpfs remounted ro",
      injections: 3,
      acknowledged: 3,
      acknowledgedLost: 3 - loaded.size,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage without a lock file, writable again: a store that loaded meanwhile saves under the lock file, so another process's compaction keeps what it acknowledged", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.save([set("ws", "a", { v: 1 })]);
    const file = writer.fileOf("ws");
    await writer.close();
    const lockFile = `${file.slice(0, -".jsonl".length)}.lock`;
    rmSync(lockFile);
    fs.readOnly();
    // Another process loads while there is no lock file and nothing can create one.
    const child = await spawnChild("store-load-save", { dir: fs.dir, namespace: "ws" }, {}, faultChild);
    await child.waitFor((l) => l === "pause loaded");
    expect(child.lines).toContain("loaded 1");
    fs.readWrite();
    // This process compacts: under the exclusive lock on the lock file, a new file with what the old one holds now is
    // renamed in once the child's save waits for that lock, or (were it not excluded) was acknowledged.
    const fd = openSync(lockFile, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      expect(flockTry(fd, "ex")).toBe(true);
      const compacted = readFileSync(file);
      child.process.stdin?.write("\n");
      const ino = statSync(lockFile).ino;
      while (!child.lines.some((l) => /^(ack|fail) 0/.test(l)) && !waitsForFlock(ino)) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      writeFileSync(`${file}.tmp`, compacted);
      renameSync(`${file}.tmp`, file);
    } finally {
      closeSync(fd);
    }
    await child.waitFor((l) => l === "done");
    expect((await child.exited).code).toBe(0);
    expect(child.lines.filter((l) => /^(ack|fail) /.test(l))).toEqual(["ack 0"]);
    const reopened = await open(fs.dir);
    expect(ids(await reopened.load("ws"))).toEqual(new Set(["a", "k0"]));
    await reopened.close();
  });

  // The fsync's failure in the thread pool (a rejected callback) and on the event loop (a thrown error) alike.
  for (const [op, fsyncOn] of [
    ["write", "thread-pool"],
    ["fsync", "thread-pool"],
    ["fsync", "event-loop"],
  ] as const) {
    it(`I/O error (EIO) on the 3rd ${op} (fsyncOn: ${fsyncOn}) of a namespace file: that save rejects, the descriptor is never fsynced again, later saves succeed, nothing acknowledged is lost`, async () => {
      const dir = tempDir("statelog-faults-");
      const probe = await open(dir);
      const name = path.basename(probe.fileOf("journal"));
      await probe.close();
      const report = path.join(tempDir("statelog-shim-"), "counters.json");
      const saves = 8;
      const run = await runUnderShim(
        "store-saves",
        { dir, namespace: "journal", saves, fsyncOn },
        { path: name, op, nth: 3, report },
      );
      expectOneFailedCall(run, op, saves, 2);
      const started = Date.now();
      const store = await open(dir);
      const loaded = ids(await store.load("journal"));
      await store.save([set("journal", "after", {})]);
      const recoveryMs = Date.now() - started;
      await store.close();
      const acked = run.acked.map((i) => `k${i}`);
      expect(lost(acked, loaded)).toBe(0);
      // The failed save's line was cut off: it never shows up as data.
      expect(loaded.has("k2")).toBe(false);
      record({
        backend: "FileStore",
        fault: `I/O error (EIO) on ${op}${fsyncOn === "event-loop" ? " (fsync on the event loop)" : ""}`,
        injection: `LD_PRELOAD shim fails the 3rd ${op === "write" ? "write/pwrite/writev" : "fsync/fdatasync"} on the namespace file, child process`,
        injections: run.counters.injected,
        acknowledged: acked.length,
        acknowledgedLost: lost(acked, loaded),
        rejectedVisible: loaded.has("k2") ? 1 : 0,
        unloadableStores: 0,
        recoveryMs,
      });
    });
  }

  it("I/O error (EIO) on the rename of a compaction: the compaction rejects (WriteFailedError, rename), the old file is intact, its temp file removed, saves and the next compaction work", async () => {
    const dir = tempDir("statelog-faults-");
    const probe = await open(dir);
    const file = probe.fileOf("ledger");
    await probe.close();
    const report = path.join(tempDir("statelog-shim-"), "counters.json");
    let before = Buffer.alloc(0);
    let after = Buffer.alloc(0);
    let tempsAfter: string[] = ["not looked at"];
    const run = await runUnderShim(
      "store-compact",
      { dir, namespace: "ledger" },
      { path: path.basename(file), op: "rename", nth: 1, report },
      (label) => {
        if (label === "before") before = readFileSync(file);
        if (label === "compacted") {
          after = readFileSync(file);
          tempsAfter = readdirSync(path.dirname(file)).filter((n) => n.endsWith(".tmp"));
        }
      },
    );
    expect(run.counters.injected).toBe(1);
    expect(run.counters.rename).toBe(2);
    const fail = run.lines.find((l) => l.startsWith("compact-fail "));
    expect(JSON.parse(fail?.slice("compact-fail ".length) ?? "{}")).toMatchObject({
      code: "STATELOG_WRITE_FAILED",
      errno: "EIO",
      operation: "rename",
    });
    expect(before.length).toBeGreaterThan(0);
    expect(after.equals(before)).toBe(true);
    expect(tempsAfter).toEqual([]);
    // Then a save and a compaction succeeded in the same process, without any repair.
    expect(run.acked).toEqual([0]);
    expect(run.lines.filter((l) => l === "compact ok")).toHaveLength(1);
    const started = Date.now();
    const store = await open(dir);
    const loaded = await store.load("ledger");
    await store.save([set("ledger", "later", {})]);
    const recoveryMs = Date.now() - started;
    await store.close();
    expect(statSync(file).size).toBeLessThan(before.length / 5);
    const rounds = new Map(loaded.map((c) => [c.entityId, (c.entity as { round: number }).round]));
    expect(rounds).toEqual(new Map([...[...Array(20).keys()].map((k) => [`k${k}`, 29] as const), ["after", 30]]));
    record({
      backend: "FileStore",
      fault: "I/O error (EIO) on the rename of a compaction",
      injection: "LD_PRELOAD shim fails the 1st rename/renameat onto the namespace file, child process",
      injections: run.counters.injected,
      acknowledged: 31,
      acknowledgedLost: 21 - rounds.size,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("I/O error (EIO) on the open of a namespace file: the save rejects (WriteFailedError, open), the next save opens it and succeeds, nothing acknowledged is lost", async () => {
    const dir = tempDir("statelog-faults-");
    const probe = await open(dir);
    const name = path.basename(probe.fileOf("journal"));
    await probe.close();
    const report = path.join(tempDir("statelog-shim-"), "counters.json");
    const run = await runUnderShim(
      "store-saves",
      { dir, namespace: "journal", saves: 6 },
      { path: name, op: "open", nth: 1, report },
    );
    expect(run.counters.injected).toBe(1);
    expect(run.counters.open).toBeGreaterThanOrEqual(2);
    expect(run.failed.map((f) => f.index)).toEqual([0]);
    expect(run.failed[0]).toMatchObject({ code: "STATELOG_WRITE_FAILED", errno: "EIO", operation: "open" });
    expect(run.acked).toEqual([1, 2, 3, 4, 5]);
    const started = Date.now();
    const store = await open(dir);
    const loaded = ids(await store.load("journal"));
    await store.save([set("journal", "after", {})]);
    const recoveryMs = Date.now() - started;
    await store.close();
    const acked = run.acked.map((i) => `k${i}`);
    expect(loaded).toEqual(new Set(acked));
    record({
      backend: "FileStore",
      fault: "I/O error (EIO) on open",
      injection: "LD_PRELOAD shim fails the 1st open/openat of the namespace file, child process",
      injections: run.counters.injected,
      acknowledged: acked.length,
      acknowledgedLost: lost(acked, loaded),
      rejectedVisible: loaded.has("k0") ? 1 : 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });
});
