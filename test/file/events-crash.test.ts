/**
 * Crash test of FileEventStore: a child process appends (fsync, group
 * commit, snapshots) and reports every acknowledged append; it is SIGKILLed
 * at a random moment, STATELOG_CRASH_ITERATIONS times (default 200). After
 * each kill the store must reopen, and every acknowledged event must be
 * readable, in order, at the position its append returned.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FileEventStore } from "../../src/file/index.js";
import { childCommand } from "../helpers/child-command.js";

const ITERATIONS = Number(process.env.STATELOG_CRASH_ITERATIONS ?? 200);
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, "fixtures", "events-crash-child.ts");
const base = await mkdtemp(path.join(tmpdir(), "statelog-events-crash-"));

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function run(argv: string[], directory: string, id: string) {
  const child: ChildProcess = spawn(process.execPath, [...argv, directory, id], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: path.resolve(here, "../.."),
    env: { ...process.env, NODE_PATH: path.resolve(here, "../../node_modules") },
  });
  let out = "";
  let err = "";
  let onReady: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    if (out.includes("READY\n")) onReady?.();
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, ready, exited, output: () => out, stderr: () => err };
}

describe("FileEventStore crash safety", () => {
  it(`every acknowledged append survives ${ITERATIONS} SIGKILLs at random moments`, {
    timeout: 60_000 + ITERATIONS * 2_000,
  }, async () => {
    const argv = await childCommand(fixture, base);
    const directory = path.join(base, "store");
    /** stream → event id by position (1-based; index 0 unused), from acknowledged appends only. */
    const acked = new Map<string, string[]>();
    let totalAcked = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const c = run(argv, directory, `r${i}`);
      const exitedEarly = c.exited.then((e) => {
        throw new Error(`child exited before READY (${e.code ?? e.signal}): ${c.stderr()}`);
      });
      await Promise.race([c.ready, exitedEarly]);
      exitedEarly.catch(() => {});
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 60)));
      c.child.kill("SIGKILL");
      const { signal } = await c.exited;
      expect(signal, `child ended by itself: ${c.stderr()}`).toBe("SIGKILL");
      for (const line of c.output().split("\n")) {
        const m = /^ACK (\S+) (\d+) (\S+)$/.exec(line);
        if (!m) continue;
        const list = acked.get(m[1] as string) ?? [];
        (m[3] as string).split(",").forEach((id, j) => {
          list[Number(m[2]) + j] = id;
          totalAcked++;
        });
        acked.set(m[1] as string, list);
      }
      // Reopen after the crash and check every acknowledged event, in order, at its position.
      const store = await FileEventStore.open({
        directory,
        maxEventsPerStream: 0,
        maxStreams: 0,
        snapshotIntervalMs: 0,
      });
      try {
        for (const [stream, ids] of acked) {
          const events = await store.readStream(stream);
          expect(events.map((e) => e.position)).toEqual(events.map((_, j) => j + 1));
          for (let p = 1; p < ids.length; p++) {
            if (ids[p] !== undefined)
              expect(events[p - 1]?.id, `${stream} position ${p} after crash ${i}`).toBe(ids[p]);
          }
        }
      } finally {
        await store.close();
      }
    }
    expect(totalAcked).toBeGreaterThan(ITERATIONS);
  });
});
