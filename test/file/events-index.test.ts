/**
 * The file event store's index side files (`index-*.idx`) hold derived data
 * only: deleting one costs speed, never data; a damaged, torn or stale one is
 * detected (checksums, a check against its segment) and rebuilt from the
 * segment at the next open.
 */
import { appendFile, readdir, readFile, stat, truncate, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createEvent, type RecordedEvent } from "../../src/events/index.js";
import { decodeIndex } from "../../src/file/events/index-file.js";
import { FileEventStore } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { isCorruptionError } from "../../src/index.js";
import { tempDir } from "./helpers.js";

const t0 = Date.parse("2024-01-01T00:00:00Z");
const STREAMS = ["a", "b", "c"];
const indexFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith("index-")).sort();
const segmentFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith("segment-")).sort();

/** A store of several segments: appends of 1 to 4 events to three streams. */
async function written(): Promise<string> {
  const directory = tempDir("statelog-events-index-");
  const store = await FileEventStore.open({ directory, segmentBytes: 2_000, sync: "none" });
  for (let i = 0; i < 40; i++) {
    const n = 1 + (i % 4);
    await store.append(
      STREAMS[i % 3] as string,
      Array.from({ length: n }, (_, k) =>
        createEvent("t", { i, k, text: "x".repeat(i % 7) }, { id: `e${i}-${k}`, timestamp: new Date(t0 + i) }),
      ),
    );
  }
  await store.close();
  return directory;
}

/** Everything a reader sees: each stream's events and the global order. */
async function contents(directory: string): Promise<unknown> {
  const store = await FileEventStore.open({ directory });
  try {
    const plain = (e: RecordedEvent) => [e.globalPosition, e.streamId, e.position, e.id, e.data, e.timestamp.getTime()];
    const streams: Record<string, unknown[]> = {};
    for (const s of STREAMS) streams[s] = (await store.readStream(s)).map(plain);
    const all = (await store.readTimeRange(new Date(t0), new Date(t0 + 1_000))).map(plain);
    return { streams, all, stats: store.stats(), infos: await store.getStreams() };
  } finally {
    await store.close();
  }
}

/** Each index file decodes whole and covers its segment byte for byte. */
async function expectWholeIndexes(directory: string): Promise<void> {
  const segments = await segmentFiles(directory);
  expect(await indexFiles(directory)).toEqual(
    segments.map((s) => s.replace("segment-", "index-").replace(".log", ".idx")),
  );
  for (const s of segments) {
    const buf = await readFile(join(directory, s.replace("segment-", "index-").replace(".log", ".idx")));
    const { blocks, valid } = decodeIndex(buf);
    expect(valid).toBe(buf.length);
    expect(blocks.at(-1)?.to).toBe((await stat(join(directory, s))).size);
  }
}

describe("FileEventStore index side files", () => {
  it("a closed store has an index file per segment, covering it whole", async () => {
    const directory = await written();
    expect((await segmentFiles(directory)).length).toBeGreaterThan(3);
    await expectWholeIndexes(directory);
  });

  it("deleting the index files loses nothing: the next open scans the segments and writes them again", async () => {
    const directory = await written();
    const before = await contents(directory);
    for (const f of await indexFiles(directory)) await unlink(join(directory, f));
    expect(await contents(directory)).toEqual(before);
    await expectWholeIndexes(directory);
  });

  it("a damaged block (checksum) is detected: the segment is scanned from there and the file rewritten", async () => {
    const directory = await written();
    const before = await contents(directory);
    for (const f of await indexFiles(directory)) {
      const buf = await readFile(join(directory, f));
      const at = buf.length - 20;
      buf[at] = (buf[at] as number) ^ 0xff;
      await writeFile(join(directory, f), buf);
    }
    expect(await contents(directory)).toEqual(before);
    await expectWholeIndexes(directory);
  });

  it("a torn last block (a crash during its write) is cut off and written again", async () => {
    const directory = await written();
    const before = await contents(directory);
    const [first] = await indexFiles(directory);
    const file = join(directory, first as string);
    await truncate(file, (await stat(file)).size - 7);
    expect(await contents(directory)).toEqual(before);
    await expectWholeIndexes(directory);
  });

  it("an index file of garbage, or one that says more than its segment holds, is rebuilt", async () => {
    const directory = await written();
    const before = await contents(directory);
    const [first, second] = await indexFiles(directory);
    await writeFile(join(directory, first as string), "not an index at all");
    // The second segment's index given to the third: its blocks do not match that segment.
    const third = (await indexFiles(directory))[2] as string;
    await writeFile(join(directory, third), await readFile(join(directory, second as string)));
    expect(await contents(directory)).toEqual(before);
    await expectWholeIndexes(directory);
  });

  it("the last segment's lines after its last block are scanned (what a crash leaves) and indexed", async () => {
    const directory = await written();
    const before = await contents(directory);
    const last = (await indexFiles(directory)).at(-1) as string;
    const buf = await readFile(join(directory, last));
    const { ends } = decodeIndex(buf);
    // Keep all but the last block: as if the process died before writing it.
    await writeFile(join(directory, last), buf.subarray(0, ends.length > 1 ? (ends.at(-2) as number) : 8));
    expect(await contents(directory)).toEqual(before);
    await expectWholeIndexes(directory);
  });

  it("a segment as long as its index but modified after it (edited by hand) is scanned again; with its modification time kept, it is not", async () => {
    const directory = await written();
    const first = (await segmentFiles(directory))[0] as string;
    const file = join(directory, first);
    const { atime, mtimeMs } = await stat(file);
    // A same-length edit that breaks a line's checksum: only a scan of the segment sees it.
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace('"text":"', '"text":"'.toUpperCase()));
    // The modification time it had (as a copy that keeps times gives it): the index is trusted.
    await utimes(file, atime, mtimeMs / 1000); // seconds as a number: the time as it was, below the millisecond
    const trusted = await FileEventStore.open({ directory });
    await trusted.close();
    // A millisecond later (an edit right after a close) or seconds later (by hand): the open scans the segment and
    // finds the damaged line.
    for (const laterMs of [1, 5_000]) {
      await utimes(file, atime, (mtimeMs + laterMs) / 1000);
      await expect(FileEventStore.open({ directory })).rejects.toSatisfy(isCorruptionError);
    }
  });

  it("a torn batch cut off where the index ends: the index's last block takes the segment's new time and is trusted at the next open", async () => {
    const directory = await written();
    const segment = join(directory, (await segmentFiles(directory)).at(-1) as string);
    const index = join(directory, (await indexFiles(directory)).at(-1) as string);
    const before = await contents(directory);
    // The index covers the segment whole (a close, or a snapshot, wrote it); then a crash tore a batch after it.
    await appendFile(segment, '{"v":2,"g":999,"s":"a","p":9');
    expect(await contents(directory)).toEqual(before); // the open cuts the torn batch off
    const cut = await readFile(index);
    expect(decodeIndex(cut).blocks.at(-1)?.mtime).toBe(String((await stat(segment)).mtimeMs));
    await expectWholeIndexes(directory);
    // The next open uses the index as it is: no scan writes it again.
    expect(await contents(directory)).toEqual(before);
    expect(await readFile(index)).toEqual(cut);
  });

  it("an empty segment whose name claims events another segment holds is passed over and removed", async () => {
    const directory = await written();
    const before = await contents(directory);
    const segments = await segmentFiles(directory);
    const firstOf = (name: string) => Number(name.slice("segment-".length, -".log".length));
    // What a roll leaves when its new segment could neither be made durable nor removed, while the appends went on
    // in the segment before it: one inside the first segment's positions, one inside the last's (then the last file).
    const strays = [firstOf(segments[0] as string) + 1, firstOf(segments.at(-1) as string) + 1].map(
      (g) => `segment-${String(g).padStart(16, "0")}.log`,
    );
    expect(strays.some((f) => segments.includes(f))).toBe(false);
    expect(strays[0]?.length).toBe(segments[0]?.length);
    for (const f of strays) await writeFile(join(directory, f), "");
    expect(await contents(directory)).toEqual(before);
    expect(await segmentFiles(directory)).toEqual(segments);
    // Appends go on where they belong, and a reopen finds them.
    const store = await FileEventStore.open({ directory });
    await store.append("a", [createEvent("t", { after: true }, { id: "after", timestamp: new Date(t0 + 500) })]);
    await store.close();
    const after = (await contents(directory)) as { streams: Record<string, unknown[][]> };
    expect(after.streams.a?.at(-1)?.[3]).toBe("after");
    await expectWholeIndexes(directory);
  });

  it("an empty last segment named past the next position is removed: the next append follows the last event", async () => {
    const directory = await written();
    const before = (await contents(directory)) as { all: unknown[][] };
    const next = (before.all.at(-1)?.[0] as number) + 1;
    // A roll that worked, then an OS crash that cut the segment before it short (sync: "none"): its name is past the end.
    const named = `segment-${String(next + 4).padStart(16, "0")}.log`;
    await writeFile(join(directory, named), "");
    const store = await FileEventStore.open({ directory });
    const appended = await store.append("a", [
      createEvent("t", { late: true }, { id: "late", timestamp: new Date(t0 + 600) }),
    ]);
    await store.close();
    expect(appended.globalPosition).toBe(next);
    expect(await segmentFiles(directory)).not.toContain(named);
    // An append into that file would have followed a gap no later open loads across.
    const after = (await contents(directory)) as { all: unknown[][] };
    expect(after.all).toEqual([...before.all, [next, "a", expect.any(Number), "late", { late: true }, t0 + 600]]);
    await expectWholeIndexes(directory);
  });

  it("an index file without its segment is removed at open", async () => {
    const directory = await written();
    const orphan = join(directory, "index-0000000000099999.idx");
    await writeFile(orphan, await readFile(join(directory, (await indexFiles(directory))[0] as string)));
    const before = await contents(directory);
    expect(await indexFiles(directory)).not.toContain("index-0000000000099999.idx");
    expect(await contents(directory)).toEqual(before);
  });
});

describe("FileEventStore index rebuilt in small reads (internal option rebuildReadBytes)", () => {
  const openWith = (directory: string, rebuildReadBytes: number) =>
    FileEventStore.open(withInternals({ directory }, { rebuildReadBytes }));
  const dropIndexes = async (directory: string) => {
    for (const f of await indexFiles(directory)) await unlink(join(directory, f));
  };

  it("batches across reads: the same events and whole index files, whatever the read size", async () => {
    const directory = await written();
    const before = await contents(directory);
    for (const bytes of [1, 50, 333, 4096]) {
      await dropIndexes(directory);
      await (await openWith(directory, bytes)).close();
      await expectWholeIndexes(directory);
      expect(await contents(directory)).toEqual(before);
    }
  });

  it("a torn last batch is dropped and cut off when its lines lie across reads", async () => {
    const directory = await written();
    const before = await contents(directory);
    const last = join(directory, (await segmentFiles(directory)).at(-1) as string);
    const size = (await stat(last)).size;
    // One more append of three events into the last segment, then its last two lines lost (a crash mid-write).
    const store = await FileEventStore.open({ directory, segmentBytes: 1_000_000, sync: "none" });
    await store.append(
      "a",
      Array.from({ length: 3 }, (_, k) => createEvent("t", { k, text: "y".repeat(150) }, { timestamp: new Date(t0) })),
    );
    await store.close();
    const text = await readFile(last, "utf8");
    const lines = text.slice(size).trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    await writeFile(last, `${text.slice(0, size)}${lines[0]}\n`);
    await dropIndexes(directory);
    await (await openWith(directory, 64)).close();
    expect((await stat(last)).size).toBe(size);
    expect(await contents(directory)).toEqual(before);
  });

  it("a damaged line is reported with its own line number when it lies in a later read", async () => {
    const directory = await written();
    const first = join(directory, (await segmentFiles(directory))[0] as string);
    const lines = (await readFile(first, "utf8")).split("\n");
    expect(lines.length).toBeGreaterThan(8);
    lines[6] = (lines[6] as string).replace('"i":', '"j":');
    await writeFile(first, lines.join("\n"));
    await dropIndexes(directory);
    const error = await openWith(directory, 100).catch((e: unknown) => e);
    expect(isCorruptionError(error)).toBe(true);
    expect(error).toMatchObject({ line: 7 });
  });

  it("the read size is an internal option: FileEventStore.open refuses a bad one", async () => {
    await expect(openWith(tempDir(), 0)).rejects.toThrow(/rebuildReadBytes/);
  });
});
