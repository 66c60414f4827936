/**
 * An OS crash (or power loss) with `sync: "none"` after a roll: the kernel
 * had written back the new segment's directory entry (and the snapshot a
 * roll may come with) but not the last writes to the segment before it,
 * which ends at an earlier append (each group is one `write(2)`), inside
 * the lost one, or in zeros. The library leaves every file
 * here itself; the test only takes back the writes the crash lost, as
 * events-crash.test.ts does for the last segment. The store must reopen,
 * take appends, and reopen again with every event it holds, in order.
 */
import { appendFile, readdir, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createEvent, type RecordedEvent } from "../../src/events/index.js";
import { FileEventStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";

const t0 = Date.parse("2024-01-01T00:00:00Z");
const segmentFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith("segment-")).sort();
const ev = (id: string, i: number) => createEvent("t", { id }, { id, timestamp: new Date(t0 + i) });

/**
 * Events 1–5 in the first segment, then events 6–9 in one more append
 * that fills it, so the log rolls to segment-…10.log (empty); `snapshot`:
 * a snapshot (of position 9) rolls it instead. Then the crash: the first
 * segment loses the 6–9 append whole, or keeps a torn part of it, or ends
 * in zeros where it was (what file systems that write the size before the
 * data leave).
 */
async function crashAfterRoll(snapshot: boolean, cut: "whole" | "torn" | "zeros"): Promise<string> {
  const directory = tempDir("statelog-events-lost-tail-");
  const first = await FileEventStore.open({ directory, sync: "none" });
  await first.append("a", [ev("a1", 1), ev("a2", 2)]);
  await first.append("b", [ev("b1", 3), ev("b2", 4), ev("b3", 5)]);
  await first.close();
  const [sealed] = await segmentFiles(directory);
  const kept = (await stat(join(directory, sealed as string))).size;
  const second = await FileEventStore.open({ directory, sync: "none", segmentBytes: snapshot ? 1 << 20 : kept + 1 });
  await second.append("a", [ev("a3", 6), ev("a4", 7), ev("a5", 8), ev("a6", 9)]);
  if (snapshot) expect((await second.snapshot()).globalPosition).toBe(9);
  await second.close();
  const rolled = `segment-${String(10).padStart(16, "0")}.log`;
  expect(await segmentFiles(directory)).toEqual([sealed, rolled]);
  expect((await stat(join(directory, rolled))).size).toBe(0);
  const file = join(directory, sealed as string);
  const full = (await stat(file)).size;
  await truncate(file, cut === "torn" ? kept + 30 : kept);
  if (cut === "zeros") await appendFile(file, Buffer.alloc(full - kept));
  return directory;
}

const plain = (e: RecordedEvent) => [e.globalPosition, e.streamId, e.position, e.id];

describe("FileEventStore after an OS crash that lost the end of a sealed segment (sync: none)", () => {
  const cases = [
    { snapshot: false, cut: "whole" },
    { snapshot: true, cut: "whole" },
    { snapshot: false, cut: "torn" },
    { snapshot: true, cut: "zeros" },
  ] as const;
  for (const { snapshot, cut } of cases) {
    it(`reopens after the next append, its events in order (${snapshot ? "a snapshot" : "a full segment"} rolled the log; lost append ${cut})`, async () => {
      const directory = await crashAfterRoll(snapshot, cut);
      const store = await FileEventStore.open({ directory, sync: "none" });
      // The lost append's positions follow the events on disk (its stream positions too): the log has no gap.
      const appended = await store.append("a", [ev("late", 10)]);
      expect([appended.globalPosition, appended.firstPosition]).toEqual([6, 3]);
      const live = (await store.readTimeRange(new Date(t0), new Date(t0 + 100))).map(plain);
      await store.close();
      const again = await FileEventStore.open({ directory });
      try {
        const all = (await again.readTimeRange(new Date(t0), new Date(t0 + 100))).map(plain);
        expect(all).toEqual([
          [1, "a", 1, "a1"],
          [2, "a", 2, "a2"],
          [3, "b", 1, "b1"],
          [4, "b", 2, "b2"],
          [5, "b", 3, "b3"],
          [6, "a", 3, "late"],
        ]);
        expect(live).toEqual(all);
        expect((await again.append("b", [ev("later", 11)])).globalPosition).toBe(7);
      } finally {
        await again.close();
      }
    });
  }
});
