/**
 * Hint files (src/file/hint.ts): derived data only. A load writes one
 * after reading many superseded lines; the next load reads the winners it
 * names. Deleting, damaging or outdating a hint costs a full read, never
 * data, and the hint is rebuilt.
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { Change, ChangeInput } from "../../src/core/change.js";
import { linePrefix } from "../../src/file/format.js";
import { type Hint, hintFileOf, readHint, writeHint } from "../../src/file/hint.js";
import { type HintSpans, hintSpans, SpanChecksums, spanBytes, spanEnd } from "../../src/file/hint-spans.js";
import { hintOf, resolveInTwoPasses } from "../../src/file/hinted-read.js";
import { FileStore, type FileStoreOptions } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { appendLineCrc } from "../../src/file/lines.js";
import { readAndResolve } from "../../src/file/reader.js";
import { tempDir } from "./helpers.js";

const NS = "ws";

const set = (id: string, entity: unknown): ChangeInput => ({
  namespace: NS,
  changeType: "set",
  entityType: "item",
  entityId: id,
  entity,
  timestamp: new Date(Date.UTC(2025, 0, 1)),
});

const open = (directory: string, options: Partial<FileStoreOptions> = {}): Promise<FileStore> =>
  FileStore.open(withInternals({ directory, autoCompact: false, ...options }, { hintMinLines: 10 }));

/** A store whose namespace holds `keys` keys, each written `versions` times (the last one wins), one deleted. */
async function history(keys = 20, versions = 5): Promise<{ dir: string; file: string }> {
  const dir = tempDir();
  const store = await open(dir);
  for (let v = 0; v < versions; v++) {
    await store.save(Array.from({ length: keys }, (_, k) => set(`k${k}`, { k, v, pad: "x".repeat(k * 7) })));
  }
  await store.save([{ namespace: NS, changeType: "unset", entityType: "item", entityId: "k3" }]);
  const file = store.fileOf(NS);
  await store.close();
  return { dir, file };
}

/** Loads in a new store; `stats` tells whether the load read a hint and whether it wrote one. */
const last = { hinted: 0, written: 0 };
async function load(dir: string): Promise<Change[]> {
  const store = await open(dir);
  try {
    return await store.load(NS);
  } finally {
    last.hinted = store.stats().hintedLoads;
    last.written = store.stats().hintsWritten;
    await store.close();
  }
}

/** Saves `change` in a store of its own, then loads in a new one (see {@link load}). */
async function saveThenLoad(dir: string, change: ChangeInput): Promise<Change[]> {
  const store = await open(dir);
  await store.save([change]);
  await store.close();
  return load(dir);
}

/** A load in a new store rejects with a CorruptionError naming 1-based line `line`. */
async function expectCorruptLine(dir: string, line: number): Promise<void> {
  const store = await open(dir);
  try {
    await expect(store.load(NS)).rejects.toMatchObject({ code: "STATELOG_CORRUPTION", line });
  } finally {
    await store.close();
  }
}

const shape = (changes: Change[]) =>
  changes.map((c) => [c.changeType, c.entityId, JSON.stringify(c.entity ?? null), c.timestamp.toISOString()]);

/** `b` with the byte at `at` changed. */
function flip(b: Buffer, at: number): Buffer {
  b[at] = (b[at] as number) ^ 0x55;
  return b;
}

/** The 0-based number of the line holding byte `at` of `text`. */
function lineAt(text: Buffer, at: number): number {
  let n = 0;
  for (let i = text.indexOf(10); i >= 0 && i < at; i = text.indexOf(10, i + 1)) n++;
  return n;
}

/** The spans a load reads of `hint`'s winners, with the CRC-32 of the bytes of each in `file` as it is (nothing checked). */
function spansOver(file: string, hint: Hint): HintSpans {
  const text = readFileSync(file);
  const first: number[] = [];
  const crc: number[] = [];
  for (let w = 0; w < hint.offsets.length; ) {
    const k = spanEnd(hint.offsets, hint.lengths, w);
    const [from, end] = spanBytes(hint.offsets, hint.lengths, w, k);
    first.push(w);
    crc.push(crc32(text.subarray(from, end)));
    w = k;
  }
  return { first: Uint32Array.from(first), crc: Uint32Array.from(crc) };
}

/** Rewrites the hint file `hintFile` as version 1 wrote it: no span columns, no `spans` in the header. */
function toVersion1(hintFile: string): void {
  const bytes = readFileSync(hintFile);
  const nl = bytes.indexOf(10);
  const { spans, ...header } = JSON.parse(bytes.toString("utf8", 0, nl));
  const table = bytes.subarray(nl + 1, nl + 1 + header.winners * 16);
  expect(bytes.length).toBe(nl + 1 + header.winners * 16 + spans * 8);
  const v1 = { ...header, version: 1, tableCrc: crc32(table).toString(16).padStart(8, "0") };
  writeFileSync(hintFile, Buffer.concat([Buffer.from(`${JSON.stringify(v1)}\n`), table]));
}

function hintOfFile(file: string) {
  const fd = openSync(file, "r");
  try {
    const st = fstatSync(fd);
    return readHint(file, NS, fd, { size: st.size, ino: st.ino, dev: st.dev });
  } finally {
    closeSync(fd);
  }
}

describe("hint files", () => {
  it("a load of a long history writes a hint; the next load reads it and returns the same state", async () => {
    const { dir, file } = await history();
    const hint = hintFileOf(file);
    expect(existsSync(hint)).toBe(false);
    const first = await load(dir);
    expect(last).toEqual({ hinted: 0, written: 1 });
    expect(existsSync(hint)).toBe(true);
    const h = hintOfFile(file);
    expect(h?.offsets.length).toBe(20);
    expect(h?.lines).toBe(101);
    expect(h?.dataBytes).toBe(statSync(file).size);
    const second = await load(dir);
    expect(last).toEqual({ hinted: 1, written: 0 });
    expect(shape(second)).toEqual(shape(first));
    expect(first.find((c) => c.entityId === "k5")?.entity).toEqual({ k: 5, v: 4, pad: "x".repeat(35) });
    expect(first.find((c) => c.entityId === "k3")?.changeType).toBe("unset");
    // The hint's first line is JSON a person (or jq) can read.
    const header = JSON.parse(readFileSync(hint).subarray(0, readFileSync(hint).indexOf(10)).toString());
    expect(header).toMatchObject({ format: "statelog-hint", namespace: NS, winners: 20, lines: 101 });
  });

  it("a full read, in two passes, computes span checksums equal to those of the winners read back, and the state of a read at once", async () => {
    for (const readChunkBytes of [7, 256, 4096, 1 << 20]) {
      const { dir, file } = await history(60, 4);
      // Small chunks: lines and spans run over several of them.
      const store = await FileStore.open(
        withInternals({ directory: dir, autoCompact: false }, { hintMinLines: 10, readChunkBytes }),
      );
      await store.load(NS);
      expect(store.stats().hintsWritten).toBe(1);
      await store.close();
      const h = hintOfFile(file);
      if (!h?.spans) throw new Error("no hint with span checksums");
      const fd = openSync(file, "r");
      try {
        // What the read makes of the file: its hint has span checksums before any is read back.
        const ctx = { file, namespace: NS, prefix: linePrefix(NS), skip: false, chunkBytes: readChunkBytes };
        const size = fstatSync(fd).size;
        const twoPasses = await resolveInTwoPasses(fd, size, ctx, true);
        if (!twoPasses) throw new Error("the read in two passes gave up");
        expect(twoPasses.spans).toBeDefined();
        expect(hintOf(twoPasses, size).spans).toEqual(twoPasses.spans);
        expect(Array.from(twoPasses.spans?.crc ?? [])).toEqual(Array.from(h.spans.crc));
        const readBack = await hintSpans(fd, NS, { ...h, spans: undefined });
        expect(readBack).toBeDefined();
        expect(Array.from(h.spans.first)).toEqual(Array.from(readBack?.first ?? []));
        expect(Array.from(h.spans.crc)).toEqual(Array.from(readBack?.crc ?? []));
        // The same state as a read of the whole file at once (which holds every chunk).
        const atOnce = await readAndResolve(fd, size, ctx, true);
        expect(shape(twoPasses.decoded)).toEqual(shape(atOnce.decoded));
        expect(twoPasses.scan.lines).toBe(atOnce.scan.lines);
        expect(Array.from(twoPasses.scan.winners)).toEqual(Array.from(atOnce.scan.winners));
      } finally {
        closeSync(fd);
      }
    }
  });

  it("a full read gives up its two passes on a damaged line: the read at once reports it, or skips it", async () => {
    const { dir, file } = await history(60, 4);
    const lines = readFileSync(file, "utf8").split("\n");
    lines[70] = (lines[70] as string).replace('"v":1', '"v":7'); // a superseded line: its checksum no longer holds
    writeFileSync(file, lines.join("\n"));
    const fd = openSync(file, "r");
    try {
      const ctx = { file, namespace: NS, prefix: linePrefix(NS), skip: true, chunkBytes: 1 << 20 };
      expect(await resolveInTwoPasses(fd, fstatSync(fd).size, ctx, true)).toBeUndefined();
    } finally {
      closeSync(fd);
    }
    await expectCorruptLine(dir, 71);
    const reported: number[][] = [];
    const skipping = await open(dir, { onCorruption: "skip", onSkippedLines: (r) => reported.push(r.lines) });
    try {
      expect(await skipping.load(NS)).toHaveLength(60);
      expect(reported).toEqual([[71]]);
      expect(skipping.stats().hintsWritten).toBe(0);
    } finally {
      await skipping.close();
    }
  });

  it("a file whose lines end in \\r\\n loads through its hint as in a full read", async () => {
    const { dir, file } = await history(40, 5);
    const expected = shape(await load(dir));
    unlinkSync(hintFileOf(file));
    writeFileSync(file, readFileSync(file, "utf8").replaceAll("\n", "\r\n"));
    expect(shape(await load(dir))).toEqual(expected);
    expect(last).toEqual({ hinted: 0, written: 1 });
    // Every span's last line ends in `\r\n`: the load reads the `\n` after the span's bytes to see a whole line.
    expect(shape(await load(dir))).toEqual(expected);
    expect(last).toEqual({ hinted: 1, written: 0 });
  });

  it("a superseded line damaged in place after the hint was written is still found (the fingerprint changed)", async () => {
    const { dir, file } = await history();
    await load(dir);
    const h = hintOfFile(file);
    if (!h) throw new Error("no hint");
    // Line 1 (k1's first version) is superseded: not named by the hint.
    expect(Array.from(h.lineNumbers)).not.toContain(1);
    const text = readFileSync(file);
    const start = text.indexOf(10) + 1;
    const fd = openSync(file, "r+");
    writeSync(fd, "#", start + 60);
    closeSync(fd);
    expect(hintOfFile(file)).toBeUndefined();
    await expectCorruptLine(dir, 2);
  });

  it("deleting the hint costs a full read, never data, and the hint is written again", async () => {
    const { dir, file } = await history();
    const expected = shape(await load(dir));
    const good = readFileSync(hintFileOf(file));
    unlinkSync(hintFileOf(file));
    expect(shape(await load(dir))).toEqual(expected);
    expect(last).toEqual({ hinted: 0, written: 1 });
    expect(readFileSync(hintFileOf(file))).toEqual(good);
  });

  it.each([
    ["a flipped byte in the table", (b: Buffer) => flip(b, b.length - 3)],
    ["a cut-off table", (b: Buffer) => b.subarray(0, b.length - 5)],
    ["a damaged header", (b: Buffer) => flip(b, 2)],
    ["zeros (a crash before write-back)", (b: Buffer) => Buffer.alloc(b.length)],
    ["an empty file", () => Buffer.alloc(0)],
  ])("a hint with %s is detected and rebuilt", async (_, damage) => {
    const { dir, file } = await history();
    const expected = shape(await load(dir));
    const good = readFileSync(hintFileOf(file));
    writeFileSync(hintFileOf(file), damage(Buffer.from(good)));
    expect(hintOfFile(file)).toBeUndefined();
    expect(shape(await load(dir))).toEqual(expected);
    expect(last).toEqual({ hinted: 0, written: 1 });
    expect(readFileSync(hintFileOf(file))).toEqual(good);
  });

  it("a hint that names the wrong lines (valid checksums) is refused and the file read in full", async () => {
    const { dir, file } = await history();
    const expected = shape(await load(dir));
    const h = hintOfFile(file);
    if (!h) throw new Error("no hint");
    const fd = openSync(file, "r");
    const st = fstatSync(fd);
    // Each winner shifted by one byte: not a line start any more.
    const offsets = h.offsets.map((o) => o + 1);
    // A store never writes such a hint: each winner is checked first.
    expect(await writeHint(file, NS, fd, st, { ...h, offsets, spans: undefined })).toBe(false);
    // Written anyway, with span checksums that hold for the bytes it names.
    expect(await writeHint(file, NS, fd, st, { ...h, offsets, spans: spansOver(file, { ...h, offsets }) })).toBe(true);
    closeSync(fd);
    expect(hintOfFile(file)).toBeDefined();
    expect(shape(await load(dir))).toEqual(expected);
    expect(last).toEqual({ hinted: 0, written: 1 });
    expect(hintOfFile(file)?.offsets).toEqual(h.offsets);
  });

  it("lines appended after the hint are read too (a save in between, by any store)", async () => {
    const { dir, file } = await history();
    await load(dir);
    const store = await open(dir);
    await store.save([set("k1", { late: true }), set("new", { n: 1 })]);
    await store.save([{ namespace: NS, changeType: "unset", entityType: "item", entityId: "k2" }]);
    await store.close();
    const changes = await load(dir);
    expect(last.hinted).toBe(1);
    expect(changes.find((c) => c.entityId === "k1")?.entity).toEqual({ late: true });
    expect(changes.find((c) => c.entityId === "new")?.entity).toEqual({ n: 1 });
    expect(changes.find((c) => c.entityId === "k2")?.changeType).toBe("unset");
    expect(changes.length).toBe(21);
    // In the order the winning lines were written, as without a hint.
    expect(changes.slice(-3).map((c) => c.entityId)).toEqual(["k1", "new", "k2"]);
    unlinkSync(hintFileOf(file));
    expect(shape(await load(dir))).toEqual(shape(changes));
  });

  it("a hint of another file (replaced by hand, or compacted) is refused", async () => {
    const { dir, file } = await history();
    await load(dir);
    const hint = readFileSync(hintFileOf(file));
    // A person rewrites the file (new inode): keep only k0's last line.
    const kept = readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes('"entityID":"k0"'))
      .slice(-1);
    writeFileSync(`${file}.new`, `${kept.join("\n")}\n`);
    renameSync(`${file}.new`, file);
    writeFileSync(hintFileOf(file), hint);
    const changes = await load(dir);
    expect(changes.map((c) => c.entityId)).toEqual(["k0"]);
  });

  it("compaction replaces the hint of the file it replaces by the new file's; loads of the compacted file agree", async () => {
    const { dir, file } = await history();
    const expected = shape(await load(dir));
    expect(existsSync(hintFileOf(file))).toBe(true);
    const oldIno = statSync(file).ino;
    const store = await open(dir);
    await store.compact(NS);
    await store.close();
    // The old file's hint is gone: the one there now names the compacted file.
    const header = JSON.parse(readFileSync(hintFileOf(file), "utf8").split("\n")[0] as string) as { ino: number };
    expect(header.ino).not.toBe(oldIno);
    expect(header.ino).toBe(statSync(file).ino);
    expect(shape(await load(dir))).toEqual(expected);
  });

  it("compaction computes the new hint's span checksums as it writes: they equal those of its winners read back", async () => {
    const dir = tempDir();
    const store = await open(dir);
    // ~3 MB of winners: several spans.
    for (let v = 0; v < 2; v++) {
      await store.save(Array.from({ length: 300 }, (_, k) => set(`k${k}`, { k, v, pad: "y".repeat(10_000 + k) })));
    }
    await store.compact(NS);
    const file = store.fileOf(NS);
    await store.close();
    const h = hintOfFile(file);
    if (!h?.spans) throw new Error("no hint with span checksums");
    expect(h.spans.first.length).toBeGreaterThan(2);
    const fd = openSync(file, "r");
    try {
      const readBack = await hintSpans(fd, NS, { ...h, spans: undefined });
      expect(Array.from(h.spans.first)).toEqual(Array.from(readBack?.first ?? []));
      expect(Array.from(h.spans.crc)).toEqual(Array.from(readBack?.crc ?? []));
    } finally {
      closeSync(fd);
    }
    expect((await load(dir)).length).toBe(300);
    expect(last.hinted).toBe(1);
  });

  it("SpanChecksums makes of lines written one after another the spans spanEnd makes, with their checksums", () => {
    let seed = 7;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (const maxLine of [40, 9_000, 300_000, 1_500_000]) {
      const lines = Array.from({ length: 120 }, () => Buffer.alloc(1 + Math.floor(next() * maxLine), 97));
      const text = Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")]));
      const sums = new SpanChecksums();
      const offsets = new Float64Array(lines.length);
      const lengths = new Uint32Array(lines.length);
      let at = 0;
      lines.forEach((l, i) => {
        offsets[i] = at;
        lengths[i] = l.length;
        sums.add(text, at, at + l.length + 1);
        at += l.length + 1;
      });
      const got = sums.finish();
      const first: number[] = [];
      const crc: number[] = [];
      for (let w = 0; w < lines.length; ) {
        const k = spanEnd(offsets, lengths, w);
        const [from, end] = spanBytes(offsets, lengths, w, k);
        first.push(w);
        crc.push(crc32(text.subarray(from, end)));
        w = k;
      }
      expect(Array.from(got.first)).toEqual(first);
      expect(Array.from(got.crc)).toEqual(crc);
    }
    expect(new SpanChecksums().finish().first.length).toBe(0);
  });

  it("a damaged winner named by the hint is reported as without a hint (line number included)", async () => {
    const { dir, file } = await history();
    await load(dir);
    const h = hintOfFile(file);
    if (!h) throw new Error("no hint");
    // Damage the entity of the last winner in place: its checksum no longer matches.
    const w = h.offsets.length - 1;
    const fd = openSync(file, "r+");
    writeSync(fd, "#", (h.offsets[w] as number) + (h.lengths[w] as number) - 40);
    closeSync(fd);
    await expectCorruptLine(dir, (h.lineNumbers[w] as number) + 1);
  });

  it("a winner changed in place that still decodes (a digit of its entity) is reported by its checksum", async () => {
    const { dir, file } = await history();
    await load(dir);
    const h = hintOfFile(file);
    if (!h) throw new Error("no hint");
    const w = 5;
    const at = h.offsets[w] as number;
    const line = readFileSync(file).toString("utf8", at, at + (h.lengths[w] as number));
    const digit = line.indexOf('"v":4') + 4;
    expect(digit).toBeGreaterThan(4);
    const before = spansOver(file, h);
    const fd = openSync(file, "r+");
    writeSync(fd, "7", at + digit);
    // A hint is not written over a winner that fails its checksum; the old one's fingerprint no longer holds.
    expect(await writeHint(file, NS, fd, fstatSync(fd), { ...h, spans: undefined })).toBe(false);
    expect(hintOfFile(file)).toBeUndefined();
    await expectCorruptLine(dir, (h.lineNumbers[w] as number) + 1);
    // A hint that holds for the file as it is now but whose span checksums are from before: its span is refused.
    expect(await writeHint(file, NS, fd, fstatSync(fd), { ...h, spans: before })).toBe(true);
    expect(hintOfFile(file)?.spans).toBeDefined();
    await expectCorruptLine(dir, (h.lineNumbers[w] as number) + 1);
    // A hint of version 1 (no span checksums): the winner's own checksum reports it.
    toVersion1(hintFileOf(file));
    expect(hintOfFile(file)?.spans).toBeUndefined();
    expect(hintOfFile(file)?.offsets).toEqual(h.offsets);
    await expectCorruptLine(dir, (h.lineNumbers[w] as number) + 1);
    closeSync(fd);
  });

  it("a superseded line inside a span, damaged where the fingerprint does not look, is found by the span's checksum", async () => {
    const dir = tempDir();
    const store = await open(dir);
    // Every key twice, the odd ones a third time: the even keys' winners lie between superseded lines of odd keys.
    const keys = Array.from({ length: 400 }, (_, k) => k);
    for (let v = 0; v < 2; v++) await store.save(keys.map((k) => set(`k${k}`, { k, v, pad: "x".repeat(k * 7) })));
    await store.save(keys.filter((k) => k % 2 === 1).map((k) => set(`k${k}`, { k, v: 2 })));
    const file = store.fileOf(NS);
    await store.close();
    const expected = shape(await load(dir));
    const h = hintOfFile(file);
    if (!h?.spans) throw new Error("no hint with span checksums");
    const size = statSync(file).size;
    const samples = Array.from({ length: 17 }, (_, k) => Math.floor(((size - 4096) * k) / 16));
    const unsampled = (at: number) => samples.every((s) => at < s || at >= s + 4096);
    // The middle of a gap between two winners of one span, where no fingerprint sample lies.
    const spanOf = (w: number) => h.spans!.first.findLastIndex((f) => f <= w);
    let at = -1;
    for (let w = 0; w + 1 < h.offsets.length && at < 0; w++) {
      const gapStart = (h.offsets[w] as number) + (h.lengths[w] as number) + 1;
      const mid = Math.floor((gapStart + (h.offsets[w + 1] as number)) / 2);
      if (gapStart < (h.offsets[w + 1] as number) && spanOf(w) === spanOf(w + 1) && unsampled(mid)) at = mid;
    }
    expect(at).toBeGreaterThan(0);
    const text = readFileSync(file);
    expect(Array.from(h.lineNumbers)).not.toContain(lineAt(text, at));
    const fd = openSync(file, "r+");
    writeSync(fd, "#", at);
    closeSync(fd);
    expect(hintOfFile(file)).toBeDefined();
    await expectCorruptLine(dir, lineAt(text, at) + 1);
    // With a hint of version 1 the same damage goes unnoticed by a hinted load (only its winners are checked).
    toVersion1(hintFileOf(file));
    expect(shape(await load(dir))).toEqual(expected);
    expect(last.hinted).toBe(1);
  });

  it("a hint of version 1 (without span checksums) is still read, winners checked one by one, and kept", async () => {
    const { dir, file } = await history();
    const expected = shape(await load(dir));
    toVersion1(hintFileOf(file));
    expect(shape(await load(dir))).toEqual(expected);
    expect(last).toEqual({ hinted: 1, written: 0 });
    const changes = await saveThenLoad(dir, set("k1", { late: true }));
    expect(last.hinted).toBe(1);
    expect(changes.find((c) => c.entityId === "k1")?.entity).toEqual({ late: true });
  });

  it("no hint for a short or compacted history, nor after skipping damaged lines", async () => {
    const few = await history(3, 2);
    await load(few.dir);
    expect(existsSync(hintFileOf(few.file))).toBe(false);

    const { dir, file } = await history();
    const text = readFileSync(file, "utf8").split("\n");
    text[4] = `${(text[4] as string).slice(0, -3)}##}`;
    writeFileSync(file, text.join("\n"));
    const reports: number[][] = [];
    const store = await open(dir, { onCorruption: "skip", onSkippedLines: (r) => reports.push(r.lines) });
    expect((await store.load(NS)).length).toBe(20);
    await store.close();
    expect(reports).toEqual([[5]]);
    expect(existsSync(hintFileOf(file))).toBe(false);
  });

  it("winners spread over several reads of the hinted load (each into the same buffer) load as in a full read", async () => {
    const dir = tempDir();
    const store = await open(dir);
    // 24 keys of ~120 KB each, twice: the winners span ~3 MB, read a part at a time.
    for (let v = 0; v < 2; v++) {
      await store.save(
        Array.from({ length: 24 }, (_, k) => set(`k${k}`, { k, v, pad: String(k % 10).repeat(120_000) })),
      );
    }
    await store.save(Array.from({ length: 12 }, (_, k) => set(`s${k}`, { k })));
    const file = store.fileOf(NS);
    await store.close();
    const full = shape(await load(dir));
    expect(last).toEqual({ hinted: 0, written: 1 });
    const hinted = await load(dir);
    expect(last).toEqual({ hinted: 1, written: 0 });
    expect(shape(hinted)).toEqual(full);
    expect(hinted.find((c) => c.entityId === "k23")?.entity).toEqual({ k: 23, v: 1, pad: "3".repeat(120_000) });
    expect(hintOfFile(file)?.offsets.length).toBe(36);
  });

  it("a winner named by the hint that cannot be decoded (its checksum holds) makes the load read in full", async () => {
    const { dir, file } = await history();
    const expected = await load(dir);
    const h = hintOfFile(file);
    if (!h) throw new Error("no hint");
    // k7's winner becomes a line with a valid checksum but no valid timestamp, of the same length.
    const w = expected.findIndex((c) => c.entityId === "k7");
    const at = h.offsets[w] as number;
    const length = h.lengths[w] as number;
    const text = readFileSync(file);
    const line = text.toString("utf8", at, at + length);
    const ts = line.indexOf('"timestamp":"') + 13;
    const bad = appendLineCrc(
      `${line.slice(0, ts)}${"?".repeat(24)}${line.slice(ts + 24, line.lastIndexOf(',"crc":"'))}`,
    );
    expect(bad.length).toBe(length);
    const fd = openSync(file, "r+");
    writeSync(fd, bad, at);
    // The hint written again for the file as it is now (the fingerprint covers the changed bytes).
    expect(await writeHint(file, NS, fd, fstatSync(fd), h)).toBe(true);
    closeSync(fd);
    expect(hintOfFile(file)).toBeDefined();
    // Without a later line for k7, the full read reports the line.
    await expectCorruptLine(dir, (h.lineNumbers[w] as number) + 1);
    // A later line supersedes it: the full read returns that one (a superseded line is only checksummed).
    const changes = await saveThenLoad(dir, set("k7", { late: true }));
    expect(last.hinted).toBe(0);
    expect(changes.find((c) => c.entityId === "k7")?.entity).toEqual({ late: true });
    expect(changes.length).toBe(20);
  });

  it("a hinted load decodes escaped keys, lines without a checksum and lines in other shapes as a full read does", async () => {
    const dir = tempDir();
    const store = await open(dir);
    const ids = ['q"uote', "back\\slash", "caf\u00e9", "line\u2028sep", "plain"];
    for (let v = 0; v < 4; v++) await store.save(ids.map((id, k) => set(id, { k, v, text: `é ${id}` })));
    const file = store.fileOf(NS);
    await store.close();
    // Lines an earlier version (or another writer) may have left: no checksum, other field orders.
    const ts = "2025-01-01T00:00:00.000Z";
    appendFileSync(
      file,
      `{"namespace":"ws","changeType":"set","entityType":"item","entityID":"old","entity":{"v":1},"timestamp":"${ts}"}\n` +
        `{"entityID":"other","namespace":"ws","entityType":"item","changeType":"set","timestamp":"${ts}","entity":{"o":true}}\n` +
        `{"namespace":"ws","changeType":"set","entityType":"item","entityID":"old","entity":{"v":2},"timestamp":"${ts}"}\n`,
    );
    const full = shape(await load(dir));
    expect(last).toEqual({ hinted: 0, written: 1 });
    expect(full.map((c) => c[1])).toEqual([...ids, "other", "old"]);
    const hinted = await load(dir);
    expect(last).toEqual({ hinted: 1, written: 0 });
    expect(shape(hinted)).toEqual(full);
    expect(hinted.find((c) => c.entityId === 'q"uote')?.entity).toEqual({ k: 0, v: 3, text: 'é q"uote' });
    expect(hinted.find((c) => c.entityId === "old")?.entity).toEqual({ v: 2 });
  });
});
