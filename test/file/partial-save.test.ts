/**
 * A save across namespaces is one append per namespace: when some
 * namespaces' appends fail and others succeed, the caller learns exactly
 * which changes were written — the package's one partial-write shape.
 */
import { mkdirSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { FileStore } from "../../src/file/index.js";
import { NamespaceLog } from "../../src/file/log.js";
import { isPartialWriteError, type PartialWriteError } from "../../src/index.js";
import { tempDir } from "./helpers.js";

const set = (namespace: string, id: string) => ({
  namespace,
  changeType: "set" as const,
  entityType: "item",
  entityId: id,
  entity: { id },
});

describe("FileStore.save across namespaces", () => {
  it("a namespace whose append fails leaves a PartialWriteError naming the written and the failed changes", async () => {
    await using store = await FileStore.open({ directory: tempDir() });
    // A directory where the data file of "blocked" would go: its append cannot open the file.
    mkdirSync(store.fileOf("blocked"), { recursive: true });
    const error = await store
      .save([set("ok", "a"), set("blocked", "b"), set("ok", "c"), set("blocked", "d")])
      .catch((e: unknown) => e);
    expect(isPartialWriteError(error)).toBe(true);
    const partial = error as PartialWriteError;
    expect(partial.targets).toBe("changes");
    expect(partial.written).toEqual([0, 2]);
    expect(partial.failed.map((f) => f.index)).toEqual([1, 3]);
    expect(partial.uncertain).toEqual([]);
    expect((await store.load("ok")).map((c) => c.entityId)).toEqual(["a", "c"]);
  });

  it("when every namespace fails, the error still says that none of the changes were written", async () => {
    await using store = await FileStore.open({ directory: tempDir() });
    mkdirSync(store.fileOf("x"), { recursive: true });
    mkdirSync(store.fileOf("y"), { recursive: true });
    const error = await store.save([set("x", "a"), set("y", "b")]).catch((e: unknown) => e);
    expect(isPartialWriteError(error)).toBe(true);
    expect((error as PartialWriteError).written).toEqual([]);
    expect((error as PartialWriteError).failed.map((f) => f.index)).toEqual([0, 1]);
  });

  it("a save of one namespace throws its append's own error", async () => {
    await using store = await FileStore.open({ directory: tempDir() });
    mkdirSync(store.fileOf("x"), { recursive: true });
    const error = await store.save([set("x", "a"), set("x", "b")]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(isPartialWriteError(error)).toBe(false);
  });

  it("a namespace whose lines fail to encode is reported as failed; the namespaces queued before it are written", async () => {
    await using store = await FileStore.open({ directory: tempDir() });
    const append = NamespaceLog.prototype.append;
    vi.spyOn(NamespaceLog.prototype, "append").mockImplementation(function (this: NamespaceLog, encode) {
      if (this.namespace === "bad") throw new Error("cannot encode");
      return append.call(this, encode);
    });
    try {
      const error = await store.save([set("ok", "a"), set("bad", "b"), set("ok", "c")]).catch((e: unknown) => e);
      expect(isPartialWriteError(error)).toBe(true);
      const partial = error as PartialWriteError;
      expect(partial.written).toEqual([0, 2]);
      expect(partial.failed.map((f) => [f.index, (f.error as Error).message])).toEqual([[1, "cannot encode"]]);
    } finally {
      vi.restoreAllMocks();
    }
    expect((await store.load("ok")).map((c) => c.entityId)).toEqual(["a", "c"]);
  });
});
