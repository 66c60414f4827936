/**
 * A copy that fails part-way says what it had copied and what of it is on
 * disk (a damaged source namespace met after others were written; the
 * interrupted copy is in file-store.test.ts and nats.test.ts).
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { FileStore } from "../../src/file/index.js";
import { outcome } from "./run.js";
import { set } from "./sample.js";

const thirty = (namespace: string) => Array.from({ length: 30 }, (_, i) => set(namespace, String(i), { i }));

describe("a copy that fails part-way", { timeout: 120_000 }, () => {
  let dir: string;
  /** Namespaces a, b, c of 30 changes each; b ends in a damaged line. */
  let damaged: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-copy-failure-"));
    damaged = join(dir, "damaged");
    {
      await using store = await FileStore.open({ directory: damaged });
      for (const ns of ["a", "b", "c"]) await store.save(thirty(ns));
    }
    appendFileSync(join(damaged, "b.jsonl"), "not json\n{}\n");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("into a new directory: says what it had copied and that the directory it created was removed", async () => {
    const target = join(dir, "new");
    const run = await outcome("copy", damaged, target, "-b", "7", "--no-progress");
    expect(run.code).toBe(ExitCode.Damaged);
    expect(run.stderr).toBe(
      `statelog: ${join(damaged, "b.jsonl")}:31: not a JSON line (run again with --skip-damaged to leave damaged lines out and list them); ` +
        'the copy stopped after 30 change(s) copied in whole saves: 1 of 3 namespace(s) in full, 0 change(s) of namespace "b"; ' +
        `the target directory ${JSON.stringify(target)}, which this copy created, was removed: nothing copied is kept; copying again is safe [STATELOG_CORRUPTION]\n`,
    );
    expect(existsSync(target)).toBe(false);
  });

  it("into a directory that was there: says what it had copied, which the directory keeps (--json too)", async () => {
    const target = join(dir, "existing");
    mkdirSync(target);
    const run = await outcome("copy", damaged, `file:${target}`, "-b", "7", "--no-progress", "--json");
    expect(run.code).toBe(ExitCode.Damaged);
    expect(run.stdout).toBe("");
    const { error } = JSON.parse(run.stderr);
    expect(error).toMatchObject({ code: "STATELOG_CORRUPTION", exitCode: ExitCode.Damaged });
    expect(error.message).toContain(
      `; the copy stopped after 30 change(s) copied in whole saves: 1 of 3 namespace(s) in full, 0 change(s) of namespace "b"; the target keeps what was copied (file:${target}); copying again is safe`,
    );
    expect(readdirSync(target).filter((n) => n.endsWith(".jsonl"))).toEqual(["a.jsonl"]);
    await using kept = await FileStore.open({ directory: target });
    expect(await kept.load("a")).toHaveLength(30);
  });

  it("a failure before the copy began is reported as it is", async () => {
    const run = await outcome("copy", damaged, join(dir, "never"), "-n", "nosuch");
    expect(run.code).toBe(ExitCode.NotFound);
    expect(run.stderr).toBe('statelog: namespace "nosuch" not found [STATELOG_NOT_FOUND]\n');
  });
});
