/**
 * `close()` abandons an automatic compaction of a large file that has not
 * reached its exclusive step (it is background work: the file stays as it
 * is, and a later store compacts it), on the main thread and in a worker;
 * a compaction the caller asked for is waited for, and so is an automatic
 * one of a small file. "Large" (16 MiB) is lowered here to 0.
 */
import { readdirSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { FileStore, type FileStoreOptions } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { SOURCE_COMPACTION_WORKER, tempDir } from "./helpers.js";

const KEYS = 500;
const set = (k: number, v: number): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId: `k${k}`,
  entity: { k, v, pad: "x".repeat(100) },
});

/** A directory whose namespace holds `rounds` versions of every key, written without compaction. */
async function written(rounds: number): Promise<string> {
  const directory = tempDir();
  const store = await FileStore.open({ directory, autoCompact: false });
  for (let v = 0; v < rounds; v++) await store.save(Array.from({ length: KEYS }, (_, k) => set(k, v)));
  await store.close();
  return directory;
}

const open = (directory: string, options: Partial<FileStoreOptions>): Promise<FileStore> =>
  FileStore.open(
    withInternals(
      { directory, autoCompact: { minLines: 100, ratio: 2 }, ...options },
      { readChunkBytes: 4096, compactionWorkerUrl: SOURCE_COMPACTION_WORKER, abandonCompactionMinBytes: 0 },
    ),
  );

async function expectAllKeys(directory: string, last: number): Promise<void> {
  const store = await FileStore.open({ directory, autoCompact: false });
  const changes = await store.load("ws");
  await store.close();
  expect(changes.length).toBe(KEYS);
  expect(changes.find((c) => c.entityId === "k7")?.entity).toEqual({ k: 7, v: last, pad: "x".repeat(100) });
}

describe("close and automatic compaction", () => {
  it.each([
    ["on the main thread", Number.POSITIVE_INFINITY],
    ["in a worker", 0],
  ])(
    "close() abandons a running automatic compaction %s: nothing replaced, no temp file left, nothing lost",
    async (_, workerMinBytes) => {
      const directory = await written(20);
      const store = await open(directory, { compactionWorkerMinBytes: workerMinBytes });
      const file = store.fileOf("ws");
      await store.save([set(7, 99)]); // the file has 20 lines per key: this save starts a compaction
      const { ino, size } = statSync(file);
      await store.close();
      expect(store.stats().compactions).toBe(0);
      expect(statSync(file).ino).toBe(ino);
      expect(readdirSync(directory).filter((f) => f.endsWith(".tmp"))).toEqual([]);
      await expectAllKeys(directory, 99);
      // The next store compacts it when it is worth it.
      const next = await open(directory, { compactionWorkerMinBytes: workerMinBytes });
      await next.load("ws");
      await new Promise((r) => setTimeout(r, 50));
      await next.compact("ws");
      expect(next.stats().compactions).toBeGreaterThanOrEqual(1);
      await next.close();
      expect(statSync(file).size).toBeLessThan(size / 10);
      await expectAllKeys(directory, 99);
    },
  );

  it("close() waits for an automatic compaction of a file below the threshold", async () => {
    const directory = await written(20);
    const store = await FileStore.open(
      withInternals(
        { directory, autoCompact: { minLines: 100, ratio: 2 }, compactionWorkerMinBytes: Number.POSITIVE_INFINITY },
        { readChunkBytes: 4096, abandonCompactionMinBytes: 8 * 1024 * 1024 },
      ),
    );
    const file = store.fileOf("ws");
    const { size } = statSync(file);
    expect(size).toBeLessThan(8 * 1024 * 1024);
    await store.save([set(7, 99)]);
    await store.close();
    expect(store.stats().compactions).toBe(1);
    expect(statSync(file).size).toBeLessThan(size / 10);
    await expectAllKeys(directory, 99);
  });

  it("close() waits for a compaction the caller asked for", async () => {
    const directory = await written(20);
    const store = await open(directory, { autoCompact: false });
    const file = store.fileOf("ws");
    const { size } = statSync(file);
    const compaction = store.compact("ws");
    await store.close();
    await compaction;
    expect(store.stats().compactions).toBe(1);
    expect(statSync(file).size).toBeLessThan(size / 10);
    expect(statSync(file).size).toBeLessThan(size / 10);
    await expectAllKeys(directory, 19);
  });
});
