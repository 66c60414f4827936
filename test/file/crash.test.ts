/**
 * Crash test: a writer process is SIGKILLed at random moments, again and
 * again on one directory; after each kill the store loads (no corruption,
 * torn tails dropped) and holds every change whose save was acknowledged.
 * STATELOG_CRASH_ITERATIONS raises the number of kills (default 200).
 */
import { describe, expect, it } from "vitest";
import type { Change } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { crashBatch } from "./fixtures/batches.js";
import { tempDir } from "./helpers.js";
import { spawnChild } from "./spawn.js";

const ITERATIONS = Math.max(200, Number(process.env.STATELOG_CRASH_ITERATIONS ?? 0) || 0);

describe("FileStore crash safety", () => {
  it(`loses no acknowledged save across ${ITERATIONS} SIGKILLs of a writer`, { timeout: 900_000 }, async () => {
    const dir = tempDir();
    /** key → seq of the latest acknowledged change of that key. */
    const acked = new Map<string, number>();
    let firstSeq = 1;
    let totalAcks = 0;
    let killedMidSave = 0;
    // The next child boots while the current one runs: startup stays off the critical path.
    let next = spawnChild("crash-writer", { dir });
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const child = await next;
      await child.waitFor((l) => l === "ready");
      child.process.stdin?.write(`${firstSeq}\n`);
      next = spawnChild("crash-writer", { dir });
      await child.waitFor((l) => l.startsWith("saving"));
      await new Promise((r) => setTimeout(r, Math.random() * 60));
      child.process.kill("SIGKILL");
      const { signal } = await child.exited;
      expect(signal, child.stderr()).toBe("SIGKILL");
      let last = firstSeq;
      for (const line of child.lines) {
        const m = /^(ack|saving) (\d+)$/.exec(line);
        if (!m) continue;
        const seq = Number(m[2]);
        last = Math.max(last, seq);
        if (m[1] === "saving") continue;
        for (const c of crashBatch(seq)) acked.set(c.entityId, seq);
        totalAcks++;
      }
      if (child.lines.at(-1)?.startsWith("saving")) killedMidSave++;
      // Seqs only grow: the next child starts past anything this one may have begun writing.
      firstSeq = last + 1;

      const store = await FileStore.open(dir, { unknownEntityTypes: "passthrough", autoCompact: false });
      const loaded = new Map<string, Change>((await store.load("ws")).map((c) => [c.entityId, c]));
      await store.close();
      for (const [key, seq] of acked) {
        const change = loaded.get(key);
        expect(change, `iteration ${iteration}: key ${key} of acknowledged seq ${seq} is missing`).toBeDefined();
        const got = change!.timestamp.getTime();
        expect(got, `iteration ${iteration}: key ${key} went back from seq ${seq}`).toBeGreaterThanOrEqual(seq);
        if (got === seq) {
          const expected = crashBatch(seq)
            .filter((c) => c.entityId === key)
            .at(-1)!;
          expect(change!.changeType).toBe(expected.changeType);
          if (change!.changeType === "set") expect((change!.entity as { seq: number }).seq).toBe(seq);
        }
      }
    }
    const spare = await next;
    spare.process.kill("SIGKILL");
    await spare.exited;
    // The kills did land between saves and in the middle of saves.
    expect(totalAcks).toBeGreaterThan(0);
    expect(killedMidSave).toBeGreaterThan(0);
  });
});
