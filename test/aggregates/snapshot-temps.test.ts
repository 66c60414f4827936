/**
 * A save cut off by a crash leaves its temp file next to the snapshot
 * files; `FileSnapshotStore.open` removes those of writers that are gone,
 * and never one of a writer that may still be at work.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FileSnapshotStore } from "../../src/file/index.js";
import { childCommand } from "../helpers/child-command.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const base = await mkdtemp(path.join(tmpdir(), "statelog-snapshot-temps-"));
afterAll(() => rm(base, { recursive: true, force: true }));

const temps = async (directory: string) => (await readdir(directory)).filter((n) => n.endsWith(".tmp")).sort();
const FILE = `snapshots-${"ab".repeat(32)}.json`;

/** Starts `node -e` that lives until killed; resolves with it once it runs. */
async function sleeper(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  await new Promise((resolve) => child.once("spawn", resolve));
  return child;
}

/** The pid of a process that ran and ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

describe("FileSnapshotStore temp files", () => {
  it("open removes the temp file of a save whose process was killed, and the snapshot before it still loads", {
    timeout: 60_000,
  }, async () => {
    const directory = path.join(base, "killed");
    const argv = await childCommand(path.join(here, "fixtures", "snapshot-saver-child.ts"), base);
    const child = spawn(process.execPath, [...argv, directory], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: path.resolve(here, "../.."),
      env: { ...process.env, NODE_PATH: path.resolve(here, "../../node_modules") },
    });
    let err = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.setEncoding("utf8").on("data", (d: string) => d.includes("READY") && resolve());
      child.on("exit", () => reject(new Error(`the child ended: ${err}`)));
    });
    // Killed while its second save writes (the first one is in place).
    for (let i = 0; ; i++) {
      const names = await readdir(directory);
      if (names.some((n) => n.endsWith(".json")) && names.some((n) => n.endsWith(".tmp"))) break;
      if (i > 100_000) throw new Error(`no save in progress seen: ${err}`);
      await new Promise((r) => setImmediate(r));
    }
    child.kill("SIGKILL");
    expect(await exited, err).toBe("SIGKILL");
    const left = await temps(directory);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^snapshots-[0-9a-f]{64}\\.json\\.${child.pid}\\.[0-9a-f]{12}\\.tmp$`));
    // Just written: kept (its writer may be alive in another pid namespace); once a minute old, removed.
    await FileSnapshotStore.open({ directory }).then((s) => s.close());
    expect(await temps(directory)).toEqual(left);
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(path.join(directory, left[0] as string), hourAgo, hourAgo);
    const store = await FileSnapshotStore.open({ directory });
    expect(await temps(directory)).toEqual([]);
    expect((await store.load("order-1"))?.version).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it("keeps the temp files of a live process and recent ones; removes old ones of its own and of ended processes", async () => {
    const directory = path.join(base, "rules");
    await FileSnapshotStore.open({ directory }).then((s) => s.close());
    const alive = await sleeper();
    try {
      const dead = await deadPid();
      const names = {
        live: `${FILE}.${alive.pid}.0123456789ab.tmp`,
        dead: `${FILE}.${dead}.0123456789ab.tmp`,
        deadOldName: `${FILE}.${dead}.tmp`,
        ownRecent: `${FILE}.${process.pid}.aaaaaaaaaaaa.tmp`,
        ownOld: `${FILE}.${process.pid}.bbbbbbbbbbbb.tmp`,
        notOurs: `notes.json.${dead}.0123456789ab.tmp`,
      };
      for (const name of Object.values(names)) await writeFile(path.join(directory, name), "{");
      const hourAgo = new Date(Date.now() - 3_600_000);
      for (const name of Object.values(names)) await utimes(path.join(directory, name), hourAgo, hourAgo);
      const recent = { ownRecent: names.ownRecent, deadRecent: `${FILE}.${dead}.cccccccccccc.tmp` };
      await writeFile(path.join(directory, recent.ownRecent), "{");
      await writeFile(path.join(directory, recent.deadRecent), "{");
      const store = await FileSnapshotStore.open({ directory });
      expect(await temps(directory)).toEqual([names.live, names.notOurs, recent.ownRecent, recent.deadRecent].sort());
      await store.close();
    } finally {
      alive.kill("SIGKILL");
    }
  });
});
