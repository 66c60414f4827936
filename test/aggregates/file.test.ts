import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FILE_SNAPSHOT_STORE_DEFAULTS, FileEventStore, FileSnapshotStore } from "../../src/file/index.js";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import { describeEventSourcedRepositoryContract, describeSnapshotStoreContract } from "../../src/testing/index.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "statelog-aggregates-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describeEventSourcedRepositoryContract(
  "FileEventStore + FileSnapshotStore",
  {
    eventStore: async (options) => FileEventStore.open({ ...options, directory: await tempDir(), sync: "none" }),
    snapshots: async () => FileSnapshotStore.open({ directory: await tempDir(), sync: "none" }),
  },
  { propertyRuns: 40 },
);

describeSnapshotStoreContract("FileSnapshotStore", async () => FileSnapshotStore.open({ directory: await tempDir() }), {
  reopen: async (store) => {
    await store.close();
    return FileSnapshotStore.open({ directory: (store as FileSnapshotStore).directory });
  },
});

describe("FileSnapshotStore", () => {
  it("two stores of one directory in one process saving one stream at once: every save lands whole", async () => {
    const directory = await tempDir();
    const [a, b] = [await FileSnapshotStore.open({ directory }), await FileSnapshotStore.open({ directory })];
    const snapshot = (version: number, by: string) => ({
      streamId: "order-1",
      version,
      snapshotVersion: 1,
      state: { by, version, pad: by.repeat(2000) },
      createdAt: new Date(),
    });
    for (let round = 1; round <= 40; round++) {
      // Each save writes a temp file of its own and renames it over the stream's file.
      await Promise.all([a.save(snapshot(round, "a")), b.save(snapshot(round, "b"))]);
      const loaded = await FileSnapshotStore.open({ directory, maxCachedStreams: 0 });
      const got = await loaded.load("order-1");
      await loaded.close();
      expect(got?.version).toBe(round);
      expect(["a", "b"]).toContain((got?.state as { by: string } | undefined)?.by);
    }
    expect((await readdir(directory)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await a.close();
    await b.close();
  });

  it("refuses bad options with a ConfigurationError naming them, creating nothing", async () => {
    const parent = await tempDir();
    for (const [options, pattern] of [
      [{}, /FileSnapshotStore option directory must be a non-empty string/],
      [
        { directory: join(parent, "a"), sync: "always" },
        /FileSnapshotStore option sync must be one of "fsync", "none"/,
      ],
      [{ directory: join(parent, "b"), dir: "x" }, /FileSnapshotStore has no option dir/],
      [{ directory: join(parent, "c"), maxSnapshotsPerStream: 0 }, /maxSnapshotsPerStream/],
    ] as const) {
      const caught = await FileSnapshotStore.open(options as never).catch((e: unknown) => e);
      expect(isStatelogError(caught, ErrorCode.Configuration)).toBe(true);
      expect(String(caught)).toMatch(pattern);
    }
    expect(await readdir(parent)).toEqual([]);
    expect(FILE_SNAPSHOT_STORE_DEFAULTS).toMatchObject({ sync: "fsync", maxSnapshotsPerStream: 8 });
  });

  it("a damaged snapshot file is a CorruptionError on load and is replaced by the next save", async () => {
    const directory = await tempDir();
    const store = await FileSnapshotStore.open({ directory });
    const snap = { streamId: "order-1", version: 2, snapshotVersion: 1, state: { ok: 1 }, createdAt: new Date() };
    await store.save(snap);
    const [file] = await readdir(directory);
    expect(file).toMatch(/^snapshots-[0-9a-f]{64}\.json$/);
    await writeFile(join(directory, file as string), "{ not json");
    const error = await store.load("order-1").catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.Corruption)).toBe(true);
    await store.save({ ...snap, version: 3 });
    expect((await store.load("order-1"))?.version).toBe(3);
    // A snapshot without its state (edited by hand): a CorruptionError too, every time.
    const text = await readFile(join(directory, file as string), "utf8");
    await writeFile(join(directory, file as string), text.replace(/,"state":\{"ok":1\}/, ""));
    const reread = await FileSnapshotStore.open({ directory });
    for (let i = 0; i < 2; i++) {
      const noState = await reread.load("order-1").catch((e: unknown) => e);
      expect(isStatelogError(noState, ErrorCode.Corruption), String(noState)).toBe(true);
      expect(String(noState)).toContain("or state");
    }
    await reread.close();
    await store.close();
  });
});
