/**
 * Storage faults while the FileEventStore writes its index side files
 * (`index-*.idx`, derived data): a failed index write never fails an
 * append or a close, nothing acknowledged is lost, and the next open
 * rebuilds what the index misses from the segments.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeIndex } from "../../src/file/events/index-file.js";
import { FileEventStore } from "../../src/file/index.js";
import { tempDir } from "../file/helpers.js";
import { figures } from "./figures.js";
import { runUnderShim } from "./harness.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("file-event-store-index");

const ev = (id: string) => ({ id, type: "n", data: { id, pad: "z".repeat(200) }, timestamp: new Date(0) });
const ids = async (store: FileEventStore): Promise<string[]> => (await store.readStream("s")).map((e) => e.id);

/** Events the index files of `dir` hold, over every segment. */
function indexedEvents(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir).filter((f) => f.startsWith("index-"))) {
    for (const block of decodeIndex(readFileSync(path.join(dir, name))).blocks) n += block.lengths.length;
  }
  return n;
}

describe("FileEventStore index files under storage faults", () => {
  it("disk full when the index is written (close): close resolves, a reopen on the full disk reads every acknowledged event, and the index is whole again once space returns", async () => {
    const fs = Tmpfs.mount(512 * 1024);
    const open = () => FileEventStore.open({ directory: fs.dir, sync: "fsync" });
    const store = await open();
    const acked: string[] = [];
    for (let i = 0; i < 40; i++) {
      await store.append("s", [ev(`a${i}`)]);
      acked.push(`a${i}`);
    }
    fs.fill();
    await store.close();
    // The close's index block did not fit: the index holds fewer events than the segment.
    expect(indexedEvents(fs.dir)).toBeLessThan(acked.length);
    const started = Date.now();
    const onFullDisk = await open();
    expect(await ids(onFullDisk)).toEqual(acked);
    await onFullDisk.close();
    fs.free();
    const reopened = await open();
    await reopened.append("s", [ev("after")]);
    acked.push("after");
    const recoveryMs = Date.now() - started;
    await reopened.close();
    expect(indexedEvents(fs.dir)).toBe(acked.length);
    const last = await open();
    const loaded = await ids(last);
    await last.close();
    expect(loaded).toEqual(acked);
    record({
      backend: "FileEventStore",
      fault: "disk full (ENOSPC) while writing the index side file",
      injection: "tmpfs of 512 KiB filled before close",
      injections: 1,
      acknowledged: acked.length,
      acknowledgedLost: acked.filter((id) => !loaded.includes(id)).length,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("I/O error (EIO) on an index write: every append is still acknowledged and kept, and the next open rebuilds the index", async () => {
    const dir = tempDir("statelog-faults-");
    const report = path.join(tempDir("statelog-shim-"), "counters.json");
    const appends = 40;
    const run = await runUnderShim(
      "event-appends",
      { dir, appends, segmentBytes: 2048 },
      { path: "index-", op: "write", nth: 2, report },
    );
    expect(run.counters.injected).toBe(1);
    expect(run.failed).toEqual([]);
    expect(run.acked).toHaveLength(appends);
    const started = Date.now();
    const store = await FileEventStore.open({ directory: dir, sync: "fsync" });
    const loaded = await ids(store);
    await store.append("s", [ev("after")]);
    const recoveryMs = Date.now() - started;
    await store.close();
    const acked = run.acked.map((i) => `e${i}`);
    expect(loaded).toEqual(acked);
    expect(indexedEvents(dir)).toBe(appends + 1);
    record({
      backend: "FileEventStore",
      fault: "I/O error (EIO) on an index write",
      injection: "LD_PRELOAD shim fails the 2nd write on index-*.idx files, child process",
      injections: run.counters.injected,
      acknowledged: acked.length,
      acknowledgedLost: acked.filter((id) => !loaded.includes(id)).length,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });
});
