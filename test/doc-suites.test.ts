/**
 * The conformance-suite examples of the docs, run as written: every block
 * marked `<!-- vitest: run by test/doc-suites.test.ts -->` in docs/*.md is
 * written out (its `statelog…` imports pointed at this checkout) and
 * imported here, which registers its suites. (docs/backends.md, whose
 * suites import the guide's own backends, has test/backends-doc.test.ts.)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const MARKER = "\x3c!-- vitest: run by test/doc-suites.test.ts -->";
const suites = readdirSync(path.join(root, "docs"))
  .filter((f) => f.endsWith(".md"))
  .flatMap((f) =>
    [...readFileSync(path.join(root, "docs", f), "utf8").matchAll(/^(.*)\n```ts\n([\s\S]*?)^```$/gm)]
      .filter((m) => m[1] === MARKER)
      .map((m) => ({ doc: f, code: m[2] as string })),
  );

const dir = mkdtempSync(path.join(tmpdir(), "statelog-doc-suites-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
for (const [i, suite] of suites.entries()) {
  const file = path.join(dir, `${suite.doc.replace(/\W+/g, "_")}-${i}.ts`);
  const code = suite.code.replace(
    /from "statelog(\/[a-z-]+)?"/g,
    (_m, sub: string | undefined) =>
      `from ${JSON.stringify(path.join(root, "src", sub ? sub.slice(1) : "", "index.ts"))}`,
  );
  writeFileSync(file, code);
  await import(pathToFileURL(file).href);
}

it("finds the suite examples of the docs", () => {
  expect(suites.map((s) => s.doc)).toContain("events.md");
});
