/**
 * An append to the file event store is all of its events or none, on disk
 * too: the first line of an append of n > 1 events carries `"n":n`, and a
 * reopen drops (and cuts from the file) a last append whose lines did not
 * all reach the disk — whole lines with valid checksums included.
 */
import fs from "node:fs";
import { open as openFile, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import { createEvent } from "../../src/events/index.js";
import { FileEventStore, isWriteFailedError, type WriteFailedError } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";

const ev = (id: string) => createEvent("t", { id }, { id, timestamp: new Date(Date.parse("2024-01-01T00:00:00Z")) });
const evs = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ev(`${prefix}${i + 1}`));
const segments = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith("segment-")).sort();
const ids = async (store: FileEventStore, stream: string) => (await store.readStream(stream)).map((e) => e.id);

/** Byte offsets just after each line of `text`. */
function lineEnds(text: string): number[] {
  const ends: number[] = [];
  const buf = Buffer.from(text, "utf8");
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) ends.push(i + 1);
  return ends;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("FileEventStore batches on disk", () => {
  it("marks the first line of a multi-event append with its length; single events stay unmarked", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir });
    await store.append("s", evs("a", 3));
    await store.append("s", [ev("b1")]);
    await store.close();
    const [seg] = await segments(dir);
    const lines = (await readFile(join(dir, seg as string), "utf8")).trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { n?: number }).n)).toEqual([3, undefined, undefined, undefined]);
    expect(lines[0]).toMatch(/^\{"g":1,"n":3,"s":"s","p":1,/);
  });

  for (const k of [1, 2, 3]) {
    it(`drops a last append of 4 events cut after ${k} whole line(s), cuts it from the file, and appends after it`, async () => {
      const dir = tempDir();
      const store = await FileEventStore.open({ directory: dir });
      await store.append("s", evs("a", 2));
      await store.append("t", [ev("b1")]);
      await store.append("s", evs("c", 4));
      await store.close();
      const file = join(dir, (await segments(dir))[0] as string);
      const ends = lineEnds(await readFile(file, "utf8"));
      expect(ends).toHaveLength(7);
      const wholeBefore = ends[2] as number; // a1 a2 b1
      await truncate(file, ends[2 + k] as number); // k whole lines of c, each with a valid checksum

      const again = await FileEventStore.open({ directory: dir });
      expect(await ids(again, "s")).toEqual(["a1", "a2"]);
      expect(await ids(again, "t")).toEqual(["b1"]);
      expect(again.stats()).toMatchObject({ totalEvents: 3, globalPosition: 3 });
      expect((await stat(file)).size).toBe(wholeBefore);
      const r = await again.append("s", evs("d", 2), { expectedVersion: 2 });
      expect(r).toMatchObject({ firstPosition: 3, globalPosition: 5 });
      await again.close();

      const third = await FileEventStore.open({ directory: dir });
      expect(await ids(third, "s")).toEqual(["a1", "a2", "d1", "d2"]);
      expect(third.stats()).toMatchObject({ totalEvents: 5, globalPosition: 5 });
      await third.close();
    });
  }

  it("drops a last append whose whole lines are followed by a torn one", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir });
    await store.append("s", [ev("a1")]);
    await store.append("s", evs("c", 3));
    await store.close();
    const file = join(dir, (await segments(dir))[0] as string);
    const ends = lineEnds(await readFile(file, "utf8"));
    await truncate(file, (ends[2] as number) + 20); // a1, c1 and the start of c2
    const again = await FileEventStore.open({ directory: dir });
    expect(await ids(again, "s")).toEqual(["a1"]);
    expect((await stat(file)).size).toBe(ends[0]);
    await again.close();
  });

  it("appends that share one write (group commit) each stay whole: a cut keeps the appends before it", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir });
    // Made in the same tick: one group, one write.
    await Promise.all([store.append("x", evs("x", 2)), store.append("y", evs("y", 3)), store.append("z", evs("z", 2))]);
    await store.close();
    const file = join(dir, (await segments(dir))[0] as string);
    const text = await readFile(file, "utf8");
    expect(
      text
        .trimEnd()
        .split("\n")
        .map((l) => (JSON.parse(l) as { n?: number }).n),
    ).toEqual([2, undefined, 3, undefined, undefined, 2, undefined]);
    await truncate(file, lineEnds(text)[3] as number); // x1 x2 y1 y2
    const again = await FileEventStore.open({ directory: dir });
    expect(await ids(again, "x")).toEqual(["x1", "x2"]);
    await expect(again.readStream("y")).rejects.toMatchObject({ code: ErrorCode.NotFound });
    await expect(again.readStream("z")).rejects.toMatchObject({ code: ErrorCode.NotFound });
    expect(again.stats()).toMatchObject({ totalEvents: 2, globalPosition: 2 });
    await again.close();
  });

  it("never splits an append across segments when the log rolls", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir, segmentBytes: 400 });
    for (let i = 0; i < 12; i++) {
      await Promise.all([store.append(`s${i % 3}`, evs(`a${i}-`, 1 + (i % 4))), store.append("t", evs(`b${i}-`, 2))]);
    }
    await store.close();
    const names = await segments(dir);
    expect(names.length).toBeGreaterThan(3);
    let announced = 0;
    for (const name of names) {
      // Each segment holds whole appends: every announced batch ends inside it.
      let missing = 0;
      for (const line of (await readFile(join(dir, name), "utf8")).split("\n").filter((l) => l !== "")) {
        const n = (JSON.parse(line) as { n?: number }).n;
        if (missing === 0) missing = n ?? 1;
        else expect(n, name).toBeUndefined();
        if (n !== undefined) announced++;
        missing--;
      }
      expect(missing, name).toBe(0);
    }
    expect(announced).toBe(12 + 9); // every append of more than one event
  });

  it("an append cut short at the end of a segment that is not the last one is a corruption error", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir, segmentBytes: 100 });
    await store.append("s", evs("a", 3));
    await store.append("s", [ev("b1")]);
    await store.close();
    const [first, second] = await segments(dir);
    expect(second).toBeDefined();
    const file = join(dir, first as string);
    await truncate(file, lineEnds(await readFile(file, "utf8"))[1] as number);
    let caught: unknown;
    await FileEventStore.open({ directory: dir }).catch((e) => {
      caught = e;
    });
    expect(isStatelogError(caught, ErrorCode.Corruption)).toBe(true);
    expect(caught).toMatchObject({ file, line: 1 });
    expect((caught as Error).message).toContain("batch of 3 events");
    expect((await stat(file)).size).toBe(lineEnds(await readFile(file, "utf8"))[1]); // left as it was
  });

  it("an append that starts inside another one is a corruption error", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir });
    await store.append("s", evs("a", 3));
    await store.append("s", evs("b", 2));
    await store.close();
    const file = join(dir, (await segments(dir))[0] as string);
    const text = await readFile(file, "utf8");
    const lines = text.split("\n");
    // a3 replaced by b1 (renumbered by hand would fail the checksum: here it is the real b1 line, so positions jump too).
    lines.splice(2, 1);
    await writeFile(file, lines.join("\n"));
    let caught: unknown;
    await FileEventStore.open({ directory: dir }).catch((e) => {
      caught = e;
    });
    expect(isStatelogError(caught, ErrorCode.Corruption)).toBe(true);
    expect(caught).toMatchObject({ file, line: 3 });
    expect((caught as Error).message).toContain("starts inside the batch of 3 events of line 1");
    expect(await readFile(file, "utf8")).toBe(lines.join("\n"));
  });

  it("a failed write whose lines cannot be cut off refuses later appends; a reopen drops the partial append", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir });
    await store.append("s", [ev("a1")]);
    // The handle class of node:fs/promises, reached through a handle (it is not exported): its truncate fails.
    const probe = await openFile(join(dir, "LOCK"), "r");
    const proto = Object.getPrototypeOf(probe) as { truncate(len?: number): Promise<void> };
    await probe.close();
    // The store writes a group with fs.writeSync: the first write stores only the first line of the group,
    // the next one fails (disk full); so does the truncate.
    const realWrite = fs.writeSync;
    let calls = 0;
    vi.spyOn(fs, "writeSync").mockImplementation(((fd: number, buf: Buffer, offset: number) => {
      calls++;
      if (calls === 1) return realWrite(fd, buf, offset, buf.indexOf(10, offset) + 1 - offset);
      throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
    }) as typeof fs.writeSync);
    syncBuiltinESMExports();
    vi.spyOn(proto, "truncate").mockRejectedValue(Object.assign(new Error("EIO: i/o error"), { code: "EIO" }));
    try {
      await expect(store.append("s", evs("b", 3))).rejects.toThrow("ENOSPC");
    } finally {
      vi.restoreAllMocks();
      syncBuiltinESMExports();
    }
    expect(calls).toBe(2);
    let refused: unknown;
    await store.append("s", [ev("c1")]).catch((e) => {
      refused = e;
    });
    expect(isStatelogError(refused, ErrorCode.Unavailable)).toBe(true);
    expect((refused as Error).message).toContain("reopen the store");
    await store.close();

    const file = join(dir, (await segments(dir))[0] as string);
    expect((await readFile(file, "utf8")).trimEnd().split("\n")).toHaveLength(2); // a1 and b1, announcing 3 lines
    const again = await FileEventStore.open({ directory: dir });
    expect(await ids(again, "s")).toEqual(["a1"]);
    await again.append("s", [ev("c1")]);
    await again.close();
    const third = await FileEventStore.open({ directory: dir });
    expect((await third.readStream("s")).map((e) => [e.id, e.position])).toEqual([
      ["a1", 1],
      ["c1", 2],
    ]);
    await third.close();
  });

  it("a write(2) that takes no byte and reports no error fails the append (WriteFailedError) instead of retrying forever", async () => {
    const dir = tempDir();
    const store = await FileEventStore.open({ directory: dir });
    await store.append("s", [ev("a1")]);
    let calls = 0;
    vi.spyOn(fs, "writeSync").mockImplementation((() => {
      calls++;
      // Called again after taking nothing: the loop would spin; fail the append instead of hanging the test.
      if (calls > 3) throw new Error("writeSync called again after it took no byte");
      return 0;
    }) as typeof fs.writeSync);
    syncBuiltinESMExports();
    let failed: unknown;
    try {
      await store.append("s", evs("b", 2)).catch((e: unknown) => {
        failed = e;
      });
    } finally {
      vi.restoreAllMocks();
      syncBuiltinESMExports();
    }
    expect(calls).toBe(1);
    expect(isWriteFailedError(failed), String(failed)).toBe(true);
    expect((failed as WriteFailedError).operation).toBe("write");
    expect(((failed as Error).cause as Error).message).toContain("took none of");
    await store.append("s", [ev("c1")]);
    await store.close();
    const again = await FileEventStore.open({ directory: dir });
    expect(await ids(again, "s")).toEqual(["a1", "c1"]);
    await again.close();
  });
});
