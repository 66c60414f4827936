/**
 * The layout rules of the package, checked on the sources:
 * - core knows no backend;
 * - a backend (or any other folder) reaches a contract folder only through
 *   its public index — what a built-in backend imports, a third-party
 *   backend can import too;
 * - shipped code never loads test tooling.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const src = resolve(import.meta.dirname, "..", "src");
/** Folders whose index is a public entry point other folders must go through. */
const CONTRACTS = ["core", "events", "repository", "read-models"];
/** Where each contract's public index is (core's is the package root). */
const PUBLIC_INDEX: Record<string, string> = {
  core: join(src, "index.ts"),
  events: join(src, "events", "index.ts"),
  repository: join(src, "repository", "index.ts"),
  "read-models": join(src, "read-models", "index.ts"),
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports (static, dynamic and re-exports) of a source file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1] as string);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, ".ts")));
}

/** The top folder of `file` under src (`"core"`, `"nats"`…; `""` for src/index.ts). */
function topFolder(file: string): string {
  const parts = relative(src, file).split("/");
  return parts.length === 1 ? "" : (parts[0] as string);
}

describe("layout", () => {
  const all = files(src);

  it("finds the sources", () => {
    expect(all.length).toBeGreaterThan(40);
  });

  it("core imports no backend", () => {
    const offenders = all
      .filter((f) => topFolder(f) === "core")
      .flatMap((f) =>
        importsOf(f)
          .filter((i) => topFolder(i) !== "core")
          .map((i) => `${relative(src, f)} → ${relative(src, i)}`),
      );
    expect(offenders).toEqual([]);
  });

  it("other folders reach a contract folder only through its public index", () => {
    const offenders: string[] = [];
    for (const file of all) {
      const from = topFolder(file);
      if (from === "") continue; // the package root re-exports core
      for (const target of importsOf(file)) {
        const to = topFolder(target);
        if (to === from || !CONTRACTS.includes(to)) continue;
        if (target !== PUBLIC_INDEX[to]) offenders.push(`${relative(src, file)} → ${relative(src, target)}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("contract folders import no backend folder", () => {
    const backends = ["memory", "file", "kafka", "nats", "union"];
    const offenders = all
      .filter((f) => CONTRACTS.includes(topFolder(f)))
      .flatMap((f) =>
        importsOf(f)
          .filter((i) => backends.includes(topFolder(i)))
          .map((i) => `${relative(src, f)} → ${relative(src, i)}`),
      );
    expect(offenders).toEqual([]);
  });

  it("shipped code loads no test tooling and reads no test-only environment variables", () => {
    const offenders = all
      .filter((f) => topFolder(f) !== "testing")
      .filter((f) => /["'](tsx|vitest|fast-check)[/"']|STATELOG_TEST_/.test(readFileSync(f, "utf8")))
      .map((f) => relative(src, f));
    expect(offenders).toEqual([]);
  });

  it("the product stands alone: no source, doc or example sends a reader to files users do not have", () => {
    const root = resolve(src, "..");
    const docs = readdirSync(join(root, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => join(root, "docs", f));
    const examples = readdirSync(join(root, "examples")).map((f) => join(root, "examples", f));
    const offenders = [...all, ...docs, ...examples, join(root, "README.md")]
      .filter((f) => /SEMANTICS\.md|\.\.\/shared\/|\bthe seed'?s?\b|\bseeds? [0-9]/i.test(readFileSync(f, "utf8")))
      .map((f) => relative(root, f));
    expect(offenders).toEqual([]);
  });
});
