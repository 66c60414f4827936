import { writeFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_NAME_BYTES, validateNamespace } from "../../src/core/validation.js";
import { IsoFormatter } from "../../src/file/encode.js";
import { decodeName, encodeName, namespaceFromPath, namespacePath } from "../../src/file/encoding.js";
import { FileStore } from "../../src/file/index.js";
import { HOSTILE_NAMES } from "../../src/testing/index.js";
import { tempDir } from "./helpers.js";

/** Any valid namespace: no control characters, no "/", 1..255 UTF-8 bytes. */
const validName = fc
  .oneof(
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 80 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 120 }),
    fc.string({
      unit: fc.constantFrom("a", "A", ".", "%", " ", "é", "😀", "-", "_", "~", "\\"),
      minLength: 1,
      maxLength: 255,
    }),
    fc.constantFrom(...HOSTILE_NAMES),
  )
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replaces what a namespace may not hold
  .map((s) => s.replace(/[\u0000-\u001f\u007f-\u009f/]/g, "x"))
  .filter((s) => {
    try {
      validateNamespace(s);
      return true;
    } catch {
      return false;
    }
  });

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

function checkSafe(parts: string[]): void {
  for (const [i, part] of parts.entries()) {
    expect(Buffer.byteLength(part), part).toBeLessThanOrEqual(255);
    // The longest suffix put on a base is a compaction's ".<pid>.<tag>.tmp" (pids have at most 7 digits).
    expect(part.replace(/\.(jsonl|d)$/, "").length + ".4194304.z.tmp".length).toBeLessThanOrEqual(255);
    expect(part).toMatch(i === parts.length - 1 ? /^[a-z0-9_%-]+\.jsonl$/ : /^[a-z0-9_%-]+\.d$/);
    expect(part).not.toMatch(WINDOWS_RESERVED);
    expect([".", ".."]).not.toContain(part);
  }
}

describe("namespace encoding", () => {
  it("property: every valid name maps to safe path components and decodes back", () => {
    fc.assert(
      fc.property(validName, (name) => {
        const parts = namespacePath(name);
        checkSafe(parts);
        expect(namespaceFromPath(parts)).toBe(name);
        expect(decodeName(encodeName(name))).toBe(name);
      }),
      { numRuns: 2000 },
    );
  });

  it("property: two different names never collide, even when the file system folds case", () => {
    fc.assert(
      fc.property(validName, validName, (a, b) => {
        fc.pre(a !== b);
        const pa = namespacePath(a).join("/").toLowerCase();
        const pb = namespacePath(b).join("/").toLowerCase();
        expect(pa).not.toBe(pb);
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps case-variants, dot names and device names apart", () => {
    const names = ["Abc", "abc", "ABC", ".", "..", "...", "CON", "con", "nul", "Nul", "com1", "a.b", "a%2eb", "%"];
    const paths = names.map((n) => namespacePath(n)[0]?.toLowerCase());
    expect(new Set(paths).size).toBe(names.length);
    expect(namespacePath("abc")).toEqual(["abc.jsonl"]);
    expect(namespacePath("Abc")).toEqual(["%41bc.jsonl"]);
    expect(namespacePath("..")).toEqual(["%2e%2e.jsonl"]);
    expect(namespacePath("con")).toEqual(["%63on.jsonl"]);
  });

  it("splits the longest names into directories, each component within NAME_MAX", () => {
    const longest = "😀".repeat(MAX_NAME_BYTES / 4) + "abc";
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(MAX_NAME_BYTES);
    const parts = namespacePath(longest);
    expect(parts.length).toBeGreaterThan(1);
    checkSafe(parts);
    expect(namespaceFromPath(parts)).toBe(longest);
  });

  it("rejects file names it did not make", () => {
    expect(namespaceFromPath(["ABC.jsonl"])).toBeUndefined();
    expect(namespaceFromPath(["%61bc.jsonl"])).toBeUndefined(); // non-canonical spelling of "abc"
    expect(namespaceFromPath(["abc.lock"])).toBeUndefined();
    expect(namespaceFromPath(["a.d", "b.jsonl"])).toBeUndefined(); // short names are never split
    expect(namespaceFromPath(["%ff.jsonl"])).toBeUndefined(); // not UTF-8
    // Canonical spellings of names no namespace may have: "/", a control character, over 255 bytes.
    expect(namespaceFromPath(["a%2fb.jsonl"])).toBeUndefined();
    expect(namespaceFromPath(["%00.jsonl"])).toBeUndefined();
    expect(namespaceFromPath(["x%7f.jsonl"])).toBeUndefined();
    expect(namespaceFromPath(namespacePath("a".repeat(256)))).toBeUndefined();
    expect(decodeName("")).toBeUndefined();
  });

  it("stores, lists and reloads long and hostile names inside the directory", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir });
    const names = ["😀".repeat(63), "É".repeat(127), "x".repeat(255), "Abc", "abc", "..", "CON"];
    for (const [i, ns] of names.entries()) {
      await store.save([{ namespace: ns, changeType: "set", entityType: "t", entityId: "1", entity: { i } }]);
      expect(store.fileOf(ns).startsWith(`${dir}/`)).toBe(true);
    }
    expect(await store.listNamespaces()).toEqual([...names].sort());
    await store.close();
    const reopened = await FileStore.open({ directory: dir });
    for (const [i, ns] of names.entries()) {
      expect((await reopened.load(ns)).map((c) => c.entity)).toEqual([{ i }]);
      await reopened.compact(ns);
      expect((await reopened.load(ns)).map((c) => c.entity)).toEqual([{ i }]);
    }
    await reopened.close();
  });

  it("listNamespaces leaves out files named after names no namespace may have, so every name it lists loads", async () => {
    const dir = tempDir();
    const line = `{"namespace":"x","changeType":"set","entityType":"t","entityID":"a","entity":1,"timestamp":"2025-01-01T00:00:00.000Z"}\n`;
    for (const file of ["a%2fb.jsonl", "%00.jsonl", "x%7f.jsonl"]) writeFileSync(path.join(dir, file), line);
    await using store = await FileStore.open({ directory: dir });
    await store.save([{ namespace: "ok", changeType: "set", entityType: "t", entityId: "a", entity: 1 }]);
    const listed = await store.listNamespaces();
    expect(listed).toEqual(["ok"]);
    for (const ns of listed) expect(await store.load(ns)).toHaveLength(1);
  });
});

describe("timestamp formatting", () => {
  it("property: IsoFormatter writes what Date.toISOString writes, for any date and in any order", () => {
    const ms = fc.oneof(
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2026, 0, 1) }),
      fc.integer({ min: -120_000, max: 120_000 }),
    );
    fc.assert(
      fc.property(fc.array(ms, { minLength: 1, maxLength: 20 }), (values) => {
        const iso = new IsoFormatter();
        for (const v of values) expect(iso.format(v)).toBe(new Date(v).toISOString());
      }),
      { numRuns: 500 },
    );
  });
});

describe("timestamps through the file", () => {
  it("property: saved timestamps load back exactly, in any order and across minutes and years", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, autoCompact: false });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.integer({ min: -62_198_755_200_000, max: 253_402_300_799_999 }),
            fc.integer({ min: Date.UTC(2025, 0, 1) - 120_000, max: Date.UTC(2025, 0, 1) + 120_000 }),
          ),
          { minLength: 1, maxLength: 30 },
        ),
        async (times) => {
          const changes = times.map((ms, i) => ({
            namespace: "ts",
            changeType: "set" as const,
            entityType: "t",
            entityId: `e${i}`,
            entity: { i },
            timestamp: new Date(ms),
          }));
          await store.save(changes);
          const loaded = await store.load("ts");
          const byId = new Map(loaded.map((c) => [c.entityId, c.timestamp.getTime()]));
          for (let i = 0; i < times.length; i++) expect(byId.get(`e${i}`)).toBe(times[i]);
        },
      ),
      { numRuns: 60 },
    );
    await store.close();
  });
});
