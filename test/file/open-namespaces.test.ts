/**
 * `maxOpenNamespaces`: the store keeps the files of at most that many idle
 * namespaces open (two descriptors each), closing the least recently used
 * and reopening them on their next use — so that touching thousands of
 * namespaces (migrate, a service with many workspaces) cannot run out of
 * file descriptors (EMFILE), and nothing else changes: data, the flock
 * between processes, torn-tail repair, automatic compaction accounting.
 */
import { spawn } from "node:child_process";
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { Change, ChangeInput } from "../../src/core/change.js";
import { isConfigurationError } from "../../src/core/errors.js";
import { FileStore, type FileStoreOptions } from "../../src/file/index.js";
import { childCommand } from "../helpers/child-command.js";
import { tempDir } from "./helpers.js";
import { spawnChild } from "./spawn.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

/** Open descriptors of this process. */
const openFds = (): number => readdirSync("/proc/self/fd").length;

const set = (namespace: string, entityId: string, entity: unknown, seq = 0): ChangeInput => ({
  namespace,
  changeType: "set",
  entityType: "item",
  entityId,
  entity,
  timestamp: new Date(seq),
});

const open = (dir: string, options: FileStoreOptions = {}): Promise<FileStore> =>
  FileStore.open(dir, { unknownEntityTypes: "passthrough", sync: "none", ...options });

const entities = (changes: Change[]): Record<string, unknown> =>
  Object.fromEntries(changes.map((c) => [c.entityId, c.changeType === "set" ? c.entity : null]));

describe("maxOpenNamespaces", () => {
  it("rejects values that are not a positive integer (or Infinity) with a ConfigurationError", async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, "8" as unknown as number]) {
      const error = await open(tempDir(), { maxOpenNamespaces: bad }).catch((e: unknown) => e);
      expect(isConfigurationError(error), String(bad)).toBe(true);
      expect((error as Error).message).toContain("maxOpenNamespaces");
    }
    for (const bad of [-1, Number.NaN]) {
      const error = await open(tempDir(), { compactionWorkerMinBytes: bad }).catch((e: unknown) => e);
      expect(isConfigurationError(error), String(bad)).toBe(true);
    }
    for (const good of [1, 256, Number.POSITIVE_INFINITY]) {
      await (await open(tempDir(), { maxOpenNamespaces: good })).close();
    }
  });

  it("200 namespaces with a bound of 8: every save loads back, and open descriptors stay bounded", async () => {
    const dir = tempDir();
    const before = openFds();
    const store = await open(dir, { maxOpenNamespaces: 8 });
    let peak = 0;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 200; i++) {
        await store.save([set(`ns-${i}`, "a", { i, round }), set(`ns-${i}`, `r${round}`, { i })]);
        peak = Math.max(peak, openFds() - before);
      }
    }
    for (let i = 0; i < 200; i++) {
      expect(entities(await store.load(`ns-${i}`))).toEqual({ a: { i, round: 1 }, r0: { i }, r1: { i } });
      peak = Math.max(peak, openFds() - before);
    }
    const stats = store.stats();
    expect(stats.openNamespaces).toBeLessThanOrEqual(8);
    expect(stats.namespacesClosed).toBeGreaterThanOrEqual(3 * 200 - 8);
    // Two per open namespace, plus a load's read descriptor and whatever Node opened meanwhile.
    expect(peak).toBeLessThanOrEqual(2 * 8 + 6);
    await store.close();
    expect(openFds()).toBeLessThanOrEqual(before);

    // The same without a bound: one lock and one data descriptor per namespace (what the bound prevents).
    const unbounded = await open(dir, { maxOpenNamespaces: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 200; i++) await unbounded.save([set(`ns-${i}`, "b", { i })]);
    expect(openFds() - before).toBeGreaterThanOrEqual(2 * 200);
    expect(unbounded.stats()).toMatchObject({ openNamespaces: 200, namespacesClosed: 0 });
    await unbounded.close();
    expect(openFds()).toBeLessThanOrEqual(before);
  });

  it("a torn tail written while the namespace was closed is cut off when it is reopened", async () => {
    const dir = tempDir();
    const store = await open(dir, { maxOpenNamespaces: 1 });
    await store.save([set("a", "k1", { n: 1 })]);
    await store.save([set("b", "k", { n: 1 })]); // closes "a"
    expect(store.stats().namespacesClosed).toBe(1);
    // A writer of another process crashed in the middle of a line.
    appendFileSync(store.fileOf("a"), '{"namespace":"a","changeType":"set","entityType":"item","entityID":"k9","ent');
    await store.save([set("a", "k2", { n: 2 })]);
    expect(entities(await store.load("a"))).toEqual({ k1: { n: 1 }, k2: { n: 2 } });
    const lines = readFileSync(store.fileOf("a"), "utf8").split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.map((l) => (JSON.parse(l) as { entityID: string }).entityID)).toEqual(["k1", "k2"]);
    await store.close();
  });

  it("a file replaced by another store's compaction while closed is reopened at its path", async () => {
    const dir = tempDir();
    const store = await open(dir, { maxOpenNamespaces: 1, autoCompact: false });
    for (let n = 0; n < 5; n++) await store.save([set("a", "k", { n })]);
    await store.save([set("b", "k", { n: 0 })]); // closes "a"
    const other = await open(dir, { autoCompact: false });
    await other.compact("a");
    await other.close();
    await store.save([set("a", "k2", { n: 1 })]);
    const lines = readFileSync(store.fileOf("a"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(entities(await store.load("a"))).toEqual({ k: { n: 4 }, k2: { n: 1 } });
    await store.close();
  });

  it("automatic compaction counts lines and keys across closing and reopening as if the file stayed open", async () => {
    const dir = tempDir();
    const first = await open(dir, { autoCompact: false });
    await first.save(Array.from({ length: 50 }, (_, i) => set("a", `k${i}`, { n: 0 })));
    await first.save(Array.from({ length: 50 }, (_, i) => set("b", `old${i}`, { n: 0 })));
    await first.close();
    // 50 keys: with ratio 4, no compaction until the file has more than 200 lines.
    const store = await open(dir, { maxOpenNamespaces: 1, autoCompact: { minLines: 10, ratio: 4 } });
    await store.load("a"); // learns 50 lines, 50 keys
    await store.load("b"); // "b" only gets new keys: never worth compacting
    for (let n = 1; n <= 100; n++) {
      await store.save([set("a", `k${n % 50}`, { n })]);
      await store.save([set("b", `k${n}`, { n })]); // closes "a"
    }
    // 150 lines in "a": a store that forgot the counts on reopening would have scanned (keys unknown: threshold 10).
    const quiet = store.stats();
    expect(quiet.namespacesClosed).toBeGreaterThanOrEqual(100);
    expect(quiet.mainThreadScans + quiet.workerScans).toBe(0);
    for (let n = 101; n <= 160; n++) {
      await store.save([set("a", `k${n % 50}`, { n })]);
      await store.save([set("b", `k${n}`, { n })]);
    }
    await store.close(); // waits for the background compaction
    expect(store.stats().compactions).toBeGreaterThanOrEqual(1);
    const lines = readFileSync(store.fileOf("a"), "utf8").trim().split("\n");
    expect(lines.length).toBeLessThan(120);
    const reopened = await open(dir);
    const expected: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) expected[`k${i}`] = { n: 0 };
    for (let n = 1; n <= 160; n++) expected[`k${n % 50}`] = { n };
    expect(entities(await reopened.load("a"))).toEqual(expected);
    await reopened.close();
  });
});
