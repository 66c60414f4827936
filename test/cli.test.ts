import { execFile } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode, formatError, toStatelogError, withCorruptionHint } from "../src/cli/errors.js";
import { packageVersion } from "../src/cli/version.js";
import {
  CorruptionError,
  ErrorCode,
  isConfigurationError,
  isNotFoundError,
  isStatelogError,
} from "../src/core/errors.js";
import { FileStore } from "../src/file/index.js";

const root = join(import.meta.dirname, "..");
const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], { cwd: root });

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs the command whatever its exit code. */
const outcome = (...args: string[]): Promise<Outcome> =>
  cli(...args).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: Outcome) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

const change = (namespace: string, entityId: string, v: number) => ({
  namespace,
  changeType: "set" as const,
  entityType: "t",
  entityId,
  entity: { v },
});

describe("statelog CLI", { timeout: 120_000 }, () => {
  let dir: string;
  /** A store whose namespace "bad" has a damaged line (line 2) between two good ones; "good" is healthy. */
  let damaged: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-"));
    await using store = await FileStore.open({ directory: join(dir, "live") });
    await store.save([
      { namespace: "ws-1", changeType: "set", entityType: "deployment", entityId: "d1", entity: { v: 1 } },
      { namespace: "ws-1", changeType: "set", entityType: "deployment", entityId: "d1", entity: { v: 2 } },
      { namespace: "ws-1", changeType: "unset", entityType: "deployment", entityId: "d2" },
      { namespace: "ws 2..", changeType: "set", entityType: "env", entityId: "e/1", entity: { ok: true } },
    ]);
    damaged = join(dir, "damaged");
    await using d = await FileStore.open({ directory: damaged });
    await d.save([change("good", "a", 1), change("bad", "a", 1)]);
    appendFileSync(d.fileOf("bad"), "this is not a line\n");
    await d.save([change("bad", "b", 2)]);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("lists namespaces with live and deleted counts", async () => {
    const { stdout } = await cli("namespaces", join(dir, "live"), "--json");
    expect(JSON.parse(stdout)).toEqual([
      { namespace: "ws 2..", live: 1, deleted: 0 },
      { namespace: "ws-1", live: 1, deleted: 1 },
    ]);
  });

  it("dumps the current state as JSON lines in the file format, --live without tombstones", async () => {
    const all = (await cli("dump", join(dir, "live"), "ws-1")).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(all.map((c) => [c.entityID, c.changeType, c.entity])).toEqual([
      ["d1", "set", { v: 2 }],
      ["d2", "unset", undefined],
    ]);
    const live = (await cli("dump", join(dir, "live"), "ws-1", "--live")).stdout.trim().split("\n");
    expect(live).toHaveLength(1);
  });

  it("copies every namespace to a new store and compacts", async () => {
    const { stdout } = await cli("copy", join(dir, "live"), join(dir, "backup"));
    expect(stdout).toContain("copied 3 change(s) in 2 namespace(s)");
    await using backup = await FileStore.open({ directory: join(dir, "backup") });
    expect((await backup.load("ws 2..")).map((c) => c.entity)).toEqual([{ ok: true }]);
    expect((await backup.load("ws-1")).map((c) => c.changeType)).toEqual(["set", "unset"]);
    const compacted = await cli("compact", join(dir, "live"));
    expect(compacted.stdout).toContain("compacted 2 namespace(s)");
    const one = await cli("compact", join(dir, "live"), "ws-1");
    expect(one.stdout).toContain("compacted 1 namespace(s)");
  });

  it("prints the package's version, found from src/cli and from dist/cli alike", async () => {
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    expect((await cli("--version")).stdout.trim()).toBe(version);
    expect(packageVersion(new URL("../dist/cli/index.js", import.meta.url))).toBe(version);
    expect(packageVersion(new URL("../src/cli/version.ts", import.meta.url))).toBe(version);
    expect(() => packageVersion(new URL("file:///nowhere/cli/index.js"))).toThrow(/no package.json of statelog/);
  });

  it("fails clearly on a missing store and on bad arguments, creating nothing", async () => {
    const missing = await outcome("dump", join(dir, "nope"), "ws");
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toContain(
      `store directory ${JSON.stringify(join(dir, "nope"))} not found [STATELOG_NOT_FOUND]`,
    );
    const listing = await outcome("namespaces", join(dir, "nope", "deeper"));
    expect(listing.code).toBe(ExitCode.NotFound);
    expect(listing.stderr).toContain("[STATELOG_NOT_FOUND]");
    const compacting = await outcome("compact", join(dir, "nope"));
    expect(compacting.code).toBe(ExitCode.NotFound);
    expect(await readdir(dir)).not.toContain("nope");
    const bad = await outcome("dump", join(dir, "live"), "a/b");
    expect(bad.stderr).toContain("[STATELOG_INVALID_NAME]");
    expect(bad.code).toBe(ExitCode.Usage);
    const badBatch = await outcome("copy", join(dir, "live"), join(dir, "x"), "-b", "0");
    expect(badBatch.stderr).toContain("must be a positive integer");
    expect(badBatch.code).toBe(ExitCode.Usage);
    expect(await readdir(dir)).not.toContain("x");
  });

  it("a namespace that does not exist is an error for dump, compact and copy -n", async () => {
    for (const args of [
      ["dump", join(dir, "live"), "nosuch"],
      ["compact", join(dir, "live"), "ws-1", "nosuch"],
      ["copy", join(dir, "live"), join(dir, "never"), "-n", "nosuch"],
    ]) {
      const result = await outcome(...args);
      expect(result.code, args.join(" ")).toBe(ExitCode.NotFound);
      expect(result.stderr).toContain('namespace "nosuch" not found [STATELOG_NOT_FOUND]');
      expect(result.stdout).toBe("");
    }
    expect(await readdir(dir)).not.toContain("never");
  });

  it("namespaces lists the healthy namespaces, reports the damaged ones and exits non-zero", async () => {
    const result = await outcome("namespaces", damaged, "--json");
    expect(result.code).toBe(ExitCode.Damaged);
    // --json lists the damaged namespace with its damage; stderr holds one JSON error (test/cli/json-errors.test.ts).
    expect(JSON.parse(result.stdout)).toEqual([
      { namespace: "bad", damaged: { code: "STATELOG_CORRUPTION", message: expect.stringContaining("bad.jsonl:2") } },
      { namespace: "good", live: 1, deleted: 0 },
    ]);
    expect(JSON.parse(result.stderr)).toMatchObject({ error: { code: "STATELOG_CORRUPTION", exitCode: 7 } });
    const table = await outcome("namespaces", damaged);
    expect(table.code).toBe(ExitCode.Damaged);
    expect(table.stderr).toContain('namespace "bad" is damaged: ');
    expect(table.stderr).toContain("bad.jsonl:2: not a JSON line");
    expect(table.stderr).toContain("--skip-damaged");
    expect(table.stderr).toContain("[STATELOG_CORRUPTION]");
    expect(table.stderr).not.toContain("onCorruption");
    expect(table.stdout).toMatch(/^good\s+1\s+0$/m);
    expect(table.stdout).not.toContain("bad");
    const skipping = await outcome("namespaces", damaged, "--json", "--skip-damaged");
    expect(skipping.code).toBe(ExitCode.Ok);
    expect(JSON.parse(skipping.stdout)).toEqual([
      { namespace: "bad", live: 2, deleted: 0 },
      { namespace: "good", live: 1, deleted: 0 },
    ]);
    expect(skipping.stderr).toContain('skipped 1 damaged line(s) of namespace "bad"');
  });

  it("dump fails on a damaged line, suggesting --skip-damaged, which skips it and reports it on stderr", async () => {
    const failed = await outcome("dump", damaged, "bad");
    expect(failed.code).toBe(ExitCode.Damaged);
    expect(failed.stdout).toBe("");
    expect(failed.stderr).toMatch(
      /bad\.jsonl:2: not a JSON line \(run again with --skip-damaged[^)]*\) \[STATELOG_CORRUPTION\]/,
    );
    expect(failed.stderr).not.toContain("onCorruption");
    const skipped = await outcome("dump", damaged, "bad", "--skip-damaged");
    expect(skipped.code).toBe(ExitCode.Ok);
    expect(
      skipped.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).entity),
    ).toEqual([{ v: 1 }, { v: 2 }]);
    expect(skipped.stderr).toContain(
      `skipped 1 damaged line(s) of namespace "bad": ${join(damaged, "bad.jsonl")} line(s) 2`,
    );
    const compact = await outcome("compact", damaged, "bad");
    expect(compact.code).toBe(ExitCode.Damaged);
    expect(compact.stderr).toContain("statelog copy --skip-damaged");
    expect(compact.stderr).not.toContain("onCorruption");
  });

  it("copy with --skip-damaged copies what can be read; a failed copy removes only the directories it created", async () => {
    const created = join(dir, "fresh", "a", "b");
    const failed = await outcome("copy", damaged, created);
    expect(failed.code).toBe(ExitCode.Damaged);
    expect(failed.stderr).toContain("--skip-damaged");
    expect(failed.stderr).toContain("[STATELOG_CORRUPTION]");
    expect(await readdir(dir)).not.toContain("fresh");

    const existing = join(dir, "existing");
    await mkdir(existing);
    await writeFile(join(existing, "keep.txt"), "mine");
    const failedInto = await outcome("copy", damaged, existing);
    expect(failedInto.code).toBe(ExitCode.Damaged);
    expect(await readdir(dir)).toContain("existing");
    expect(await readdir(existing)).toContain("keep.txt");

    const copied = await outcome("copy", damaged, created, "--skip-damaged");
    expect(copied.code).toBe(ExitCode.Ok);
    expect(copied.stdout).toContain("copied 3 change(s) in 2 namespace(s)");
    expect(copied.stderr).toContain('skipped 1 damaged line(s) of namespace "bad"');
    await using target = await FileStore.open({ directory: created });
    expect((await target.load("bad")).map((c) => c.entityId)).toEqual(["a", "b"]);
  });

  it("a failed copy to a path through a missing folder and `..` removes only the folders it made", async () => {
    // `backups/new/..` is `backups`, which was there before: only `new`, made by the copy, goes.
    const backups = join(dir, "backups");
    await mkdir(backups);
    await writeFile(join(backups, "2025.tar"), "last year's backup");
    const throughNew = await outcome("copy", damaged, `file:${join(backups, "new")}/..`);
    expect(throughNew.code).toBe(ExitCode.Damaged);
    expect(await readdir(backups)).toEqual(["2025.tar"]);
    expect(readFileSync(join(backups, "2025.tar"), "utf8")).toBe("last year's backup");
    // `made-a/../made-b/c`: the copy makes made-a, made-b and c; all go again.
    const sideways = await outcome("copy", damaged, `${join(dir, "made-a")}/../made-b/c`);
    expect(sideways.code).toBe(ExitCode.Damaged);
    expect(await readdir(dir)).not.toContain("made-a");
    expect(await readdir(dir)).not.toContain("made-b");
  });

  it("copy to a path through a symbolic link and `..` makes, fills and removes the folders the file system names", async () => {
    // `w/link/..` is `elsewhere` (the parent of the link's target), not `w`.
    const w = join(dir, "w");
    const elsewhere = join(dir, "elsewhere");
    await mkdir(join(elsewhere, "deep"), { recursive: true });
    await mkdir(w);
    await symlink(join(elsewhere, "deep"), join(w, "link"));
    const copied = await outcome("copy", join(dir, "live"), `file:${w}/link/../out`, "--no-progress");
    expect(copied.code, copied.stderr).toBe(ExitCode.Ok);
    expect(copied.stdout).toContain("copied 3 change(s) in 2 namespace(s)");
    expect(await readdir(w)).toEqual(["link"]);
    await using out = await FileStore.open({ directory: join(elsewhere, "out") });
    expect((await out.load("ws-1")).map((c) => c.changeType)).toEqual(["set", "unset"]);
    // The same path is the store just written: a copy onto it is refused.
    const self = await outcome("copy", join(elsewhere, "out"), `file:${w}/link/../out`);
    expect(self.code).toBe(ExitCode.Usage);
    expect(self.stderr).toContain("cannot copy a store onto itself");
    // A failed copy removes the folders it made there, and only those.
    const failed = await outcome("copy", damaged, `file:${w}/link/../made/x`, "--no-progress");
    expect(failed.code).toBe(ExitCode.Damaged);
    expect((await readdir(elsewhere)).sort()).toEqual(["deep", "out"]);
    expect(await readdir(w)).toEqual(["link"]);
  });

  it("refuses to copy a store onto itself, however the path is spelled", async () => {
    const live = join(dir, "live");
    const link = join(dir, "live-link");
    await symlink(live, link);
    const before = await readdir(live);
    for (const to of [live, `${live}/`, join(dir, "live", "..", "live"), link]) {
      const result = await outcome("copy", live, to);
      expect(result.code, to).toBe(ExitCode.Usage);
      expect(result.stderr).toContain("cannot copy a store onto itself");
      expect(result.stderr).toContain("[STATELOG_CONFIGURATION]");
    }
    expect(await readdir(live)).toEqual(before);
  });

  it("a file where a directory is expected is a typed error, not a raw system error", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "not a store");
    for (const args of [
      ["namespaces", file],
      ["dump", file, "ws-1"],
      ["copy", join(dir, "live"), file],
      ["copy", join(dir, "live"), join(file, "sub")],
      ["namespaces", join(file, "sub")],
    ]) {
      const result = await outcome(...args);
      expect(result.code, args.join(" ")).toBe(ExitCode.Usage);
      expect(result.stderr, args.join(" ")).toMatch(/^statelog: .+ \[STATELOG_CONFIGURATION\]$/m);
      expect(result.stderr).not.toMatch(/^(Error|.*\bat )/m);
    }
    expect(readFileSync(file, "utf8")).toBe("not a store");
  });

  it("turns raw system errors into typed errors with codes and plain words", () => {
    const sys = (code: string, message: string) =>
      Object.assign(new Error(`${code}: ${message}, mkdir '/x/y'`), { code, syscall: "mkdir", path: "/x/y" });
    const denied = toStatelogError(sys("EACCES", "permission denied"), 'store directory "/x/y"');
    expect(isConfigurationError(denied)).toBe(true);
    expect(formatError(denied)).toBe(
      `cannot use store directory "/x/y": permission denied (EACCES: permission denied, mkdir '/x/y') [STATELOG_CONFIGURATION]`,
    );
    expect((denied as Error).cause).toMatchObject({ code: "EACCES" });
    expect(formatError(sys("EEXIST", "file already exists"))).toContain(
      '"/x/y" exists and is not a directory (EEXIST: file already exists',
    );
    expect(isNotFoundError(toStatelogError(sys("ENOENT", "no such file or directory")))).toBe(true);
    expect(isStatelogError(toStatelogError(sys("EIO", "i/o error")), ErrorCode.Unavailable)).toBe(true);
    const plain = new Error("boom");
    expect(toStatelogError(plain)).toBe(plain);
    expect(formatError(plain)).toBe("boom");
  });

  it("replaces the library option in a damaged line's hint, keeping file and line", () => {
    const original = new CorruptionError("/d/ns.jsonl", 7, 'bad crc (pass onCorruption: "skip" to skip damaged lines)');
    const hinted = withCorruptionHint(original, "use --skip-damaged") as CorruptionError;
    expect(hinted).toBeInstanceOf(CorruptionError);
    expect([hinted.file, hinted.line]).toEqual(["/d/ns.jsonl", 7]);
    expect(hinted.message).toBe("/d/ns.jsonl:7: bad crc (use --skip-damaged)");
    const other = new Error("x");
    expect(withCorruptionHint(other, "h")).toBe(other);
  });
});
