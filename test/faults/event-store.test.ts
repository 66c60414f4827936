/**
 * Storage faults on the FileEventStore: disk full (a test-mounted tmpfs),
 * read-only storage (that tmpfs remounted `ro`) and I/O errors (the
 * LD_PRELOAD shim, in a child). Acknowledged appends lost must be 0.
 */
import { appendFileSync, readFileSync, rmSync, statSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileEventStore, isLockedError, isWriteFailedError, type WriteFailedError } from "../../src/file/index.js";
import { isUnavailableError } from "../../src/index.js";
import { tempDir } from "../file/helpers.js";
import { figures } from "./figures.js";
import { expectOneFailedCall, runUnderShim } from "./harness.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("file-event-store");

const ev = (id: string) => ({ id, type: "n", data: { id, pad: "z".repeat(200) }, timestamp: new Date(0) });
const open = (dir: string): Promise<FileEventStore> => FileEventStore.open({ directory: dir, sync: "fsync" });
const ids = async (store: FileEventStore): Promise<string[]> => (await store.readStream("s")).map((e) => e.id);

function expectWriteFailed(error: unknown, errno: string): void {
  expect(isWriteFailedError(error), String(error)).toBe(true);
  expect((error as WriteFailedError).errno).toBe(errno);
  expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe(errno);
}

describe("FileEventStore under storage faults", () => {
  it("disk full: the append rejects (WriteFailedError, ENOSPC), acknowledged events stay, appends resume once space returns", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const store = await open(fs.dir);
    const acked: string[] = [];
    for (let i = 0; i < 10; i++) {
      await store.append("s", [ev(`a${i}`)]);
      acked.push(`a${i}`);
    }
    fs.fill();
    let error: unknown;
    for (let i = 0; i < 2000 && error === undefined; i++) {
      await store.append("s", [ev(`b${i}`)]).then(
        () => acked.push(`b${i}`),
        (e: unknown) => {
          error = e;
        },
      );
    }
    expectWriteFailed(error, "ENOSPC");
    expect(await ids(store)).toEqual(acked);
    const freed = Date.now();
    fs.free();
    await store.append("s", [ev("after")]);
    const recoveryMs = Date.now() - freed;
    acked.push("after");
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = await ids(reopened);
    expect(loaded).toEqual(acked);
    await reopened.close();
    record({
      backend: "FileEventStore",
      fault: "disk full (ENOSPC) during appends",
      injection: "tmpfs of 256 KiB filled by a filler file",
      injections: 1,
      acknowledged: acked.length,
      acknowledgedLost: acked.filter((id) => !loaded.includes(id)).length,
      rejectedVisible: loaded.length - acked.length,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage: the store opens and reads, appends fail with WriteFailedError (EROFS); writable again, a reopened store appends", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.append("s", [ev("a"), ev("b")]);
    await writer.close();
    fs.readOnly();
    const store = await open(fs.dir);
    expect(await ids(store)).toEqual(["a", "b"]);
    expectWriteFailed(await store.append("s", [ev("c")]).catch((e: unknown) => e), "EROFS");
    expect(await ids(store)).toEqual(["a", "b"]);
    const back = Date.now();
    fs.readWrite();
    await store.append("s", [ev("c")]);
    const recoveryMs = Date.now() - back;
    await store.close();
    const reopened = await open(fs.dir);
    const loaded = await ids(reopened);
    expect(loaded).toEqual(["a", "b", "c"]);
    await reopened.close();
    record({
      backend: "FileEventStore",
      fault: "read-only storage (EROFS)",
      injection: "tmpfs remounted ro",
      injections: 1,
      acknowledged: 3,
      acknowledgedLost: 3 - loaded.length,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("read-only storage before the first append: the segment the open could not make is made once writable", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    // A directory the store was opened in once, whose first segment was never made (say, the disk was full).
    const writer = await open(fs.dir);
    await writer.close();
    for (const name of await readdir(fs.dir)) if (name.startsWith("segment-")) await rm(path.join(fs.dir, name));
    fs.readOnly();
    const store = await open(fs.dir);
    expectWriteFailed(await store.append("s", [ev("a")]).catch((e: unknown) => e), "EROFS");
    fs.readWrite();
    await store.append("s", [ev("a")]);
    await store.close();
    const reopened = await open(fs.dir);
    expect(await ids(reopened)).toEqual(["a"]);
    await reopened.close();
  });

  it("read-only storage with a torn last append: the store opens and reads what precedes it; writable again, the first append cuts the torn bytes before it writes", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.append("s", [ev("a")]);
    await writer.append("s", [ev("b")]);
    await writer.close();
    const segment = path.join(fs.dir, (await readdir(fs.dir)).find((n) => n.startsWith("segment-")) as string);
    const whole = statSync(segment).size;
    // What a crash in the middle of an append's write leaves.
    appendFileSync(segment, '{"g":3,"s":"s","p":3,"id":"torn","ty');
    fs.readOnly();
    const store = await open(fs.dir);
    expect(await ids(store)).toEqual(["a", "b"]);
    expectWriteFailed(await store.append("s", [ev("c")]).catch((e: unknown) => e), "EROFS");
    fs.readWrite();
    await store.append("s", [ev("c")]);
    expect(await ids(store)).toEqual(["a", "b", "c"]);
    await store.close();
    expect(readFileSync(segment, "utf8").slice(whole)).toMatch(/^\{"g":3,.*"id":"c"/);
    expect(readFileSync(segment, "utf8")).not.toContain("torn");
    const reopened = await open(fs.dir);
    expect(await ids(reopened)).toEqual(["a", "b", "c"]);
    await reopened.close();
  });

  it("read-only storage without a LOCK file: the store opens and reads unlocked; writable again, it writes only under LOCK, never beside a store holding it", async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const writer = await open(fs.dir);
    await writer.append("s", [ev("a")]);
    await writer.close();
    rmSync(path.join(fs.dir, "LOCK"));
    fs.readOnly();
    const early = await open(fs.dir);
    expect(await ids(early)).toEqual(["a"]);
    expectWriteFailed(await early.append("s", [ev("b")]).catch((e: unknown) => e), "EROFS");
    fs.readWrite();
    // A store opened now creates LOCK and holds it: the early one's appends and snapshots are refused, not made beside its.
    const later = await open(fs.dir);
    expect(isLockedError(await early.append("s", [ev("b")]).catch((e: unknown) => e))).toBe(true);
    expect(isLockedError(await early.snapshot().catch((e: unknown) => e))).toBe(true);
    await later.append("s", [ev("c")]);
    await later.close();
    // The segments changed under the early store: it must be reopened to append (its positions are stale).
    expect(isUnavailableError(await early.append("s", [ev("b")]).catch((e: unknown) => e))).toBe(true);
    await early.close();
    const reopened = await open(fs.dir);
    expect(await ids(reopened)).toEqual(["a", "c"]);
    await reopened.close();
    // Unchanged meanwhile: the first append once writable takes LOCK (created) and works.
    rmSync(path.join(fs.dir, "LOCK"));
    fs.readOnly();
    const alone = await open(fs.dir);
    fs.readWrite();
    await alone.append("s", [ev("d")]);
    expect(await readdir(fs.dir)).toContain("LOCK");
    expect(isLockedError(await open(fs.dir).catch((e: unknown) => e))).toBe(true);
    await alone.close();
    const last = await open(fs.dir);
    expect(await ids(last)).toEqual(["a", "c", "d"]);
    await last.close();
  });

  // The fsync's failure in the thread pool (a rejected callback) and on the event loop (a thrown error) alike.
  for (const [op, fsyncOn] of [
    ["write", "thread-pool"],
    ["fsync", "thread-pool"],
    ["fsync", "event-loop"],
  ] as const) {
    it(`I/O error (EIO) on the 3rd ${op} (fsyncOn: ${fsyncOn}) of a segment: that append rejects, the descriptor is never fsynced again, later appends succeed, nothing acknowledged is lost`, async () => {
      const dir = tempDir("statelog-faults-");
      const report = path.join(tempDir("statelog-shim-"), "counters.json");
      const appends = 8;
      const run = await runUnderShim(
        "event-appends",
        { dir, appends, fsyncOn },
        { path: "segment-", op, nth: 3, report },
      );
      expectOneFailedCall(run, op, appends, 2);
      const started = Date.now();
      const store = await open(dir);
      const loaded = (await store.readStream("s")).map((e) => e.id);
      await store.append("s", [ev("after")]);
      const recoveryMs = Date.now() - started;
      await store.close();
      const acked = run.acked.map((i) => `e${i}`);
      expect(loaded).toEqual(acked);
      record({
        backend: "FileEventStore",
        fault: `I/O error (EIO) on ${op}${fsyncOn === "event-loop" ? " (fsync on the event loop)" : ""}`,
        injection: `LD_PRELOAD shim fails the 3rd ${op === "write" ? "write/pwrite/writev" : "fsync/fdatasync"} on the segment, child process`,
        injections: run.counters.injected,
        acknowledged: acked.length,
        acknowledgedLost: acked.filter((id) => !loaded.includes(id)).length,
        rejectedVisible: loaded.includes("e2") ? 1 : 0,
        unloadableStores: 0,
        recoveryMs,
      });
    });
  }
});
