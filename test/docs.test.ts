/**
 * The examples marked `<!-- runnable -->` in the docs run as written, with
 * `statelog…` imports pointed at this checkout's sources, in a temp directory.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function runnableBlocks(doc: string): Promise<string[]> {
  const text = await readFile(join(root, doc), "utf8");
  return [...text.matchAll(/<!-- runnable[^>]*-->\n```ts\n([\s\S]*?)\n```/g)].map((m) => m[1] as string);
}

function pointAtSources(code: string): string {
  return code.replace(/from "statelog(\/[a-z]+)?"/g, (_m, sub: string | undefined) => {
    const file = sub ? join(root, "src", sub.slice(1), "index.ts") : join(root, "src", "index.ts");
    return `from ${JSON.stringify(file)}`;
  });
}

describe("runnable examples in the docs", () => {
  for (const doc of ["README.md", "docs/events.md"]) {
    it(`${doc}: every runnable example runs`, { timeout: 60_000 }, async () => {
      const blocks = await runnableBlocks(doc);
      expect(blocks.length).toBeGreaterThan(0);
      for (const [i, code] of blocks.entries()) {
        const dir = await mkdtemp(join(tmpdir(), "statelog-doc-"));
        dirs.push(dir);
        const file = join(dir, `example-${i}.mts`);
        await writeFile(file, pointAtSources(code));
        const tsx = join(root, "node_modules", "tsx", "dist", "esm", "index.mjs");
        const result = await run(process.execPath, ["--import", tsx, file], { cwd: dir }).catch(
          (e: { stderr?: string; message: string }) => {
            throw new Error(`${doc} example ${i + 1} failed:\n${e.stderr ?? e.message}\n--- code ---\n${code}`);
          },
        );
        expect(result.stderr).toBe("");
      }
    });
  }
});
