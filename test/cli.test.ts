import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStore } from "../src/file/index.js";

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], { cwd: join(import.meta.dirname, "..") });

describe("statelog CLI", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "statelog-cli-"));
    await using store = await FileStore.open({ directory: join(dir, "live") });
    await store.save([
      { namespace: "ws-1", changeType: "set", entityType: "deployment", entityId: "d1", entity: { v: 1 } },
      { namespace: "ws-1", changeType: "set", entityType: "deployment", entityId: "d1", entity: { v: 2 } },
      { namespace: "ws-1", changeType: "unset", entityType: "deployment", entityId: "d2" },
      { namespace: "ws 2..", changeType: "set", entityType: "env", entityId: "e/1", entity: { ok: true } },
    ]);
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
  });

  it("fails clearly on a missing store and on bad arguments", async () => {
    const missing = await cli("dump", join(dir, "nope"), "ws").catch((e: { stderr: string; code: number }) => e);
    expect(missing).toMatchObject({ code: 1 });
    expect((missing as { stderr: string }).stderr).toContain("the directory does not exist");
    expect(await readdir(dir)).not.toContain("nope");
    const bad = await cli("dump", join(dir, "live"), "a/b").catch((e: { stderr: string }) => e);
    expect((bad as { stderr: string }).stderr).toContain("[STATELOG_INVALID_NAME]");
    const badBatch = await cli("copy", join(dir, "live"), join(dir, "x"), "-b", "0").catch(
      (e: { stderr: string }) => e,
    );
    expect((badBatch as { stderr: string }).stderr).toContain("must be a positive integer");
  });
});
