/**
 * Compaction temp files: two stores of one process compacting one
 * namespace at once each use their own temp file, and stale temps of
 * dead processes are removed, never a live compaction's.
 */
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileStore } from "../../src/file/index.js";
import { paddedItemSet as set, tempDir } from "./helpers.js";

const open = (dir: string) => FileStore.open({ directory: dir, autoCompact: false });

describe("compaction temp files", () => {
  it("two stores of one process compacting one namespace concurrently while saving: no error, nothing lost", async () => {
    const dir = tempDir();
    const [a, b] = await Promise.all([open(dir), open(dir)]);
    const latest = new Map<string, number>();
    for (let round = 0; round < 20; round++) {
      const batch = Array.from({ length: 500 }, (_, i) => set(`k${i}`, round));
      await a.save(batch);
      for (let i = 0; i < 500; i++) latest.set(`k${i}`, round);
    }
    const work: Promise<unknown>[] = [];
    for (let round = 0; round < 6; round++) {
      work.push(a.compact("ws"), b.compact("ws"));
      for (const [s, store] of [a, b].entries()) {
        const id = `new-${s}-${round}`;
        latest.set(id, round);
        work.push(store.save([set(id, round)]));
      }
    }
    const results = await Promise.allSettled(work);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    for (const store of [a, b]) {
      const loaded = await store.load("ws");
      expect(new Map(loaded.map((c) => [c.entityId, (c.entity as { n: number }).n]))).toEqual(latest);
    }
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it("removes temps of dead processes and of no running compaction here, keeps a live process's", async () => {
    const dir = tempDir();
    const store = await open(dir);
    for (let round = 0; round < 3; round++) await store.save([set("a", round), set("b", round)]);
    const base = path.basename(store.fileOf("ws"), ".jsonl");
    const dead = `${base}.4194305.0.tmp`; // above Linux's pid_max: no such process
    const oldStyle = `${base}.4194305.tmp`;
    const mineStale = `${base}.${process.pid}.7.tmp`;
    const alive = `${base}.${process.ppid}.0.tmp`;
    const other = `other.4194305.0.tmp`;
    for (const name of [dead, oldStyle, mineStale, alive, other]) writeFileSync(path.join(dir, name), "x");
    await store.compact("ws");
    expect(
      readdirSync(dir)
        .filter((n) => n.endsWith(".tmp"))
        .sort(),
    ).toEqual([alive, other].sort());
    expect((await store.load("ws")).map((c) => (c.entity as { n: number }).n)).toEqual([2, 2]);
    await store.close();
  });
});
