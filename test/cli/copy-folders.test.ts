/**
 * The folders `statelog copy` makes for a file target, and removes again
 * when the copy fails: only its own, and of those only the target with
 * what is in it (another process may use a folder on its path meanwhile).
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeDirectory, removeMade } from "../../src/cli/store-commands.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "statelog-copy-folders-"));
  dirs.push(dir);
  return dir;
}

describe("copy's folders", () => {
  it("a failed copy leaves a parent folder it made that another copy filled meanwhile", async () => {
    const dir = await tempDir();
    const made = makeDirectory(path.join(dir, "backups", "nightly", "a"));
    expect(made.map((m) => [path.relative(dir, m.path), m.target])).toEqual([
      ["backups", false],
      [path.join("backups", "nightly"), false],
      [path.join("backups", "nightly", "a"), true],
    ]);
    // This copy wrote part of its data; meanwhile another one made its target beside it, and succeeded.
    writeFileSync(path.join(dir, "backups", "nightly", "a", "partial.jsonl"), "");
    mkdirSync(path.join(dir, "backups", "nightly", "b"));
    writeFileSync(path.join(dir, "backups", "nightly", "b", "ws.jsonl"), "the other copy's data\n");
    removeMade(made);
    expect(readdirSync(path.join(dir, "backups", "nightly"))).toEqual(["b"]);
    expect(readdirSync(path.join(dir, "backups", "nightly", "b"))).toEqual(["ws.jsonl"]);
  });

  it("removes every folder it made when nothing else is there", async () => {
    const dir = await tempDir();
    removeMade(makeDirectory(path.join(dir, "x", "y", "z")));
    expect(readdirSync(dir)).toEqual([]);
    // `out/.` names `out`: its contents go with it.
    const dotted = makeDirectory(`${path.join(dir, "out")}${path.sep}.`);
    expect(dotted.map((m) => m.target)).toEqual([true]);
    writeFileSync(path.join(dir, "out", "partial.jsonl"), "");
    removeMade(dotted);
    expect(readdirSync(dir)).toEqual([]);
  });
});
