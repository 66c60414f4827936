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

const open = (dir: string, options: Partial<FileStoreOptions> = {}): Promise<FileStore> =>
  FileStore.open({ directory: dir, sync: "none", ...options });

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

/**
 * A child process (bundled once, like fixtures/child.ts) that saves to and
 * loads back `count` namespaces with `maxOpenNamespaces: max`, 4 at a time,
 * and prints `ok <count> <peak open descriptors>` or `error <code> <message>`.
 */
const LOW_FD_CHILD = `
import { readdirSync } from "node:fs";
import { FileStore } from ${JSON.stringify(path.join(root, "src/file/index.ts"))};

const [dir, max, count] = JSON.parse(process.argv[2]);
const fds = () => readdirSync("/proc/self/fd").length;
let peak = fds();
const store = await FileStore.open({ directory: dir, maxOpenNamespaces: max });
try {
  for (let i = 0; i < count; i += 4) {
    const batch = [i, i + 1, i + 2, i + 3].filter((n) => n < count);
    await Promise.all(batch.map((n) => store.save([{ namespace: "ns-" + n, changeType: "set", entityType: "item", entityId: "k", entity: { n } }])));
    peak = Math.max(peak, fds());
  }
  for (let i = 0; i < count; i++) {
    const loaded = await store.load("ns-" + i);
    if (loaded.length !== 1 || loaded[0].entity.n !== i) throw new Error("ns-" + i + " loaded " + JSON.stringify(loaded));
    peak = Math.max(peak, fds());
  }
  await store.close();
  console.log("ok " + count + " " + peak);
} catch (error) {
  console.log("error " + error.code + " " + error.message);
  process.exit(1);
}
`;

let lowFdChild: Promise<string[]> | undefined;

/** Runs {@link LOW_FD_CHILD} under `ulimit -n <limit>`; its stdout and exit code. */
async function runWithFdLimit(limit: number, args: unknown[]): Promise<{ code: number | null; out: string }> {
  lowFdChild ??= (async () => {
    const dir = tempDir("statelog-fdchild-");
    const fixture = path.join(dir, "low-fd-child.ts");
    writeFileSync(fixture, LOW_FD_CHILD);
    return childCommand(fixture, dir);
  })();
  const argv = await lowFdChild;
  const child = spawn(
    "bash",
    ["-c", `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, ...argv, JSON.stringify(args)],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_PATH: path.join(root, "node_modules") },
      cwd: root,
    },
  );
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  return { code, out };
}

describe("maxOpenNamespaces under a low descriptor limit (ulimit -n 64)", () => {
  it("a process may write and read back 500 namespaces; without the bound it runs out of descriptors", {
    timeout: 120_000,
  }, async () => {
    const bounded = await runWithFdLimit(64, [tempDir(), 8, 500]);
    expect(bounded.out).toMatch(/^ok 500 \d+\n$/);
    expect(bounded.code).toBe(0);
    expect(Number(bounded.out.trim().split(" ")[2])).toBeLessThanOrEqual(64);
    // The same child with a bound above the limit fails: the bound is what makes it work.
    const unbounded = await runWithFdLimit(64, [tempDir(), 10_000, 500]);
    expect(unbounded.code).toBe(1);
    expect(unbounded.out).toMatch(/^error STATELOG_WRITE_FAILED .*\(EMFILE\)/);
  });
});

/** A small seeded PRNG (mulberry32): the same run every time. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("maxOpenNamespaces under concurrency", () => {
  it("saves to 40 namespaces racing with loads and compactions under a bound of 3 keep every change", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    const store = await open(dir, { maxOpenNamespaces: 3, autoCompact: { minLines: 20, ratio: 1.5 } });
    const random = prng(7);
    const pick = (n: number): number => Math.floor(random() * n);
    const NAMESPACES = 40;
    const KEYS = 6;
    /** Namespace → key → seq of its latest save (call order is write order), negative for an unset. */
    const model = new Map<string, Map<string, number>>();
    /** Namespace → key → highest seq whose save resolved. */
    const resolved = new Map<string, Map<string, number>>();
    let seq = 0;
    let loads = 0;

    async function saveSome(): Promise<void> {
      const s = ++seq;
      const changes: ChangeInput[] = [];
      const touched = new Set<string>();
      for (let n = 1 + pick(3); n > 0; n--) touched.add(`ns-${pick(NAMESPACES)}`);
      for (const ns of touched) {
        const key = `k${pick(KEYS)}`;
        const unset = random() < 0.15;
        changes.push(
          unset
            ? { namespace: ns, changeType: "unset", entityType: "item", entityId: key, timestamp: new Date(s) }
            : set(ns, key, { s, pad: "x".repeat(pick(300)) }, s),
        );
        if (!model.has(ns)) model.set(ns, new Map());
        model.get(ns)?.set(key, unset ? -s : s);
      }
      await store.save(changes);
      for (const c of changes) {
        if (!resolved.has(c.namespace)) resolved.set(c.namespace, new Map());
        const r = resolved.get(c.namespace) as Map<string, number>;
        r.set(c.entityId, Math.max(r.get(c.entityId) ?? 0, s));
      }
    }

    async function loadOne(): Promise<void> {
      const ns = `ns-${pick(NAMESPACES)}`;
      const floor = new Map(resolved.get(ns) ?? []);
      const loaded = await store.load(ns);
      loads++;
      const byKey = new Map(loaded.map((c) => [c.entityId, c]));
      // Every save that resolved before the load began is there (or a later one of the same key).
      for (const [key, s] of floor) {
        expect(byKey.get(key)?.timestamp.getTime() ?? 0, `${ns}/${key}`).toBeGreaterThanOrEqual(s);
      }
      for (const c of loaded) {
        if (c.changeType === "set") expect((c.entity as { s: number }).s).toBe(c.timestamp.getTime());
      }
    }

    async function worker(ops: number): Promise<void> {
      for (let i = 0; i < ops; i++) {
        const r = random();
        if (r < 0.65) await saveSome();
        else if (r < 0.92) await loadOne();
        else await store.compact(`ns-${pick(NAMESPACES)}`);
      }
    }
    await Promise.all(Array.from({ length: 12 }, () => worker(120)));

    const check = async (s: FileStore): Promise<void> => {
      for (const [ns, keys] of model) {
        const loaded = await s.load(ns);
        const got = Object.fromEntries(
          loaded.map((c) => [c.entityId, c.changeType === "set" ? c.timestamp.getTime() : -c.timestamp.getTime()]),
        );
        expect(got, ns).toEqual(Object.fromEntries(keys));
      }
    };
    await check(store);
    const stats = store.stats();
    expect(stats.namespacesClosed).toBeGreaterThan(100);
    expect(stats.openNamespaces).toBeLessThanOrEqual(3);
    expect(loads).toBeGreaterThan(100);
    await store.close();
    expect(store.stats().compactions).toBeGreaterThan(0);
    const reopened = await open(dir);
    await check(reopened);
    await reopened.close();
  });
});

/** Checks that every save in `changes` is complete: each (writer, batch) of `item`s has its n items. */
function checkWholeSaves(changes: Change[]): Map<string, number> {
  const items = new Map<string, number>();
  const saveOf = (c: Change): string => {
    const e = c.entity as { writer: number | string; b: number };
    return `w${e.writer}-b${e.b}`;
  };
  for (const c of changes) if (c.entityType === "item") items.set(saveOf(c), (items.get(saveOf(c)) ?? 0) + 1);
  for (const c of changes) {
    if (c.entityType === "item")
      expect(items.get(saveOf(c)), `${saveOf(c)} partly visible`).toBe((c.entity as { n: number }).n);
  }
  return items;
}

describe("maxOpenNamespaces with several processes", () => {
  it("a namespace closed and reopened over and over still takes the flock: writers and a compactor in other processes lose nothing", {
    timeout: 300_000,
  }, async () => {
    const WRITERS = 2;
    const SAVES = 120;
    const dir = tempDir();
    const stopFile = path.join(dir, "stop");
    const compactor = await spawnChild("mp-compactor", { dir, stopFile });
    await compactor.waitFor((l) => l === "ready");
    const writers = await Promise.all(
      Array.from({ length: WRITERS }, (_, writer) => spawnChild("mp-writer", { dir, writer, saves: SAVES })),
    );
    // This process writes "ws" too, under a bound of 2 and with two other namespaces: "ws" is closed
    // between its uses, and reopened (lock file, data file) by the next save, load or compaction.
    const store = await FileStore.open({ directory: dir, maxOpenNamespaces: 2 });
    let running = true;
    const done = Promise.all(writers.map((w) => w.exited)).then(() => {
      running = false;
    });
    let b = 0;
    while (running || b < 20) {
      const n = 1 + (b % 4);
      await store.save(
        Array.from({ length: n }, (_, i) => ({
          namespace: "ws",
          changeType: "set" as const,
          entityType: "item",
          entityId: `wparent-b${b}-i${i}`,
          entity: { writer: "parent", b, i, n, pad: "q".repeat((b * 37 + i) % 300) },
        })),
      );
      await store.save([set("x1", "k", { b }), set("x2", "k", { b })]);
      if (b % 7 === 0) await store.compact("ws");
      else checkWholeSaves(await store.load("ws"));
      b++;
    }
    await done;
    for (const w of writers) expect((await w.exited).code, w.stderr()).toBe(0);
    writeFileSync(stopFile, "");
    await compactor.waitFor((l) => l.startsWith("done"));
    expect((await compactor.exited).code, compactor.stderr()).toBe(0);

    const final = await store.load("ws");
    const saves = checkWholeSaves(final);
    for (const [writer, w] of writers.entries()) {
      const acks = w.lines.filter((l) => l.startsWith("ack "));
      expect(acks).toHaveLength(SAVES);
      for (const ack of acks) {
        const [, batch, n] = ack.split(" ");
        expect(saves.get(`w${writer}-b${batch}`), `save w${writer}-b${batch}`).toBe(Number(n));
      }
    }
    for (let i = 0; i < b; i++) expect(saves.get(`wparent-b${i}`), `parent save ${i}`).toBe(1 + (i % 4));
    // Each save's lines are contiguous, and every line is whole (valid JSON, matching checksum).
    const order = final.filter((c) => c.entityType === "item").map((c) => c.entityId);
    for (let i = 0; i < order.length; ) {
      const m = /^(w\w+-b\d+)-i(\d+)$/.exec(order[i] as string);
      const save = m?.[1] as string;
      const n = saves.get(save) as number;
      expect(order.slice(i, i + n)).toEqual(Array.from({ length: n }, (_, k) => `${save}-i${k}`));
      i += n;
    }
    const lines = readFileSync(store.fileOf("ws"), "utf8").split("\n");
    expect(lines.pop()).toBe("");
    for (const line of lines) {
      const at = line.lastIndexOf(',"crc":"');
      expect(crc32(line.slice(0, at)).toString(16).padStart(8, "0")).toBe((JSON.parse(line) as { crc: string }).crc);
    }
    expect(store.stats().namespacesClosed).toBeGreaterThan(b);
    await store.close();
  });
});
