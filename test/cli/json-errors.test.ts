/**
 * `--json`: every failure is one JSON error on stderr,
 * `{"error":{"code","message","exitCode"}}` (docs/cli.md), Commander's
 * usage errors and failures a command finds (a projection without a
 * status, damaged namespaces) too.
 */
import { appendFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../src/cli/errors.js";
import { FileStore } from "../../src/file/index.js";
import { outcome } from "./run.js";
import { set, writeOrdersStatus } from "./sample.js";

/** The JSON error lines of a run's stderr (every line must be one). */
function errorLines(stderr: string): { error: { code?: string; message: string; exitCode: number } }[] {
  return stderr
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

describe("statelog --json errors", { timeout: 120_000 }, () => {
  let dir: string;
  let data: string;
  let damaged: string;
  let models: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-json-errors-"));
    data = join(dir, "data");
    {
      await using store = await FileStore.open({ directory: data });
      await store.save([set("a", "1", { v: 1 })]);
    }
    damaged = join(dir, "damaged");
    {
      await using store = await FileStore.open({ directory: damaged });
      await store.save([set("bad", "1", { v: 1 }), set("good", "1", { v: 1 }), set("ok", "1", { v: 1 })]);
    }
    appendFileSync(join(damaged, "bad.jsonl"), "not json\n{}\n");
    models = join(dir, "models");
    await writeOrdersStatus(models);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("a usage error (a bad option value, an unknown option or command, a missing argument) is a JSON error, exit 2", async () => {
    const cases: [string[], string][] = [
      [["copy", data, "memory:", "-b", "0", "--json"], "option '-b, --batch-size <n>' argument '0' is invalid"],
      [["namespaces", data, "--bogus", "--json"], "unknown option '--bogus'"],
      [["nosuch", "--json"], "unknown command 'nosuch'"],
      [["dump", "--json"], "missing required argument 'store'"],
    ];
    for (const [args, message] of cases) {
      const run = await outcome(...args);
      expect(run.code, args.join(" ")).toBe(ExitCode.Usage);
      expect(run.stdout, args.join(" ")).toBe("");
      const [line, ...more] = errorLines(run.stderr);
      expect(more, args.join(" ")).toEqual([]);
      expect(line?.error.code, args.join(" ")).toBe("STATELOG_CONFIGURATION");
      expect(line?.error.exitCode, args.join(" ")).toBe(ExitCode.Usage);
      expect(line?.error.message, args.join(" ")).toContain(message);
    }
    // Without --json: Commander's text, with the help after it.
    const text = await outcome("copy", data, "memory:", "-b", "0");
    expect(text.code).toBe(ExitCode.Usage);
    expect(text.stderr).toMatch(/^error: option '-b, --batch-size <n>' argument '0' is invalid/);
    expect(text.stderr).toContain("Usage: statelog copy|migrate");
  });

  it("status: a projection without a status is a JSON error on stderr", async () => {
    const run = await outcome("status", `file+models:${models}`, "orders", "nope", "--json");
    expect(run.code).toBe(ExitCode.NotFound);
    expect(JSON.parse(run.stdout)).toEqual([expect.objectContaining({ name: "orders", checkpoint: 4 })]);
    expect(errorLines(run.stderr)).toEqual([
      { error: { code: "STATELOG_NOT_FOUND", message: 'projection "nope" not found', exitCode: ExitCode.NotFound } },
    ]);
  });

  it("namespaces --json lists a damaged namespace with its damage, and the error on stderr is JSON", async () => {
    const run = await outcome("namespaces", damaged, "--json");
    expect(run.code).toBe(ExitCode.Damaged);
    expect(JSON.parse(run.stdout)).toEqual([
      {
        namespace: "bad",
        damaged: {
          code: "STATELOG_CORRUPTION",
          message: expect.stringMatching(/bad\.jsonl:2: not a JSON line \(run again with --skip-damaged/),
        },
      },
      { namespace: "good", live: 1, deleted: 0 },
      { namespace: "ok", live: 1, deleted: 0 },
    ]);
    const [line, ...more] = errorLines(run.stderr);
    expect(more).toEqual([]);
    expect(line?.error).toMatchObject({ code: "STATELOG_CORRUPTION", exitCode: ExitCode.Damaged });
    expect(line?.error.message).toMatch(/^1 of 3 namespace\(s\) are damaged: "bad" /);
    // Without --json, as before: the table of the healthy ones, each damaged one on stderr.
    const text = await outcome("namespaces", damaged);
    expect(text.code).toBe(ExitCode.Damaged);
    expect(text.stdout).not.toContain("bad");
    expect(text.stderr).toContain('statelog: namespace "bad" is damaged: ');
  });
});
