/**
 * What bounds the work of compaction: the scan also scans the lines saved
 * while it ran (so their superseded lines stay out of the new file), the
 * new file gets its hint (so the next load reads only live lines), and
 * the automatic trigger estimates the keys saved since the last scan (so
 * a file written from empty is not scanned again and again only to find
 * it not worth compacting).
 */
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, renameSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { autoCompactionDue, compactLog, hintOfWinners } from "../../src/file/compaction.js";
import type { ByteSink } from "../../src/file/encode.js";
import { linePrefix } from "../../src/file/format.js";
import { hintFileOf } from "../../src/file/hint.js";
import { hintSpans } from "../../src/file/hint-spans.js";
import { FileStore } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { KeySketch } from "../../src/file/key-sketch.js";
import { NamespaceLog } from "../../src/file/log.js";
import { CATCH_UP_SCAN_MIN_BYTES, writeWinners } from "../../src/file/winners.js";
import { paddedItemSet as set, tempDir } from "./helpers.js";

/** `count` changes over `keys` keys, in batches of 100, starting at change number `from`. */
async function saveMany(store: FileStore, from: number, count: number, keys: number): Promise<void> {
  for (let i = from; i < from + count; i += 100) {
    const batch: ChangeInput[] = [];
    for (let j = i; j < Math.min(i + 100, from + count); j++) batch.push(set(`k${j % keys}`, j));
    await store.save(batch);
  }
}

describe("KeySketch", () => {
  it("estimates distinct keys within 10 %, whatever the repeats", () => {
    const sketch = new KeySketch();
    expect(sketch.estimate()).toBe(0);
    for (let round = 0; round < 3; round++) for (let i = 0; i < 50_000; i++) sketch.add("item", `id-${i}`);
    expect(Math.abs(sketch.estimate() - 50_000)).toBeLessThan(5_000);
    const small = new KeySketch();
    for (let i = 0; i < 300; i++) small.add(i % 2 === 0 ? "a" : "b", String(i % 150));
    // 150 distinct keys: ("a", even ids) and ("b", odd ids).
    expect(Math.abs(small.estimate() - 150)).toBeLessThan(15);
    small.clear();
    expect(small.estimate()).toBe(0);
  });

  it("tells keys apart by type and id", () => {
    const sketch = new KeySketch();
    for (let i = 0; i < 1_000; i++) {
      sketch.add("t", `x${i}`);
      sketch.add("t2", `x${i}`);
    }
    expect(Math.abs(sketch.estimate() - 2_000)).toBeLessThan(200);
  });
});

describe("the compaction's catch-up scan", () => {
  it("scans lines saved after the snapshot and writes only the winners of both", async () => {
    const directory = tempDir();
    const store = await FileStore.open({ directory, autoCompact: false });
    // Enough bytes after the snapshot for a catch-up round (at least CATCH_UP_SCAN_MIN_BYTES).
    await saveMany(store, 0, 6_000, 100);
    const file = store.fileOf("ws");
    const snapshot = statSync(file).size;
    await saveMany(store, 6_000, 6_000, 150);
    const full = statSync(file).size;
    expect(full - snapshot).toBeGreaterThan(CATCH_UP_SCAN_MIN_BYTES);
    const expected = await store.load("ws");
    await store.close();

    const fd = openSync(file, "r");
    const temp = `${directory}/out.tmp`;
    let asked = 0;
    try {
      const result = await writeWinners(
        {
          fd,
          size: snapshot,
          ctx: { file, namespace: "ws", prefix: linePrefix("ws"), skip: false, chunkBytes: 64 * 1024 },
          temp,
          expiredBefore: Number.NEGATIVE_INFINITY,
          worth: undefined,
          yielding: false,
          crashAt: undefined,
          catchUpRounds: 3,
        },
        async () => {
          asked++;
          return full;
        },
      );
      // One round reads up to `full`; the next finds nothing new and ends the rounds.
      expect(asked).toBe(2);
      expect(result.completeBytes).toBe(full);
      expect(result.lines).toBe(12_000);
      expect(result.kept).toBe(150);
      const lines = readFileSync(temp, "utf8").split("\n").filter(Boolean);
      expect(lines).toHaveLength(150);
      expect(result.keptBytes).toBe(statSync(temp).size);
      expect(Array.from(result.keptLengths ?? [])).toEqual(lines.map((l) => Buffer.byteLength(l)));
      // The new file's hint: its span checksums, made as the lines were written, hold for the temp file.
      const hint = hintOfWinners(result.keptLengths ?? new Uint32Array(), result.keptSpans);
      expect(hint.spans?.first.length).toBeGreaterThan(0);
      const tempFd = openSync(temp, "r");
      try {
        const readBack = await hintSpans(tempFd, "ws", { ...hint, spans: undefined });
        expect(Array.from(hint.spans?.crc ?? [])).toEqual(Array.from(readBack?.crc ?? [0]));
      } finally {
        closeSync(tempFd);
      }
      const winners = lines.map((l) => JSON.parse(l) as { entityID: string; entity: { n: number } });
      expect(winners.map((w) => [w.entityID, w.entity.n])).toEqual(
        expected.map((c) => [c.entityId, (c.entity as { n: number }).n]),
      );
    } finally {
      closeSync(fd);
    }
  });

  it("without a size (-1: the file was replaced) it writes the winners of the snapshot", async () => {
    const directory = tempDir();
    const store = await FileStore.open({ directory, autoCompact: false });
    await saveMany(store, 0, 6_000, 100);
    const file = store.fileOf("ws");
    const snapshot = statSync(file).size;
    await saveMany(store, 6_000, 6_000, 150);
    await store.close();
    const fd = openSync(file, "r");
    try {
      const result = await writeWinners(
        {
          fd,
          size: snapshot,
          ctx: { file, namespace: "ws", prefix: linePrefix("ws"), skip: false, chunkBytes: 1 << 20 },
          temp: `${directory}/out.tmp`,
          expiredBefore: Number.NEGATIVE_INFINITY,
          worth: undefined,
          yielding: true,
          crashAt: undefined,
          catchUpRounds: 3,
        },
        async () => -1,
      );
      expect(result).toMatchObject({ completeBytes: snapshot, lines: 6_000, kept: 100 });
    } finally {
      closeSync(fd);
    }
  });
});

describe("the hint of a compacted file", () => {
  it("is written by compact, and the next load reads only the winners through it", async () => {
    const directory = tempDir();
    const options = withInternals({ directory, autoCompact: false }, { hintMinLines: 10 });
    const store = await FileStore.open(options);
    await saveMany(store, 0, 2_000, 50);
    await store.compact("ws");
    expect(existsSync(hintFileOf(store.fileOf("ws")))).toBe(true);
    await saveMany(store, 50, 30, 80); // k50…k79: new keys after the hint's bytes
    const expected = (await store.load("ws")).map((c) => [c.entityId, (c.entity as { n: number }).n]);
    expect(store.stats().hintedLoads).toBe(1);
    await store.close();
    const reopened = await FileStore.open(options);
    const loaded = await reopened.load("ws");
    expect(reopened.stats().hintedLoads).toBe(1);
    expect(loaded.map((c) => [c.entityId, (c.entity as { n: number }).n])).toEqual(expected);
    expect(loaded).toHaveLength(80);
    await reopened.close();
  });

  it("is not written for files of fewer winners than hintMinLines", async () => {
    const store = await FileStore.open(
      withInternals({ directory: tempDir(), autoCompact: false }, { hintMinLines: 100 }),
    );
    await saveMany(store, 0, 500, 50);
    await store.compact("ws");
    expect(existsSync(hintFileOf(store.fileOf("ws")))).toBe(false);
    await store.close();
  });

  it("hintOfWinners lays the winners one after the other", () => {
    const hint = hintOfWinners(Uint32Array.from([3, 0, 5]));
    expect(Array.from(hint.offsets)).toEqual([0, 4, 5]);
    expect(Array.from(hint.lineNumbers)).toEqual([0, 1, 2]);
    expect(hint).toMatchObject({ dataBytes: 11, lines: 3 });
  });
});

describe("the automatic compaction's trigger", () => {
  it("does not scan a file written from empty until it holds ratio lines per key", async () => {
    const store = await FileStore.open({
      directory: tempDir(),
      autoCompact: { minLines: 100, ratio: 4 },
      compactionWorkerMinBytes: Number.POSITIVE_INFINITY,
    });
    // 1,000 distinct keys, then updates: a compaction is worth it past 4,000 lines; the
    // estimate (counted 10 % high) starts one past about 4,400.
    await saveMany(store, 0, 1_000, 1_000);
    await saveMany(store, 1_000, 3_000, 1_000);
    expect(store.stats()).toMatchObject({ mainThreadScans: 0, compactions: 0 });
    await saveMany(store, 4_000, 1_000, 1_000);
    await store.close();
    const stats = store.stats();
    // Without the key estimate, scans at 100, 400 and 1,600 lines would each find it not worth it.
    expect(stats.compactions).toBe(1);
    expect(stats.mainThreadScans).toBe(1);
  });
});

/** An encoder for `NamespaceLog.append` that writes lines already encoded. */
function raw(bytes: Buffer, lines: number): (sink: ByteSink) => number {
  return (sink) => {
    sink.reserve(bytes.length);
    sink.length += bytes.copy(sink.buffer, sink.length);
    return lines;
  };
}

describe("the lines a compaction copies as they are", () => {
  it("count once: the next automatic compaction waits for ratio − 1 new lines per key after them", async () => {
    const directory = tempDir();
    const store = await FileStore.open({ directory, autoCompact: false });
    await saveMany(store, 0, 2_000, 100);
    const file = store.fileOf("ws");
    await store.close();
    // 50 lines saved while the compaction runs (valid lines of the file, as a writer would append them).
    const text = readFileSync(file, "utf8");
    const late = Buffer.from(`${text.trimEnd().split("\n").slice(-50).join("\n")}\n`);
    const log = new NamespaceLog("ws", directory, file, false, false);
    let saving: Promise<void> | undefined;
    const outcome = await compactLog(log, {
      ctx: { file, namespace: "ws", prefix: linePrefix("ws"), skip: false, chunkBytes: 1 << 20 },
      hintMinLines: 1024,
      tombstoneRetentionMs: Number.POSITIVE_INFINITY,
      now: Date.now(),
      workerMinBytes: Number.POSITIVE_INFINITY,
      // Queued under the snapshot's lock: written once it is released, while the winners are found.
      onSnapshot: () => {
        saving = log.append(raw(late, 50));
      },
    });
    await saving;
    expect(outcome).toBe("compacted");
    // Too few bytes for a catch-up scan: the 50 lines were copied after the 100 winners as they are.
    expect(readFileSync(file, "utf8").trimEnd().split("\n")).toHaveLength(150);
    expect(log.stats).toEqual({ lines: 150, keys: 100, carried: 50 });
    const auto = { minLines: 0, ratio: 2 };
    // 90 new lines: 240 in the file, 190 not copied: not yet more than 2 per key (the copied 50 not counted again)…
    expect(autoCompactionDue({ ...log.stats, lines: 240 }, 100, auto)).toBe(false);
    // …101 new lines: due.
    expect(autoCompactionDue({ ...log.stats, lines: 251 }, 100, auto)).toBe(true);
    expect(autoCompactionDue({ lines: 251, keys: 100, carried: 0 }, 100, { minLines: 300, ratio: 2 })).toBe(false);

    // Another process replaces the file: what this one knew of it, the copied lines too, is forgotten.
    const one = late.subarray(0, late.indexOf(10) + 1);
    await log.append(raw(one, 1));
    expect(log.stats).toEqual({ lines: 151, keys: 100, carried: 50 });
    copyFileSync(file, `${file}.other`);
    renameSync(`${file}.other`, file);
    await log.append(raw(one, 1));
    expect(log.stats.carried).toBe(0);
    await log.close();
  });
});
