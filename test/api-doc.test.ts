/**
 * docs/api.md lists every public class, error code and defaults object of
 * the package: each name exported by an entry point's index must appear in
 * it. Nothing is constructed: classes are found by their source (`class …`),
 * codes are read from the exported `…ErrorCode` tables.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as events from "../src/events/index.js";
import * as file from "../src/file/index.js";
import * as core from "../src/index.js";
import * as kafka from "../src/kafka/index.js";
import * as memory from "../src/memory/index.js";
import * as nats from "../src/nats/index.js";
import * as readModels from "../src/read-models/index.js";
import * as repository from "../src/repository/index.js";
import * as testing from "../src/testing/index.js";
import * as union from "../src/union/index.js";

const doc = readFileSync(new URL("../docs/api.md", import.meta.url), "utf8");

const entryPoints: Record<string, Record<string, unknown>> = {
  statelog: core,
  "statelog/memory": memory,
  "statelog/file": file,
  "statelog/union": union,
  "statelog/kafka": kafka,
  "statelog/nats": nats,
  "statelog/events": events,
  "statelog/repository": repository,
  "statelog/read-models": readModels,
};

const isClass = (v: unknown): v is abstract new (...args: never[]) => unknown =>
  typeof v === "function" && Function.prototype.toString.call(v).startsWith("class ");
const isErrorClass = (v: unknown): boolean => isClass(v) && v.prototype instanceof Error;

/** The exported names of `module` that `pick` accepts, sorted. */
function exported(module: Record<string, unknown>, pick: (name: string, value: unknown) => boolean): string[] {
  return Object.entries(module)
    .filter(([name, value]) => pick(name, value))
    .map(([name]) => name)
    .sort();
}

/** The code values of every `…ErrorCode` table `module` exports. */
function codes(module: Record<string, unknown>): string[] {
  return exported(module, (name, v) => name.endsWith("ErrorCode") && typeof v === "object" && v !== null).flatMap(
    (name) => Object.values(module[name] as Record<string, string>),
  );
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The names that `text` never mentions as a whole word. */
function missingFrom(text: string, names: readonly string[]): string[] {
  return names.filter((name) => !new RegExp(`(?<![\\w$])${escapeRegExp(name)}(?![\\w$])`).test(text));
}

describe("docs/api.md", () => {
  describe.each(Object.entries(entryPoints))("%s", (_entry, module) => {
    it("names every class (a function whose source starts with `class `), errors aside", () => {
      const classes = exported(module, (_n, v) => isClass(v) && !isErrorClass(v));
      expect(missingFrom(doc, classes)).toEqual([]);
    });

    it("names every error class", () => {
      expect(
        missingFrom(
          doc,
          exported(module, (_n, v) => isErrorClass(v)),
        ),
      ).toEqual([]);
    });

    it("lists every value of every exported …ErrorCode table, and the table's name", () => {
      const tables = exported(module, (name) => name.endsWith("ErrorCode"));
      expect(missingFrom(doc, tables)).toEqual([]);
      expect(missingFrom(doc, codes(module))).toEqual([]);
    });

    it("names every exported …_DEFAULTS object", () => {
      expect(
        missingFrom(
          doc,
          exported(module, (name) => name.endsWith("_DEFAULTS")),
        ),
      ).toEqual([]);
    });
  });

  it("names every describe…Contract function of statelog/testing", () => {
    const suites = exported(testing, (name, v) => /^describe\w*Contract$/.test(name) && typeof v === "function");
    expect(suites.length).toBeGreaterThanOrEqual(3);
    expect(missingFrom(doc, suites)).toEqual([]);
  });

  it("the checks see what they look for: classes, codes and defaults are found in the entry points", () => {
    const all = Object.values(entryPoints);
    expect(all.flatMap((m) => exported(m, (_n, v) => isClass(v) && !isErrorClass(v)))).toContain("MemoryStore");
    expect(all.flatMap((m) => exported(m, (_n, v) => isErrorClass(v)))).toContain("PartialWriteError");
    expect(all.flatMap(codes)).toContain("STATELOG_PARTIAL_WRITE");
    expect(all.flatMap((m) => exported(m, (name) => name.endsWith("_DEFAULTS")))).toContain("STORE_DEFAULTS");
  });

  it("a class the doc does not mention is reported missing (whole words only)", () => {
    const without = doc.replace(/\bMemoryStore\b/g, "a memory store");
    expect(missingFrom(without, ["MemoryStore", "MemoryStoreOptions"])).toEqual(["MemoryStore", "MemoryStoreOptions"]);
    expect(missingFrom("`MemoryStoreOptions` only", ["MemoryStore"])).toEqual(["MemoryStore"]);
    expect(missingFrom("`STATELOG_LOCKED_OUT`", ["STATELOG_LOCKED"])).toEqual(["STATELOG_LOCKED"]);
    expect(missingFrom("`MemoryStore.open()`", ["MemoryStore"])).toEqual([]);
  });
});
