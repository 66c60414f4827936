/**
 * Compaction's first step in a worker thread (large files; the threshold,
 * option `compactionWorkerMinBytes`, is lowered here so that small files
 * take that path too). `stats()` tells on which thread each scan ran. The
 * worker runs from the TypeScript sources (helpers.ts, `withSourceWorker`).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { CorruptionError, isCorruptionError } from "../../src/core/errors.js";
import { AUTO_COMPACTION_NICE } from "../../src/file/compaction.js";
import { FileStore, type FileStoreOptions } from "../../src/file/index.js";
import { tempDir, withSourceWorker } from "./helpers.js";

const change = (id: string, n: number | undefined): ChangeInput =>
  n === undefined
    ? { namespace: "ws", changeType: "unset", entityType: "item", entityId: id }
    : { namespace: "ws", changeType: "set", entityType: "item", entityId: id, entity: { n } };

async function filled(options: Partial<FileStoreOptions> = {}): Promise<FileStore> {
  const store = await FileStore.open(
    withSourceWorker({ directory: tempDir(), autoCompact: false, compactionWorkerMinBytes: 0, ...options }),
  );
  for (let round = 0; round < 5; round++) {
    await store.save([change("a", round), change("b", round), change(`only-${round}`, round)]);
  }
  await store.save([change("b", undefined)]);
  return store;
}

describe("compaction in a worker thread", () => {
  it("bug: a superseded line whose key bytes were damaged fails the worker's scan with its line", async () => {
    const store = await filled();
    const file = store.fileOf("ws");
    const content = readFileSync(file, "utf8").split("\n");
    // Line 1 is "a" (round 0); as "b" it is superseded by later "b" lines and would go unchecked.
    content[0] = (content[0] as string).replace('"entityID":"a"', '"entityID":"b"');
    writeFileSync(file, content.join("\n"));
    const before = readFileSync(file);
    const error = await store.compact("ws").catch((e: unknown) => e);
    expect(store.stats()).toMatchObject({ workerScans: 1, mainThreadScans: 0 });
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).line).toBe(1);
    expect(readFileSync(file)).toEqual(before);
    await store.close();
  });

  it("compacts to the same state, keeping saves made meanwhile", async () => {
    const store = await filled();
    const before = await store.load("ws");
    const compacting = store.compact("ws");
    const meanwhile = store.save([change("late", 1)]);
    await Promise.all([compacting, meanwhile]);
    expect(store.stats()).toMatchObject({ workerScans: 1, mainThreadScans: 0 });
    const after = await store.load("ws");
    expect(after.map((c) => [c.entityId, c.changeType, c.entity])).toEqual(
      [...before, { entityId: "late", changeType: "set", entity: { n: 1 } }].map((c) => [
        c.entityId,
        c.changeType,
        c.entity,
      ]),
    );
    const lines = readFileSync(store.fileOf("ws"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(after.length);
    expect(readdirSync(store.directory).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await store.close();
  });

  it("a damaged line is a CorruptionError with file and line, and the file stays as it was", async () => {
    const store = await filled();
    const file = store.fileOf("ws");
    const lines = readFileSync(file, "utf8").split("\n");
    // Line 13 is the last save of "a" (rounds of 3 lines: a, b, only-<round>).
    lines[12] = (lines[12] as string).replace('"n":4', '"n":9');
    const damaged = lines.join("\n");
    writeFileSync(file, damaged);
    const error = await store.compact("ws").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(store.stats()).toMatchObject({ workerScans: 1, mainThreadScans: 0 });
    expect(isCorruptionError(error)).toBe(true);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).file).toBe(file);
    expect((error as CorruptionError).line).toBe(13);
    expect((error as Error).message).toContain("checksum mismatch");
    expect(readFileSync(file, "utf8")).toBe(damaged);
    expect(readdirSync(store.directory).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await store.close();
  });

  it("skips damaged lines in skip mode and reports them", async () => {
    const reported: number[][] = [];
    const store = await filled({ onCorruption: "skip", onSkippedLines: (r) => reported.push(r.lines) });
    const file = store.fileOf("ws");
    const lines = readFileSync(file, "utf8").split("\n");
    lines[12] = "not json";
    writeFileSync(file, lines.join("\n"));
    await store.compact("ws");
    expect(store.stats()).toMatchObject({ workerScans: 1, mainThreadScans: 0 });
    expect(reported).toEqual([[13]]);
    expect((await store.load("ws")).find((c) => c.entityId === "a")?.entity).toEqual({ n: 3 });
    await store.close();
  });

  it("automatic compaction decides in the worker whether it is worth it", async () => {
    const store = await FileStore.open(
      withSourceWorker({ directory: tempDir(), autoCompact: { minLines: 10, ratio: 2 }, compactionWorkerMinBytes: 0 }),
    );
    for (let round = 0; round < 12; round++) await store.save([change("a", round), change("b", round)]);
    await store.close(); // waits for the background compaction
    const { compactions, workerScans, mainThreadScans } = store.stats();
    expect(compactions).toBeGreaterThan(0);
    expect(workerScans).toBeGreaterThanOrEqual(compactions);
    expect(mainThreadScans).toBe(0);
    const reopened = await FileStore.open({ directory: store.directory, autoCompact: false });
    expect((await reopened.load("ws")).map((c) => c.entity)).toEqual([{ n: 11 }, { n: 11 }]);
    expect(readFileSync(reopened.fileOf("ws"), "utf8").trim().split("\n").length).toBeLessThan(24);
    await reopened.close();
  });

  it("the threshold: files smaller than compactionWorkerMinBytes are scanned on the main thread", async () => {
    const probe = await filled();
    const size = readFileSync(probe.fileOf("ws")).length;
    await probe.close();
    const results: Record<string, unknown> = {};
    for (const [name, options] of Object.entries({
      atSize: { compactionWorkerMinBytes: size },
      aboveSize: { compactionWorkerMinBytes: size + 1 },
      never: { compactionWorkerMinBytes: Number.POSITIVE_INFINITY },
      byDefault: { compactionWorkerMinBytes: undefined }, // 16 MiB
    })) {
      const store = await filled(options);
      await store.compact("ws");
      const { workerScans, mainThreadScans, compactions } = store.stats();
      results[name] = { workerScans, mainThreadScans, compactions };
      await store.close();
    }
    expect(results).toEqual({
      atSize: { workerScans: 1, mainThreadScans: 0, compactions: 1 },
      aboveSize: { workerScans: 0, mainThreadScans: 1, compactions: 1 },
      never: { workerScans: 0, mainThreadScans: 1, compactions: 1 },
      byDefault: { workerScans: 0, mainThreadScans: 1, compactions: 1 },
    });
  });

  /** The highest nice value among this process's threads seen (Linux: field 19 of `/proc/self/task/<tid>/stat`) while `work` runs. */
  async function highestNiceDuring(work: () => Promise<void>): Promise<number> {
    let highest = 0;
    const look = (): void => {
      for (const tid of readdirSync("/proc/self/task")) {
        try {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
          // After the command name in parentheses: field 3 onwards; nice is field 19.
          const nice = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
          highest = Math.max(highest, nice);
        } catch {
          // the thread ended meanwhile
        }
      }
    };
    const timer = setInterval(look, 1);
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    look();
    return highest;
  }

  // Thread nice values are Linux's (read and set through /proc): elsewhere the worker keeps the process's priority.
  it.runIf(existsSync("/proc/thread-self"))(
    "an automatic compaction's worker thread runs at a lower CPU priority; one the caller asked for does not",
    async () => {
      expect(AUTO_COMPACTION_NICE).toBeGreaterThan(0);
      // First the compaction the caller asked for (no worker thread of an earlier one still ending).
      const manual = await filled();
      const manualNice = await highestNiceDuring(() => manual.compact("ws"));
      expect(manual.stats()).toMatchObject({ workerScans: 1, compactions: 1 });
      expect(manualNice).toBe(0);
      await manual.close();

      // Files of a few MiB: each scan lasts long enough to be seen.
      const big = (round: number): ChangeInput[] =>
        Array.from({ length: 500 }, (_, i) => ({
          namespace: "ws",
          changeType: "set",
          entityType: "item",
          entityId: `k${i}`,
          entity: { n: round, pad: "x".repeat(1000) },
        }));
      const auto = await FileStore.open(
        withSourceWorker({
          directory: tempDir(),
          autoCompact: { minLines: 10, ratio: 2 },
          compactionWorkerMinBytes: 0,
        }),
      );
      const autoNice = await highestNiceDuring(async () => {
        for (let round = 0; round < 40; round++) await auto.save(big(round));
        await auto.close(); // waits for the background compaction (files below 16 MiB: never abandoned)
      });
      expect(auto.stats().workerScans).toBeGreaterThan(0);
      expect(autoNice).toBe(AUTO_COMPACTION_NICE);
    },
  );
});
