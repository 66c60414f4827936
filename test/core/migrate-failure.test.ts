/**
 * `migrate()` that fails after its first save throws a `MigrateError` (a
 * partial write over the namespaces) saying how far it got: what
 * `statelog copy` says when it fails part-way (test/cli/copy-failure.test.ts).
 */
import { describe, expect, it } from "vitest";
import {
  CorruptionError,
  ErrorCode,
  isAbortError,
  isCorruptionError,
  isMigrateError,
  isPartialWriteError,
  MigrateError,
  migrate,
  type ReadonlyStore,
} from "../../src/index.js";
import { MemoryStore } from "../../src/memory/index.js";
import { set } from "../cli/sample.js";

const thirty = (namespace: string) => Array.from({ length: 30 }, (_, i) => set(namespace, String(i), { i }));

describe("migrate() that fails part-way", () => {
  /** A memory store whose load of `bad` throws `error`. */
  async function source(error: unknown): Promise<ReadonlyStore> {
    const store = new MemoryStore();
    for (const ns of ["a", "bad", "c"]) await store.save(thirty(ns));
    return Object.assign(Object.create(store) as MemoryStore, {
      load: (namespace: string, options?: object) =>
        namespace === "bad" ? Promise.reject(error) : store.load(namespace, options),
      listNamespaces: async () => ["a", "bad", "c"],
    });
  }

  it("after a save: a MigrateError (a partial write over the namespaces) saying what it saved, the failure as cause", async () => {
    const damage = new CorruptionError("bad.jsonl", 31, "not a JSON line");
    const to = new MemoryStore();
    const error = await migrate(await source(damage), to, { batchSize: 7 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrateError);
    expect(isMigrateError(error)).toBe(true);
    expect(isPartialWriteError(error)).toBe(true);
    const failed = error as MigrateError;
    expect(failed).toMatchObject({
      code: ErrorCode.PartialWrite,
      operation: "migrate",
      targets: "namespaces",
      namespaces: ["a", "bad", "c"],
      written: [0],
      uncertain: [],
      changes: 30,
      namespace: "bad",
      copied: 0,
      cause: damage,
    });
    expect(failed.failed.map((f) => [f.index, f.error])).toEqual([
      [1, damage],
      [2, damage],
    ]);
    expect(failed.message).toContain(
      'migrate: 1 of 3 namespaces written, 2 not written (bad.jsonl:31: not a JSON line); 30 change(s) saved in all: 1 of 3 namespace(s) in full, 0 change(s) of namespace "bad"',
    );
    expect(await to.load("a")).toHaveLength(30);
    expect(isMigrateError(damage)).toBe(false);
  });

  it("in the middle of a namespace: counts its changes saved", async () => {
    const store = new MemoryStore();
    await store.save(thirty("a"));
    const to = new MemoryStore();
    let saves = 0;
    const target = Object.assign(Object.create(to) as MemoryStore, {
      save: (changes: never[], options?: object) => {
        if (++saves === 3) return Promise.reject(new Error("disk full"));
        return to.save(changes, options);
      },
    });
    const error = await migrate(store, target, { batchSize: 10 }).catch((e: unknown) => e);
    expect(isMigrateError(error)).toBe(true);
    expect(error).toMatchObject({ written: [], changes: 20, namespace: "a", copied: 20 });
    expect((error as Error).message).toContain(
      '20 change(s) saved in all: 0 of 1 namespace(s) in full, 20 change(s) of namespace "a"',
    );
  });

  it("before its first save: the failure itself (a damaged first namespace, an abort)", async () => {
    const damage = new CorruptionError("bad.jsonl", 1, "not a JSON line");
    const store = await source(damage);
    const first = Object.assign(Object.create(store) as ReadonlyStore, {
      listNamespaces: async () => ["bad", "a"],
    });
    const error = await migrate(first, new MemoryStore()).catch((e: unknown) => e);
    expect(error).toBe(damage);
    expect(isCorruptionError(error)).toBe(true);
    const aborted = await migrate(store, new MemoryStore(), { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isAbortError(aborted)).toBe(true);
  });
});
