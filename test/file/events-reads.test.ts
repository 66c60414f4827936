/**
 * Reads of the file event store from its segments: catch-ups read large
 * ranges at once (read-ahead) and decode many lines with one JSON.parse;
 * every line's checksum is still checked, a damaged line is a
 * CorruptionError, and events come back whole, in order and frozen.
 */
import { readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent, type EventInput, type EventSubscription, type RecordedEvent } from "../../src/events/index.js";
import type { DiskEventLog } from "../../src/file/events/disk-log.js";
import { decodeLinesAt, isoTime } from "../../src/file/events/format.js";
import { FileEventStore } from "../../src/file/index.js";
import { appendLineCrc, crc32Of } from "../../src/file/lines.js";
import { tempDir } from "./helpers.js";

const options = { maxEventsPerStream: 0, maxStreams: 0, snapshotIntervalMs: 0, sync: "none" } as const;
const t0 = Date.parse("2024-02-28T23:59:58.000Z");

/** Event `k`: data of varying size and shape, metadata on every third one, timestamps across a leap day. */
function event(k: number): EventInput {
  return createEvent(
    "t",
    { k, text: "x".repeat(k % 500), nested: { list: [k, { deep: `é${k}` }] } },
    { id: `e${k}`, timestamp: new Date(t0 + k * 997), ...(k % 3 === 0 ? { metadata: { user: `u${k % 7}` } } : {}) },
  );
}

/** Writes `total` events in appends of 50, round-robin over `streams` streams; the directory. */
async function written(total: number, streams: number, segmentBytes?: number): Promise<string> {
  const dir = tempDir("statelog-events-reads-");
  const store = await FileEventStore.open({ directory: dir, ...options, ...(segmentBytes ? { segmentBytes } : {}) });
  for (let k = 0; k < total; k += 50) {
    await store.append(
      `s${(k / 50) % streams}`,
      Array.from({ length: Math.min(50, total - k) }, (_, j) => event(k + j)),
    );
  }
  await store.close();
  return dir;
}

function expectEvent(e: RecordedEvent, k: number): void {
  const input = event(k);
  expect(e.id).toBe(input.id);
  expect(e.globalPosition).toBe(k + 1);
  expect(e.data).toEqual(input.data);
  expect(e.metadata).toEqual(input.metadata);
  expect(e.timestamp.getTime()).toBe(t0 + k * 997);
}

function expectFrozen(value: unknown): void {
  if (typeof value !== "object" || value === null || value instanceof Date) return;
  expect(Object.isFrozen(value)).toBe(true);
  for (const v of Object.values(value)) expectFrozen(v);
}

async function all(sub: AsyncIterable<RecordedEvent>, total: number): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const e of sub) {
    out.push(e);
    if (out.length === total) break;
  }
  return out;
}

describe("FileEventStore reads from the segments", () => {
  it("a catch-up of every event after a reopen returns each one whole, in order and frozen, across segments", async () => {
    const total = 6_000;
    const dir = await written(total, 7, 256 * 1024);
    expect((await readdir(dir)).filter((f) => f.startsWith("segment-")).length).toBeGreaterThan(3);
    const store = await FileEventStore.open({ directory: dir, ...options });
    // Two subscribers side by side (the second reads what the first just read), one with a small buffer.
    const [a, b] = await Promise.all([
      all(store.subscribeAll(0), total),
      all(store.subscribeAll(0, { bufferSize: 7 }), total),
    ]);
    for (const events of [a, b]) {
      expect(events.length).toBe(total);
      for (const [k, e] of events.entries()) expectEvent(e, k);
    }
    expectFrozen(a[1234]);
    expectFrozen(a[1236]);
    // From the middle, and a stream's events (every 7th append).
    const tail = await all(store.subscribeAll(4_321), total - 4_321);
    for (const [i, e] of tail.entries()) expectEvent(e, 4_321 + i);
    const s3 = await store.readStream("s3");
    const appendsOfS3 = Array.from({ length: total / 50 }, (_, c) => c).filter((c) => c % 7 === 3);
    expect(s3.map((e) => e.globalPosition)).toEqual(
      appendsOfS3.flatMap((c) => Array.from({ length: 50 }, (_, j) => c * 50 + j + 1)),
    );
    for (const e of s3) expectEvent(e, e.globalPosition - 1);
    await store.close();
  });

  it("reads elsewhere between the batches of a catch-up (the read buffer is reused) leave every event whole", async () => {
    const total = 8_000;
    const dir = await written(total, 5);
    const store = await FileEventStore.open({ directory: dir, ...options });
    const sub = store.subscribeAll(0, { bufferSize: 300 });
    // A second catch-up further on, with larger batches: each of its reads lands where the first one's bytes were.
    const later = store.subscribeAll(4_000, { bufferSize: 1_000 });
    const next = (s: EventSubscription) => (s.nextBatch as () => Promise<readonly RecordedEvent[]>).call(s);
    const seen: RecordedEvent[] = [];
    const seenLater: RecordedEvent[] = [];
    let round = 0;
    while (seen.length < total) {
      seen.push(...(await next(sub)));
      if (seenLater.length < total - 4_000) seenLater.push(...(await next(later)));
      // Reads of a few events far from the catch-up's position: near the end of the log, then near its start.
      for (const after of [1_500 - round, round * 3]) {
        const { events } = await store.read(`s${(round + after) % 5}`, after, 5);
        expect(events.length).toBe(5);
        for (const e of events) expectEvent(e, e.globalPosition - 1);
      }
      round++;
    }
    sub.close();
    later.close();
    expect(round).toBeGreaterThan(10);
    expect(seen.length).toBe(total);
    for (const [k, e] of seen.entries()) expectEvent(e, k);
    expect(seenLater.length).toBe(total - 4_000);
    for (const [k, e] of seenLater.entries()) expectEvent(e, 4_000 + k);
    await store.close();
  });

  it("a read of thousands of consecutive lines (decoded a few hundred at a time) returns them all; a damaged line in it is named by its byte", async () => {
    const total = 3_000;
    const dir = await written(total, 1);
    let store = await FileEventStore.open({ directory: dir, ...options });
    const events = await store.readStream("s0");
    expect(events.length).toBe(total);
    for (const [k, e] of events.entries()) expectEvent(e, k);
    await store.close();
    const [seg] = (await readdir(dir)).filter((f) => f.startsWith("segment-"));
    const file = join(dir, seg as string);
    const before = await stat(file);
    const lines = (await readFile(file, "utf8")).split("\n");
    const bad = 700; // in the third run of lines decoded together
    lines[bad] = (lines[bad] as string).replace(`"k":${bad}`, `"k":${bad + 1}`);
    await writeFile(file, lines.join("\n"));
    await utimes(file, before.atime, before.mtimeMs / 1000);
    const byte = Buffer.byteLength(`${lines.slice(0, bad).join("\n")}\n`);
    store = await FileEventStore.open({ directory: dir, ...options });
    await expect(store.readStream("s0")).rejects.toMatchObject({
      code: ErrorCode.Corruption,
      file,
      message: expect.stringContaining(`damaged event line at byte ${byte} `),
    });
    // The lines before it still read.
    const head = await store.read("s0", 0, bad);
    expect(head.events.length).toBe(bad);
    for (const [k, e] of head.events.entries()) expectEvent(e, k);
    await store.close();
  });

  it("a damaged line met by a catch-up after an open from the index is a corruption error; the events before it arrive", async () => {
    const total = 8_000;
    const dir = await written(total, 3);
    const [seg] = (await readdir(dir)).filter((f) => f.startsWith("segment-"));
    const file = join(dir, seg as string);
    const before = await stat(file);
    const lines = (await readFile(file, "utf8")).split("\n");
    const bad = 6_543; // far past the first read-ahead
    lines[bad] = (lines[bad] as string).replace(`"k":${bad}`, `"k":${bad + 1}`);
    await writeFile(file, lines.join("\n"));
    // Same size and time: the open trusts the index side file and scans nothing.
    await utimes(file, before.atime, before.mtimeMs / 1000);
    const store = await FileEventStore.open({ directory: dir, ...options });
    const seen: RecordedEvent[] = [];
    let caught: unknown;
    try {
      for await (const e of store.subscribeAll(0)) seen.push(e);
    } catch (error) {
      caught = error;
    }
    expect(isStatelogError(caught, ErrorCode.Corruption)).toBe(true);
    expect((caught as Error).message).toContain("damaged event line at byte");
    expect(caught).toMatchObject({ file });
    expect(seen.length).toBeLessThanOrEqual(bad);
    expect(seen.length).toBeGreaterThan(bad - 300);
    for (const [k, e] of seen.entries()) expectEvent(e, k);
    // A stream read that needs the line fails the same way; one that does not still reads.
    const streamOfBad = `s${Math.floor(bad / 50) % 3}`;
    await expect(store.readStream(streamOfBad)).rejects.toMatchObject({ code: ErrorCode.Corruption, file });
    const other = `s${(Math.floor(bad / 50) + 1) % 3}`;
    expect((await store.readStream(other)).length).toBeGreaterThan(0);
    await store.close();
  });
});

describe("FileEventStore's cache of decoded events", () => {
  /** The estimated size of the decoded events `store` keeps (its index's caches). */
  const cached = (store: FileEventStore) => (store as unknown as { log: DiskEventLog }).log.cachedBytes();
  /** An event whose line is about 1 KB. */
  const big = (k: number) => createEvent("t", { k, text: "y".repeat(1000) }, { id: `b${k}` });

  it("holds at most cacheBytes of events, appended or read; every event still reads whole", async () => {
    const dir = tempDir("statelog-events-cache-");
    const cacheBytes = 100_000;
    let store = await FileEventStore.open({ directory: dir, ...options, cacheBytes });
    const live = all(store.subscribe("s"), 1_000);
    for (let k = 0; k < 1_000; k += 100) {
      await store.append(
        "s",
        Array.from({ length: 100 }, (_, j) => big(k + j)),
      );
      expect(cached(store)).toBeLessThanOrEqual(cacheBytes);
    }
    expect(cached(store)).toBeGreaterThan(cacheBytes / 2);
    expect((await live).map((e) => e.id)).toEqual(Array.from({ length: 1_000 }, (_, k) => `b${k}`));
    await store.close();
    store = await FileEventStore.open({ directory: dir, ...options, cacheBytes });
    expect(cached(store)).toBe(0);
    const events = await store.readStream("s");
    expect(events.map((e) => e.data)).toEqual(Array.from({ length: 1_000 }, (_, k) => big(k).data));
    expect(cached(store)).toBeLessThanOrEqual(cacheBytes);
    expect(cached(store)).toBeGreaterThan(cacheBytes / 2);
    const again = await all(store.subscribeAll(0), 1_000);
    expect(again.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(cached(store)).toBeLessThanOrEqual(cacheBytes);
    await store.close();
  });

  it("cacheBytes 0 keeps nothing: live subscribers and reads decode from the segments", async () => {
    const dir = tempDir("statelog-events-cache-");
    const store = await FileEventStore.open({ directory: dir, ...options, cacheBytes: 0 });
    const live = all(store.subscribe("s"), 300);
    for (let k = 0; k < 300; k += 50)
      await store.append(
        "s",
        Array.from({ length: 50 }, (_, j) => big(k + j)),
      );
    expect((await live).map((e) => e.data)).toEqual(Array.from({ length: 300 }, (_, k) => big(k).data));
    expect((await store.readStream("s", 100)).map((e) => e.position)).toEqual(
      Array.from({ length: 200 }, (_, i) => 101 + i),
    );
    expect(cached(store)).toBe(0);
    await store.close();
  });
});

describe("decoding event lines", () => {
  it("many lines decode at once like one by one; a line whose checksum matches but is no event line is found", () => {
    const line = (g: number, extra = "") =>
      `${appendLineCrc(`{"g":${g},"s":"s","p":${g},"id":"e${g}","type":"t","ts":"2024-01-01T00:00:0${g}.000Z","data":{"v":${g}}${extra}`)}\n`;
    const good = Buffer.from(`${line(1)}${line(2, ',"meta":{"m":1}')}${line(3)}`);
    const run = decodeLinesAt(good, 0, 3);
    expect(run.records?.map((r) => [r.globalPosition, r.data, r.metadata, r.timestamp.getTime()])).toEqual([
      [1, { v: 1 }, undefined, Date.parse("2024-01-01T00:00:01Z")],
      [2, { v: 2 }, { m: 1 }, Date.parse("2024-01-01T00:00:02Z")],
      [3, { v: 3 }, undefined, Date.parse("2024-01-01T00:00:03Z")],
    ]);
    // Checksums match, JSON does not (an unclosed string), and a line whose "n" is no batch length.
    const notJson = `${appendLineCrc('{"g":2,"s":"s')}\n`;
    expect(decodeLinesAt(Buffer.from(`${line(1)}${notJson}${line(3)}`), 0, 3)).toMatchObject({
      bad: 1,
      at: line(1).length,
    });
    const badBatch = `${appendLineCrc('{"g":2,"n":1,"s":"s","p":2,"id":"x","type":"t","ts":"2024-01-01T00:00:00.000Z","data":1')}\n`;
    expect(decodeLinesAt(Buffer.from(`${line(1)}${badBatch}`), 0, 2)).toMatchObject({ bad: 1 });
    // A changed byte: the checksum no longer matches; a missing newline: the run ends early.
    const damaged = Buffer.from(`${line(1)}${line(2)}`);
    damaged[line(1).length + 30] = 0x39;
    expect(decodeLinesAt(damaged, 0, 2)).toMatchObject({ bad: 1 });
    expect(decodeLinesAt(Buffer.from(line(1)), 0, 2)).toMatchObject({ bad: 1 });
  });

  it("lines decoded to pass (reads in global order) are the same frozen events as lines decoded to be kept", () => {
    const line = (g: number, extra = "") =>
      `${appendLineCrc(`{"g":${g},"s":"s${g % 2}","p":${g},"id":"e${g}","type":"t","ts":"2024-01-01T00:00:0${g}.000Z","data":{"v":[${g}]}${extra}`)}\n`;
    const buf = Buffer.from(`${line(1)}${line(2, ',"meta":{"m":{"k":2}}')}${line(3)}`);
    const kept = decodeLinesAt(buf, 0, 3, true);
    const passing = decodeLinesAt(buf, 0, 3, false);
    expect(passing.records).toHaveLength(3);
    expect(passing.records).toEqual(kept.records);
    for (const e of passing.records ?? []) {
      expect(Object.isFrozen(e)).toBe(true);
      expect(Object.isFrozen(e.data)).toBe(true);
      expect(Object.isFrozen((e.data as { v: number[] }).v)).toBe(true);
    }
    expect(Object.isFrozen(passing.records?.[1]?.metadata?.m)).toBe(true);
    expect(passing.records?.map((e) => [e.streamId, e.position, e.globalPosition, e.metadata])).toEqual([
      ["s1", 1, 1, undefined],
      ["s0", 2, 2, { m: { k: 2 } }],
      ["s1", 3, 3, undefined],
    ]);
  });

  it("lines sharing a timestamp and lines that change it decode to their own times", () => {
    const line = (g: number, ts: string) =>
      `${appendLineCrc(`{"g":${g},"s":"s","p":${g},"id":"e${g}","type":"t","ts":"${ts}","data":${g}`)}\n`;
    const a = "2024-02-29T23:59:59.999Z";
    const b = "2024-03-01T00:00:00.000Z";
    const texts = [a, a, b, b, a, "2024-03-01T00:00:00.001Z"];
    const buf = Buffer.from(texts.map((ts, i) => line(i + 1, ts)).join(""));
    const run = decodeLinesAt(buf, 0, texts.length);
    expect(run.records?.map((r) => r.timestamp.getTime())).toEqual(texts.map((t) => Date.parse(t)));
    // Each event has a Date of its own.
    expect(run.records?.[0]?.timestamp).not.toBe(run.records?.[1]?.timestamp);
  });

  it("the line checksum equals zlib's CRC-32 at any offset and length", () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    for (let n = 0; n < 2_000; n++) {
      const start = Math.floor(Math.random() * 1024);
      const length = n < 64 ? n : Math.floor(Math.random() * 3000);
      expect(crc32Of(bytes, start, start + length)).toBe(crc32(bytes.subarray(start, start + length)));
    }
    expect(crc32Of(Buffer.from("123456789"), 0, 9)).toBe(0xcbf43926);
  });

  it("timestamps read digit by digit equal Date.parse, odd ones included", () => {
    for (let i = 0; i < 20_000; i++) {
      const t = Math.floor(-58_000_000_000_000 + Math.random() * 311_000_000_000_000);
      const text = new Date(t).toISOString();
      expect(isoTime(text)).toBe(Date.parse(text));
    }
    for (const text of [
      "2024-02-29T00:00:00.000Z",
      "2023-02-29T00:00:00.000Z",
      "2100-02-29T12:00:00.000Z",
      "2000-02-29T12:00:00.000Z",
      "2024-04-31T00:00:00.000Z",
      "2024-13-01T00:00:00.000Z",
      "2024-01-01T24:00:00.000Z",
      "0050-06-01T00:00:00.000Z",
      "+275760-09-13T00:00:00.000Z",
      "-000001-01-01T00:00:00.000Z",
      "2024-01-0xT00:00:00.000Z",
      "2024-01-01 00:00:00.000Z",
      "",
    ]) {
      expect(Object.is(isoTime(text), Date.parse(text))).toBe(true);
    }
  });
});
