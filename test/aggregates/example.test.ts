import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("examples/order-aggregate.ts", () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it("runs the commands, shows a conflict and its retry, and restores the order from disk on a second run", {
    timeout: 120_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "statelog-order-demo-"));
    dirs.push(dir);
    const demo = () =>
      run(process.execPath, ["--import", "tsx", "examples/order-aggregate.ts"], {
        cwd: join(import.meta.dirname, "..", ".."),
        env: { ...process.env, STATELOG_DEMO_DIR: dir },
      });
    const first = await demo();
    expect(first.stderr).toBe("");
    expect(first.stdout.split("\n").filter(Boolean)).toEqual([
      "placed order-1001 for c-7 (version 1)",
      "added book x2 (version 2, total 30.00)",
      "conflict: expected version 2, actual 3",
      "shipped order-1001 after 2 attempts (version 5)",
      "lines: book x2, pen x1, gift-wrap x1; total 35.00",
    ]);
    const second = await demo();
    expect(second.stdout).toMatch(
      /order-1001 restored: shipped, 3 lines, total 35\.00, version 5 \(snapshot at [1-5] \+ [0-4] events\)/,
    );
    expect(second.stdout).toContain("refused: cannot add items to an order that is shipped");
  });
});
