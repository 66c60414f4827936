/**
 * The two backends of docs/backends.md, taken from the doc as written,
 * pass the conformance suites: the guide's code is the tested code.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, it } from "vitest";
import type { Store } from "../src/index.js";

const root = path.resolve(import.meta.dirname, "..");
const doc = readFileSync(path.join(root, "docs/backends.md"), "utf8");
/** The doc's blocks with the marker line before each (`<!-- file: NAME -->`, `<!-- vitest: … -->`). */
const blocks = [...doc.matchAll(/^(\x3c!-- [^\n]* -->)\n```ts\n([\s\S]*?)^```$/gm)].map((m) => ({
  marker: m[1] as string,
  code: m[2] as string,
}));
const pointAtSources = (code: string): string =>
  code.replace(
    /from "statelog(\/[a-z-]+)?"/g,
    (_m, sub: string | undefined) =>
      `from ${JSON.stringify(path.join(root, "src", sub ? sub.slice(1) : "", "index.ts"))}`,
  );

const temps: string[] = [];
const temp = (prefix: string): string => {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

// The modules of the guide, under the names its suites import them by…
const generated = temp("statelog-backends-doc-");
const modules = blocks.filter((b) => b.marker.startsWith("<!-- file: "));
for (const m of modules) {
  writeFileSync(
    path.join(generated, (/\x3c!-- file: ([\w.-]+) -->/.exec(m.marker) as RegExpExecArray)[1] as string),
    pointAtSources(m.code),
  );
}
// …and the guide's suite blocks, as written: importing one registers its suite here.
const suites = blocks.filter((b) => b.marker === "<!-- vitest: run by test/backends-doc.test.ts -->");
for (const [i, suite] of suites.entries()) {
  const file = path.join(generated, `suite-${i}.ts`);
  writeFileSync(file, pointAtSources(suite.code));
  await import(pathToFileURL(file).href);
}

type Opener<O, S> = { open(options: O): Promise<S> };
const { DirectoryStore } = (await import(pathToFileURL(path.join(generated, "directory-store.ts")).href)) as {
  DirectoryStore: Opener<{ directory: string }, Store>;
};

it("docs/backends.md has its two backends and a suite for each", () => {
  expect(modules.length).toBe(2);
  expect(suites.length).toBe(2);
});

it("DirectoryStore refuses a missing directory and an old option name with a ConfigurationError", async () => {
  await expect(DirectoryStore.open({} as { directory: string })).rejects.toThrow(
    /DirectoryStore option directory must be a non-empty string/,
  );
  await expect(DirectoryStore.open({ dir: "x" } as unknown as { directory: string })).rejects.toThrow(
    /DirectoryStore has no option dir; it is called directory/,
  );
});
