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
    /** key → seq and type of the latest acknowledged change of that key. */
    const acked = new Map<string, { seq: number; changeType: string }>();
    let firstSeq = 1;
    let totalAcks = 0;
    let killedMidSave = 0;
    // The next children boot while the current one runs: startup stays off the critical path.
    const booting = [spawnChild("crash-writer", { dir }), spawnChild("crash-writer", { dir })];
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const child = await booting.shift()!;
      await child.waitFor((l) => l === "ready");
      child.process.stdin?.write(`${firstSeq}\n`);
      booting.push(spawnChild("crash-writer", { dir }));
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
        for (const c of crashBatch(seq)) acked.set(c.entityId, { seq, changeType: c.changeType });
        totalAcks++;
      }
      if (child.lines.at(-1)?.startsWith("saving")) killedMidSave++;
      // Seqs only grow: the next child starts past anything this one may have begun writing.
      firstSeq = last + 1;

      const store = await FileStore.open({ directory: dir, autoCompact: false });
      const loaded = new Map<string, Change>((await store.load("ws")).map((c) => [c.entityId, c]));
      await store.close();
      for (const [key, { seq, changeType }] of acked) {
        const change = loaded.get(key);
        if (!change) expect.fail(`iteration ${iteration}: key ${key} of acknowledged seq ${seq} is missing`);
        const got = change.timestamp.getTime();
        if (got < seq) expect.fail(`iteration ${iteration}: key ${key} went back from seq ${seq} to ${got}`);
        if (got === seq) {
          expect(change.changeType).toBe(changeType);
          if (change.changeType === "set") expect((change.entity as { seq: number }).seq).toBe(seq);
        }
      }
    }
    for (const spare of await Promise.all(booting)) {
      spare.process.kill("SIGKILL");
      await spare.exited;
    }
    // The kills did land between saves and in the middle of saves.
    expect(totalAcks).toBeGreaterThan(0);
    expect(killedMidSave).toBeGreaterThan(0);
  });
});
