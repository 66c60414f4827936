/**
 * Opening a file backend where its directory cannot be created, using a
 * store whose directory was removed, or one with a directory in a
 * namespace file's place (or an event store's segment or index file), is
 * a typed error naming the path and the system error — never a raw
 * `ENOTDIR`/`EISDIR` from deep inside.
 */
import { mkdirSync, renameSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FileEventStore,
  FileReadModelStore,
  FileSnapshotStore,
  FileStore,
  isWriteFailedError,
  type WriteFailedError,
} from "../../src/file/index.js";
import { isCorruptionError } from "../../src/index.js";
import { tempDir } from "./helpers.js";

describe("opening a file backend under a regular file", () => {
  const blocked = () => {
    const file = join(tempDir(), "a-file");
    writeFileSync(file, "not a directory");
    return join(file, "store");
  };
  const opens: [string, (directory: string) => Promise<{ close(): Promise<void> }>][] = [
    ["FileStore", (directory) => FileStore.open({ directory })],
    ["FileEventStore", (directory) => FileEventStore.open({ directory })],
    ["FileSnapshotStore", (directory) => FileSnapshotStore.open({ directory })],
    ["FileReadModelStore", (directory) => FileReadModelStore.open({ directory })],
  ];
  for (const [name, open] of opens) {
    it(`${name}: a WriteFailedError for mkdir with the path and ENOTDIR, saying the store was not opened`, async () => {
      const directory = blocked();
      const error = await open(directory).then(
        (store) => store.close(),
        (e: unknown) => e,
      );
      expect(isWriteFailedError(error), String(error)).toBe(true);
      expect((error as WriteFailedError).operation).toBe("mkdir");
      expect((error as WriteFailedError).errno).toBe("ENOTDIR");
      expect((error as WriteFailedError).path).toBe(directory);
      expect((error as Error).message).toMatch(/the store was not opened$/);
      expect((error as Error).message).not.toContain("acknowledged");
    });
  }
});

describe("a FileStore whose directory was removed under it", () => {
  it("fails a save with a WriteFailedError for open with the lock file's path and ENOENT, lists and loads nothing, and saves again once it is back", async () => {
    const directory = join(tempDir(), "store");
    await using store = await FileStore.open({ directory });
    rmSync(directory, { recursive: true });
    const change = { namespace: "ns", changeType: "set", entityType: "t", entityId: "a", entity: 1 } as const;
    const error = await store.save([change]).catch((e: unknown) => e);
    expect(isWriteFailedError(error), String(error)).toBe(true);
    expect(error).toMatchObject({ operation: "open", errno: "ENOENT" });
    expect((error as WriteFailedError).path).toBe(join(store.directory, "ns.lock"));
    expect(await store.listNamespaces()).toEqual([]);
    expect(await store.load("ns")).toEqual([]);
    await FileStore.open({ directory }).then((s) => s.close());
    await store.save([change]);
    expect(await store.load("ns")).toHaveLength(1);
  });
});

describe("a FileStore with a directory where a namespace's file belongs", () => {
  it("fails load, compact and watch with a CorruptionError naming the path, a save with a WriteFailedError, and serves other namespaces", async () => {
    const directory = join(tempDir(), "store");
    await using store = await FileStore.open({ directory });
    const change = (namespace: string) =>
      ({ namespace, changeType: "set", entityType: "t", entityId: "a", entity: 1 }) as const;
    await store.save([change("good")]);
    const file = join(store.directory, "bad.jsonl");
    mkdirSync(file);
    for (const call of [() => store.load("bad"), () => store.compact("bad")]) {
      const error = await call().catch((e: unknown) => e);
      expect(isCorruptionError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ file, message: expect.stringContaining("a directory") });
    }
    const feed = store.watch("bad");
    const fed = await feed[Symbol.asyncIterator]()
      .next()
      .catch((e: unknown) => e);
    expect(isCorruptionError(fed), String(fed)).toBe(true);
    const saved = await store.save([change("bad")]).catch((e: unknown) => e);
    expect(saved).toMatchObject({ errno: "EISDIR", path: file });
    expect(isWriteFailedError(saved), String(saved)).toBe(true);
    expect(await store.listNamespaces()).toEqual(["good"]);
    expect(await store.load("good")).toHaveLength(1);
  });
});

describe("a FileEventStore with a directory where a segment or its index file belongs", () => {
  for (const [what, name] of [
    ["a segment", "segment-0000000000000001.log"],
    ["an index file", "index-0000000000000001.idx"],
  ] as const) {
    it(`${what}: the open fails with a CorruptionError naming the path, and opens once it is moved away`, async () => {
      const directory = join(tempDir(), "events");
      const writer = await FileEventStore.open({ directory });
      await writer.append("s", [{ id: "a", type: "t", data: {}, timestamp: new Date(0) }]);
      await writer.close();
      const file = join(directory, name);
      const kept = join(directory, "..", "kept");
      renameSync(file, kept);
      mkdirSync(file);
      const error = await FileEventStore.open({ directory }).catch((e: unknown) => e);
      expect(isCorruptionError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ file, message: expect.stringContaining(`a directory where ${what} belongs`) });
      rmdirSync(file);
      renameSync(kept, file);
      await using store = await FileEventStore.open({ directory });
      expect((await store.readStream("s")).map((e) => e.id)).toEqual(["a"]);
    });
  }
});

describe("a store with a directory where its LOCK file belongs", () => {
  const opens: [string, (directory: string) => Promise<{ close(): Promise<void> }>][] = [
    ["FileEventStore", (directory) => FileEventStore.open({ directory })],
    ["FileReadModelStore", (directory) => FileReadModelStore.open({ directory })],
  ];
  for (const [name, openStore] of opens) {
    it(`${name}: the open fails with a WriteFailedError for open with the path, saying the store was not opened`, async () => {
      const directory = join(tempDir(), "store");
      const lock = join(directory, "LOCK");
      mkdirSync(lock, { recursive: true });
      const error = await openStore(directory).catch((e: unknown) => e);
      expect(isWriteFailedError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ operation: "open", path: lock, errno: "EISDIR" });
      expect((error as Error).message).toMatch(/the store was not opened$/);
      rmdirSync(lock);
      const store = await openStore(directory);
      await store.close();
    });
  }
});
