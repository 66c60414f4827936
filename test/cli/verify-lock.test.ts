/**
 * `statelog verify` of a file event store without a `LOCK` file takes no
 * lock (it makes no file): a writer that opens the store while it is
 * checked is found afterwards, and the check refused as one of a store
 * open before it.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ExitCode, exitCodeOf } from "../../src/cli/errors.js";
import { parseTarget } from "../../src/cli/targets.js";
import { verifyTarget } from "../../src/cli/verify.js";
import { createEvent } from "../../src/events/index.js";
import { FileEventStore } from "../../src/file/index.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A store of many segments (the check takes many reads), closed, without its LOCK file. */
async function unlockedStore(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "statelog-verify-lock-"));
  dirs.push(dir);
  {
    await using store = await FileEventStore.open({ directory: dir, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 20; i++) {
      await store.append(
        `s${i}`,
        Array.from({ length: 250 }, (_, k) => createEvent("e", { k, pad: "x".repeat(100) })),
      );
    }
  }
  rmSync(path.join(dir, "LOCK"));
  return dir;
}

describe("verify of a file event store without a LOCK file", { timeout: 60_000 }, () => {
  it("is refused (exit 6) when a writer opened the store while it was checked", async () => {
    const dir = await unlockedStore();
    const signal = new AbortController().signal;
    const verifying = verifyTarget(parseTarget(`file+events:${dir}`), signal, true);
    // The check is under way (it read the directory and holds no lock): a writer opens the store now.
    await using _writer = await FileEventStore.open({ directory: dir });
    const error = await verifying.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "STATELOG_LOCKED" });
    expect((error as Error).message).toContain("was opened by another process while verify checked it");
    expect(exitCodeOf(error)).toBe(ExitCode.Unavailable);
  });

  it("passes when the store stayed closed, or was closed again (its LOCK file made, not held)", async () => {
    const dir = await unlockedStore();
    const signal = new AbortController().signal;
    const report = await verifyTarget(parseTarget(`file+events:${dir}`), signal, true);
    expect(report.problems).toEqual([]);
    expect(report.checked.events).toBe(5000);
    {
      await using _writer = await FileEventStore.open({ directory: dir });
    }
    expect((await verifyTarget(parseTarget(`file+events:${dir}`), signal, true)).problems).toEqual([]);
  });
});
