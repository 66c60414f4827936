/**
 * A FileReadModelStore's compaction fsyncs its new log (and the directory)
 * before and after the rename whatever `sync` says, as the FileStore's
 * compactions do: renamed unsynced over the log, a crash of the OS could
 * leave an empty file where the whole store was. Watched through the
 * store's atomic file write (`writeFileAtomic`, wrapped).
 */
import { describe, expect, it, vi } from "vitest";

const calls = vi.hoisted(() => [] as string[]);

vi.mock("../../src/file/fs.js", async (importOriginal) => {
  const fs = await importOriginal<typeof import("../../src/file/fs.js")>();
  return {
    ...fs,
    writeFileAtomic: (file: string, parts: readonly Uint8Array[], sync: string) => {
      calls.push(sync);
      return fs.writeFileAtomic(file, parts, sync as Parameters<typeof fs.writeFileAtomic>[2]);
    },
  };
});

const { FileReadModelStore } = await import("../../src/file/index.js");
const { readModelMetadata } = await import("../../src/testing/index.js");
const { tempDir } = await import("./helpers.js");

describe("FileReadModelStore compaction", () => {
  it.each(["none", "fsync"] as const)("with sync: %j, writes its new log with fsyncs", async (sync) => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory, sync, compactionMinDeadRecords: 10 });
    calls.length = 0;
    for (let i = 0; i < 30; i++) await store.save({ i }, readModelMetadata("T", "one"));
    await store.compact();
    // The automatic compactions (30 saves of one model) and the explicit one: each fsynced.
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(new Set(calls)).toEqual(new Set(["fsync"]));
    expect(store.count("T")).toBe(1);
    await store.close();
  });
});
