/**
 * Kills a compacting process at each step of compaction (the internal
 * option `crashAt`, see src/file/internal.ts): afterwards the namespace holds the old
 * state or the new one (here they differ only by expired tombstones),
 * never less, and the next compaction works and removes the stale temp file.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Change, ChangeInput } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { CompactionStep } from "../../src/file/internal.js";
import { tempDir } from "./helpers.js";
import { spawnChild } from "./spawn.js";

const NOW = Date.parse("2025-06-01T00:00:00Z");
const DAY = 24 * 3600 * 1000;

function summary(changes: Change[]): string[] {
  return changes.map((c) => `${c.entityId}:${c.changeType}:${JSON.stringify(c.entity)}:${c.timestamp.getTime()}`);
}

async function history(dir: string): Promise<{ old: string[]; compacted: string[]; file: string }> {
  const store = await FileStore.open({ directory: dir, autoCompact: false });
  for (let round = 0; round < 6; round++) {
    const batch: ChangeInput[] = [];
    for (let i = 0; i < 40; i++) {
      batch.push({
        namespace: "ws",
        changeType: "set",
        entityType: "item",
        entityId: `e${i}`,
        entity: { round, i },
        timestamp: new Date(NOW - DAY),
      });
    }
    await store.save(batch);
  }
  // Tombstones: old ones expire under a 7-day retention, recent ones stay.
  await store.save([
    { namespace: "ws", changeType: "unset", entityType: "item", entityId: "e1", timestamp: new Date(NOW - 30 * DAY) },
    { namespace: "ws", changeType: "unset", entityType: "item", entityId: "e2", timestamp: new Date(NOW - DAY) },
  ]);
  const old = summary(await store.load("ws"));
  await store.close();
  const compacted = old.filter((s) => !s.startsWith("e1:unset"));
  return { old, compacted, file: store.fileOf("ws") };
}

describe("FileStore compaction crash safety", () => {
  for (const step of Object.values(CompactionStep)) {
    it(`a kill ${step} leaves the old or the new state`, { timeout: 60_000 }, async () => {
      const dir = tempDir();
      const { old, compacted, file } = await history(dir);
      const bytesBefore = readFileSync(file);
      const child = await spawnChild("compact", {
        dir,
        namespace: "ws",
        retentionMs: 7 * DAY,
        now: NOW,
        crashAt: step,
      });
      const { signal } = await child.exited;
      expect(signal, `the child should die at ${step}; stderr: ${child.stderr()}`).toBe("SIGKILL");

      const store = await FileStore.open({ directory: dir, autoCompact: false });
      const after = summary(await store.load("ws"));
      const renamed = step === CompactionStep.AfterRename || step === CompactionStep.AfterDirFsync;
      // Before the rename the file is untouched; after it, it is the compacted one.
      expect(after).toEqual(renamed ? compacted : old);
      if (!renamed) expect(readFileSync(file)).toEqual(bytesBefore);
      else expect(readFileSync(file, "utf8").split("\n")).toHaveLength(compacted.length + 1);
      const temps = () => readdirSync(path.dirname(file)).filter((n) => n.endsWith(".tmp"));
      expect(temps().length).toBe(renamed ? 0 : 1);

      // The store keeps working: saves, and the next compaction (which removes the dead process's temp file).
      await store.save([{ namespace: "ws", changeType: "set", entityType: "item", entityId: "new", entity: 1 }]);
      await store.compact("ws");
      expect(temps()).toEqual([]);
      const final = await store.load("ws");
      expect(final).toHaveLength(old.length + (renamed ? 0 : 1)); // e1's tombstone stays: no retention here
      expect(final.at(-1)?.entityId).toBe("new");
      await store.close();
    });
  }

  it("without a crash the child compacts to the new state", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const { compacted } = await history(dir);
    const child = await spawnChild("compact", { dir, namespace: "ws", retentionMs: 7 * DAY, now: NOW });
    await child.waitFor((l) => l === "done");
    expect((await child.exited).code).toBe(0);
    const store = await FileStore.open({ directory: dir, autoCompact: false });
    expect(summary(await store.load("ws"))).toEqual(compacted);
    await store.close();
  });
});
