/**
 * Exhausted descriptors (EMFILE) on the FileEventStore, through its
 * public API only: a child process opens a store whose appends each need
 * a new file (a small `segmentBytes`: every append rolls to a new
 * segment), then the test lowers the child's descriptor limit with
 * `prlimit` to the lowest descriptor number it has free, so that no
 * `open` can succeed, and later gives the limit back. Under the limit,
 * what needs a new file (a snapshot, opening a store) must fail, and an
 * append must either succeed or fail with a WriteFailedError; nothing
 * acknowledged may be lost, and once the limit is back the same store
 * appends and snapshots and a new store opens.
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FileEventStore } from "../../src/file/index.js";
import { tempDir } from "../file/helpers.js";
import { figures } from "./figures.js";
import { runChild } from "./harness.js";

const record = figures("file-event-store-emfile");

/** The lowest descriptor number `pid` has free: with the soft limit there, every open fails with EMFILE. */
function lowestFreeFd(pid: number): number {
  const used = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (used.has(fd)) fd++;
  return fd;
}

const softLimit = (pid: number): number =>
  Number(execFileSync("prlimit", ["--pid", String(pid), "--nofile", "--output", "SOFT", "--noheadings"]).toString());

describe("FileEventStore under exhausted descriptors (EMFILE)", () => {
  it("while no descriptor is left a snapshot fails with a WriteFailedError, opening a store fails, appends on the open segment succeed; once the limit is back all work; nothing acknowledged is lost", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir("statelog-faults-emfile-");
    const otherDir = tempDir("statelog-faults-emfile-other-");
    let original = 0;
    let limited = 0;
    let restoredAt = 0;
    const run = await runChild("event-emfile", { dir, otherDir }, {}, (label, pid) => {
      if (label === "exhausted") {
        original = softLimit(pid);
        limited = lowestFreeFd(pid);
        execFileSync("prlimit", ["--pid", String(pid), `--nofile=${limited}:`]);
        expect(softLimit(pid)).toBe(limited);
      } else if (label === "restored") {
        execFileSync("prlimit", ["--pid", String(pid), `--nofile=${original}:`]);
        restoredAt = Date.now();
      }
    });
    expect(limited).toBeGreaterThan(0);
    const under = [3, 4, 5];
    // Under the limit an append either needs no new descriptor (it writes to the open segment, a roll is
    // deferred) and is acknowledged, or fails with a WriteFailedError (EMFILE): nothing else.
    for (const f of run.failed) {
      expect(under, JSON.stringify(f)).toContain(f.index);
      expect(f).toMatchObject({ code: "STATELOG_WRITE_FAILED", errno: "EMFILE" });
    }
    expect(run.acked.filter((i) => !under.includes(i))).toEqual([0, 1, 2, 6, 7, 8]);
    expect(run.acked.length + run.failed.length).toBe(9);
    // A snapshot needs a new file: it fails with a WriteFailedError (EMFILE) and works once the limit is back.
    const snapshots = run.lines.filter((l) => l.startsWith("snapshot"));
    expect(snapshots).toHaveLength(2);
    expect(JSON.parse(snapshots[0]?.slice("snapshot-fail ".length) ?? "{}")).toMatchObject({
      code: "STATELOG_WRITE_FAILED",
      errno: "EMFILE",
      operation: "open",
    });
    expect(snapshots[1]).toBe("snapshot ok");
    // Reads keep working from what the store holds.
    expect(run.lines).toContain(`read ${3 + run.acked.filter((i) => under.includes(i)).length}`);
    // Opening another store under the limit fails (its LOCK file cannot be opened), then works once the limit is back.
    const opens = run.lines.filter((l) => l.startsWith("open"));
    expect(opens).toHaveLength(2);
    expect(opens[0]?.startsWith("open-fail ")).toBe(true);
    const openError = JSON.parse(opens[0]?.slice("open-fail ".length) ?? "{}") as { code?: string; message?: string };
    expect(openError.message).toMatch(/LOCK/);
    expect(openError).toMatchObject({ code: "STATELOG_WRITE_FAILED", errno: "EMFILE" });
    expect(opens[1]).toBe("open ok");
    const recoveryMs = Date.now() - restoredAt;
    // Reopened: exactly the acknowledged appends, none of the rejected ones.
    const store = await FileEventStore.open({ directory: dir });
    const loaded = (await store.readStream("s")).map((e) => e.id);
    await store.close();
    expect(loaded).toEqual(run.acked.map((i) => `e${i}`));
    const other = await FileEventStore.open({ directory: otherDir });
    expect((await other.readStream("o")).map((e) => e.id)).toEqual(["o"]);
    await other.close();
    record({
      backend: "FileEventStore",
      fault: "exhausted descriptors (EMFILE) during appends, a snapshot and an open",
      injection: "prlimit lowers the child's RLIMIT_NOFILE to its lowest free descriptor, then restores it",
      injections: run.failed.length + 2,
      acknowledged: run.acked.length,
      acknowledgedLost: run.acked.filter((i) => !loaded.includes(`e${i}`)).length,
      rejectedVisible: run.failed.filter((f) => loaded.includes(`e${f.index}`)).length,
      unloadableStores: 0,
      recoveryMs,
    });
  });
});
