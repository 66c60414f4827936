/**
 * The read-only scan of a file event store's directory (`scanDirectory`):
 * it decides everything the open decides and changes nothing (no byte, no
 * modification time, no file made or removed, no LOCK file); the open then
 * does what it decided. Reading every line (what `statelog verify` does)
 * decides the same as reading the index files (what the open does).
 */
import { appendFileSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { indexName, segmentName } from "../../src/file/events/format.js";
import { decodeIndex } from "../../src/file/events/index-file.js";
import { type DirectoryScan, FaultKind, RemovedSegment, scanDirectory } from "../../src/file/events/scan.js";
import { FileEventStore } from "../../src/file/index.js";
import { isCorruptionError } from "../../src/index.js";
import { eventLine, filesOf } from "../helpers/event-files.js";
import { tempDir } from "./helpers.js";

const t0 = Date.parse("2024-01-01T00:00:00Z");

/** What an open decides, without what only the way of reading differs in (lines read, the index files' own figures). */
function decisions(scan: DirectoryScan): unknown {
  return {
    snapshot: scan.snapshot?.data.lastGlobal,
    orphans: scan.orphanIndexes,
    next: scan.next,
    events: scan.events,
    streams: [...scan.streams],
    faults: scan.faults,
    segments: scan.segments.map((s) => ({
      name: s.name,
      removed: s.removed,
      good: s.good,
      torn: s.torn,
      indexed: s.indexed,
      kept: s.index?.kept,
      firstEvent: s.firstEvent,
      events: s.events,
    })),
  };
}

/**
 * A closed store of several segments with index files, then everything an
 * open repairs: a torn append after the index of the last segment that
 * holds events (an empty one may follow it), a damaged
 * block in another segment's index, an index file without its segment, an
 * empty segment named inside another one's positions; no LOCK file.
 */
async function needsRepairs(): Promise<{ directory: string; segments: string[]; torn: string; lastSize: number }> {
  const directory = tempDir("statelog-events-scan-");
  {
    await using store = await FileEventStore.open({ directory, segmentBytes: 1_500, sync: "none" });
    await store.append("a", [createEvent("t", { k: 0 }, { timestamp: new Date(t0) })]);
    await store.snapshot();
    for (let i = 0; i < 30; i++) {
      const n = 1 + (i % 3);
      const events = Array.from({ length: n }, (_, k) => createEvent("t", { i, k }, { timestamp: new Date(t0 + i) }));
      await store.append(["a", "b", "c"][i % 3] as string, events);
    }
  }
  rmSync(join(directory, "LOCK"));
  const segments = readdirSync(directory)
    .filter((n) => n.startsWith("segment-"))
    .sort();
  expect(segments.length).toBeGreaterThan(3);
  // The last segment that holds events (the log may have rolled to an empty one after it).
  const torn = segments.filter((n) => statSync(join(directory, n)).size > 0).at(-1) as string;
  const last = join(directory, torn);
  const lastSize = statSync(last).size;
  // A crash tore an append of three events after the index's last block: one whole line of it and part of another.
  const lastG = 1 + [...Array(30).keys()].reduce((sum, i) => sum + 1 + (i % 3), 0);
  appendFileSync(last, `${eventLine(lastG + 1, "a", 99, 3)}${eventLine(lastG + 2, "a", 100).slice(0, 25)}`);
  const second = join(directory, segments[1]?.replace("segment-", "index-").replace(".log", ".idx") as string);
  const index = readFileSync(second);
  index[index.length - 3] = (index[index.length - 3] as number) ^ 0xff;
  writeFileSync(second, index);
  writeFileSync(join(directory, "index-0000000000099999.idx"), readFileSync(second));
  const firstOfSecond = Number(segments[1]?.slice("segment-".length, -".log".length));
  writeFileSync(join(directory, segmentName(firstOfSecond + 1)), "");
  return { directory, segments, torn, lastSize };
}

describe("scanDirectory", () => {
  it("changes no byte and no modification time, and makes no file; the open then does what it decided", async () => {
    const { directory, segments, torn, lastSize } = await needsRepairs();
    const before = filesOf(directory);
    const scan = await scanDirectory(directory, readdirSync(directory));
    const verifying = await scanDirectory(directory, readdirSync(directory), { everyLine: true, allFaults: true });
    expect(filesOf(directory)).toEqual(before);
    expect(readdirSync(directory)).not.toContain("LOCK");

    // What it decided: every repair the open makes.
    expect(scan.faults).toEqual([]);
    expect(scan.orphanIndexes).toEqual(["index-0000000000099999.idx"]);
    const stray = segmentName(Number(segments[1]?.slice("segment-".length, -".log".length)) + 1);
    expect(scan.segments.find((s) => s.name === stray)?.removed).toBe(RemovedSegment.Held);
    const second = scan.segments.find((s) => s.name === segments[1]);
    expect(second?.index?.valid).toBeLessThan(second?.index?.bytes as number);
    expect(second?.index?.kept).toBeLessThan(second?.index?.bytes as number);
    const last = scan.segments.find((s) => s.name === torn);
    expect(last?.torn).toMatchObject({ from: lastSize, batch: { length: 3, whole: 1 } });
    expect(last?.good).toBe(lastSize);
    expect(last?.indexed).toBe(lastSize);
    // Reading every line decides the same as reading the index files.
    expect(decisions(verifying)).toEqual(decisions(scan));
    expect(verifying.lines).toBeGreaterThan(scan.lines);

    await using store = await FileEventStore.open({ directory });
    expect(store.stats().globalPosition).toBe(scan.next - 1);
    expect(store.stats().totalEvents).toBe(scan.events);
    const streams = await store.getStreams();
    expect(streams.map((s) => [s.streamId, s.lastPosition])).toEqual([...scan.streams].map(([id, s]) => [id, s.last]));
    const after = readdirSync(directory);
    expect(after).not.toContain("index-0000000000099999.idx");
    expect(after).not.toContain(stray);
    expect(statSync(join(directory, torn)).size).toBe(last?.good);
    expect(statSync(join(directory, second?.name as string)).size).toBe(second?.good);
    // The index files it cut or did not have are whole again, each covering its segment.
    for (const name of after.filter((n) => n.startsWith("segment-") && statSync(join(directory, n)).size > 0)) {
      const index = readFileSync(join(directory, name.replace("segment-", "index-").replace(".log", ".idx")));
      expect(decodeIndex(index).valid, name).toBe(index.length);
      expect(decodeIndex(index).blocks.at(-1)?.to, name).toBe(statSync(join(directory, name)).size);
    }
  });

  it("a segment whose first event is not at the position its name says: a fault at its first line, from its index file or its lines; the open refuses the store until the file is renamed", async () => {
    const directory = tempDir("statelog-events-scan-");
    {
      await using store = await FileEventStore.open({ directory, segmentBytes: 1_000, sync: "none" });
      for (let i = 0; i < 30; i++) await store.append(["a", "b"][i % 2] as string, [createEvent("t", { i })]);
    }
    const firstOf = (name: string) => Number(name.slice("segment-".length, -".log".length));
    const segments = readdirSync(directory)
      .filter((n) => n.startsWith("segment-") && statSync(join(directory, n)).size > 0)
      .sort();
    expect(segments.length).toBeGreaterThan(3);
    const [, second, third] = segments as [string, string, string];
    const F = firstOf(second);
    expect(firstOf(third)).toBeGreaterThan(F + 1); // F + 1 names no segment
    const readAll = async () => {
      await using store = await FileEventStore.open({ directory });
      return (await store.readTimeRange(new Date(0), new Date(Date.now() + 60_000))).map((e) => e.globalPosition);
    };
    const all = await readAll();
    expect(all).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const refusal = () =>
      FileEventStore.open({ directory }).then(
        async (store) => {
          await store.close();
          return "opened";
        },
        (error: unknown) => (isCorruptionError(error) ? error.message : `not a CorruptionError: ${String(error)}`),
      );

    // Renamed with its index file: the open reads the index (it agrees with the segment), not the lines.
    renameSync(join(directory, second), join(directory, segmentName(F + 1)));
    renameSync(join(directory, indexName(F)), join(directory, indexName(F + 1)));
    const misnamed = {
      kind: FaultKind.Misnamed,
      file: join(directory, segmentName(F + 1)),
      line: 1,
      named: F + 1,
      g: F,
      taken: false,
    };
    const before = filesOf(directory);
    expect((await scanDirectory(directory, readdirSync(directory))).faults).toEqual([misnamed]);
    // Reading every line (what verify does) finds the same.
    const verifying = await scanDirectory(directory, readdirSync(directory), { everyLine: true, allFaults: true });
    expect(verifying.faults).toEqual([misnamed]);
    expect(filesOf(directory)).toEqual(before);
    const message = await refusal();
    expect(message).toContain(
      `${join(directory, segmentName(F + 1))}: its name says its first event is at global position ${F + 1}, it is at ${F}`,
    );
    expect(message).toContain(`rename the file to ${segmentName(F)}`);
    expect(message).not.toMatch(/index-/);

    // Renamed back as told (its index file left under the wrong name): the store opens and reads every event.
    renameSync(join(directory, segmentName(F + 1)), join(directory, second));
    expect(await readAll()).toEqual(all);
    expect(readdirSync(directory)).not.toContain(indexName(F + 1));

    // Named before its first event, without an index file: found in its lines, before the open reads on.
    const G = firstOf(third);
    rmSync(join(directory, indexName(G)));
    renameSync(join(directory, third), join(directory, segmentName(G - 1)));
    const early = { ...misnamed, file: join(directory, segmentName(G - 1)), named: G - 1, g: G };
    expect((await scanDirectory(directory, readdirSync(directory))).faults).toEqual([early]);
    expect(await refusal()).toContain(`rename the file to ${third}`);
    renameSync(join(directory, segmentName(G - 1)), join(directory, third));
    expect(await readAll()).toEqual(all);
  });

  it("stops at the first fault, or with allFaults reports them all in line order; no sink hears of events after one", async () => {
    const directory = tempDir("statelog-events-scan-");
    // Line 2: a stream that jumps (found once its append is whole); line 3: damaged; line 4: a position that skips one.
    const damaged = eventLine(3, "b", 1).replace('"g":3}', '"g":4}');
    writeFileSync(
      join(directory, segmentName(1)),
      eventLine(1, "a", 1) + eventLine(2, "a", 3) + damaged + eventLine(5, "b", 2) + eventLine(7, "b", 3),
    );
    const file = join(directory, segmentName(1));
    const before = filesOf(directory);
    const first = await scanDirectory(directory, readdirSync(directory));
    expect(first.faults).toEqual([{ kind: FaultKind.StreamJump, file, line: 2, stream: "a", position: 3, after: 1 }]);
    const runs: number[] = [];
    const all = await scanDirectory(directory, readdirSync(directory), {
      allFaults: true,
      sink: { run: (_segment, block) => runs.push(block.g) },
    });
    expect(all.faults.map((f) => [f.kind, "line" in f ? f.line : undefined])).toEqual([
      [FaultKind.StreamJump, 2],
      [FaultKind.Damaged, 3],
      [FaultKind.Position, 5],
    ]);
    // Line 4 follows the damaged line: its position is not held against the lost one's; line 5 skips 6.
    expect(all.faults[2]).toMatchObject({ g: 7, expected: 6 });
    expect(runs).toEqual([]);
    expect(filesOf(directory)).toEqual(before);
  });
});
