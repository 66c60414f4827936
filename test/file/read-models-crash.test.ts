/**
 * Crash test of FileReadModelStore: a child commits batches of models with
 * their checkpoint (`saveWithCheckpoint`, fsync, frequent compaction) and
 * is SIGKILLed at a random moment, STATELOG_CRASH_ITERATIONS times
 * (default 60). After each kill the store must reopen with a checkpoint at
 * or past the last acknowledged one, and hold exactly the models of the
 * batches up to that checkpoint: never a batch in part, never a model
 * without its checkpoint.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FileReadModelStore } from "../../src/file/index.js";
import { childCommand } from "../helpers/child-command.js";
import { stateAfter } from "./fixtures/read-models-crash-batch.js";

const ITERATIONS = Number(process.env.STATELOG_CRASH_ITERATIONS ?? 60);
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, "fixtures", "read-models-crash-child.ts");
const base = await mkdtemp(path.join(tmpdir(), "statelog-rm-crash-"));

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("FileReadModelStore crash safety", () => {
  it(`a batch and its checkpoint survive together across ${ITERATIONS} SIGKILLs`, {
    timeout: 60_000 + ITERATIONS * 2_000,
  }, async () => {
    const argv = await childCommand(fixture, base);
    const directory = path.join(base, "store");
    let acked = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const child: ChildProcess = spawn(process.execPath, [...argv, directory], {
        stdio: ["ignore", "pipe", "pipe"],
        cwd: path.resolve(here, "../.."),
        env: { ...process.env, NODE_PATH: path.resolve(here, "../../node_modules") },
      });
      let out = "";
      let err = "";
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout?.setEncoding("utf8").on("data", (d: string) => {
          out += d;
          if (out.includes("READY\n")) resolve();
        });
        child.on("exit", (code) => reject(new Error(`child exited before READY (${code}): ${err}`)));
      });
      child.stderr?.setEncoding("utf8").on("data", (d: string) => {
        err += d;
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, signal) => resolve(signal)));
      await ready;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 80)));
      child.kill("SIGKILL");
      expect(await exited, `child ended by itself: ${err}`).toBe("SIGKILL");
      for (const m of out.matchAll(/^ACK (\d+)$/gm)) acked = Math.max(acked, Number(m[1]));
      const store = await FileReadModelStore.open({ directory });
      try {
        const checkpoint = (await store.getProjectionStatus("p"))?.checkpoint ?? 0;
        expect(checkpoint).toBeGreaterThanOrEqual(acked);
        const expected = stateAfter(checkpoint);
        const ids = await store.list("M");
        expect(ids).toEqual([...expected.keys()].sort());
        for (const id of ids)
          expect((await store.load("M", id))?.model, `${id} after crash ${i}`).toEqual(expected.get(id));
        acked = checkpoint;
      } finally {
        await store.close();
      }
    }
    expect(acked).toBeGreaterThan(ITERATIONS);
  });
});
