import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("npm start (examples/workspace-engine.ts)", () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it("persists, restores and is idempotent across runs", { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "statelog-demo-"));
    dirs.push(dir);
    const demo = () =>
      run(process.execPath, ["--import", "tsx", "examples/workspace-engine.ts"], {
        cwd: join(import.meta.dirname, ".."),
        env: { ...process.env, STATELOG_DEMO_DIR: dir },
      });
    const first = (await demo()).stdout;
    const second = (await demo()).stdout;
    expect(first).toMatch(/persisted 12000 changes/);
    for (const ws of ["acme", "globex", "initech"])
      expect(first).toMatch(new RegExp(`${ws}\\s+\\d+ keys: +\\d+ deployments`));
    const digest = (out: string) => /state digest ([0-9a-f]{16})/.exec(out)?.[1];
    expect(digest(first)).toBeDefined();
    expect(digest(second)).toBe(digest(first));
    const restored = (out: string) =>
      out
        .split("\n")
        .filter((l) => / keys: /.test(l))
        .map((l) => l.replace(/\(.*\)/, ""));
    expect(restored(second)).toEqual(restored(first));
  });
});
