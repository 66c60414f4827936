/**
 * A compaction reads its file twice, through reused buffers: the scan finds
 * each key's latest line, the copy reads those lines again, checks and
 * decodes each one and writes it out. What the copy finds damaged (edited
 * under the compaction, or a line whose checksum holds but which does not
 * decode) is refused, or skipped in skip mode with the key falling back to
 * its previous line, as a scan would have done.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { CorruptionError } from "../../src/core/errors.js";
import { linePrefix } from "../../src/file/format.js";
import { FileStore } from "../../src/file/index.js";
import { appendLineCrc } from "../../src/file/lines.js";
import { readText } from "../../src/file/reader.js";
import { type WinnersInput, writeWinners } from "../../src/file/winners.js";
import { tempDir, withSourceWorker } from "./helpers.js";

const set = (id: string, n: number): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId: id,
  entity: { n, pad: "p".repeat(n % 40) },
});

/** A file of three versions of keys k0…k19 (60 lines, the last version `n` 2xx); its path and store directory. */
async function history(): Promise<{ directory: string; file: string }> {
  const directory = tempDir();
  const store = await FileStore.open({ directory, autoCompact: false });
  for (let v = 0; v < 3; v++) await store.save(Array.from({ length: 20 }, (_, k) => set(`k${k}`, v * 100 + k)));
  const file = store.fileOf("ws");
  await store.close();
  return { directory, file };
}

const input = (directory: string, file: string, fd: number, skip: boolean): WinnersInput => ({
  fd,
  size: readFileSync(file).length,
  ctx: { file, namespace: "ws", prefix: linePrefix("ws"), skip, chunkBytes: 256 },
  temp: `${directory}/out.tmp`,
  expiredBefore: Number.NEGATIVE_INFINITY,
  worth: undefined,
  yielding: false,
  crashAt: undefined,
  catchUpRounds: 1,
});

/** Overwrites, in place, the digit of `"n":<n>` in line `index` (0-based) of `file`: same length, checksum broken. */
function editInPlace(file: string, index: number, n: number): void {
  const text = readFileSync(file, "utf8");
  const lines = text.split("\n");
  const at = lines.slice(0, index).reduce((sum, l) => sum + Buffer.byteLength(l) + 1, 0);
  const col = (lines[index] as string).indexOf(`"n":${n}`);
  expect(col).toBeGreaterThan(0);
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, Buffer.from("9"), 0, 1, at + col + 4);
  } finally {
    closeSync(fd);
  }
}

describe("readText with reused buffers", () => {
  /** Reads `file` in chunks of 256 bytes; returns what the chunks held, the result, and where the chunks lay. */
  async function chunksOf(file: string, reuse: boolean) {
    const size = readFileSync(file).length;
    const fd = openSync(file, "r");
    try {
      const seen: string[] = [];
      /** Where chunks lay: their memory and offset in it (small buffers share Node's pool). */
      const places = new Set<string>();
      const memory = new Map<ArrayBufferLike, number>();
      const text = await readText(
        fd,
        size,
        256,
        0,
        async (chunk) => {
          if (!memory.has(chunk.buffer)) memory.set(chunk.buffer, memory.size);
          places.add(`${memory.get(chunk.buffer)}:${chunk.byteOffset}`);
          await new Promise((r) => setImmediate(r)); // the next read runs meanwhile
          seen.push(chunk.toString("utf8"));
        },
        reuse,
      );
      return { seen: seen.join(""), chunks: seen.length, text, places: places.size, size };
    } finally {
      closeSync(fd);
    }
  }

  it("hands out every line once, through the same two buffers, and keeps no chunk", async () => {
    const file = `${tempDir()}/lines.txt`;
    const content = `${Array.from({ length: 500 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`).join("\n")}\n`;
    writeFileSync(file, content);
    const reused = await chunksOf(file, true);
    expect(reused.seen).toBe(content);
    expect(reused.text.completeBytes).toBe(reused.size);
    expect(reused.text.chunks).toEqual([]);
    expect(reused.chunks).toBeGreaterThan(50);
    expect(reused.places).toBe(2);
    // Without reuse, a buffer per chunk, each kept in the result.
    const fresh = await chunksOf(file, false);
    expect(fresh.seen).toBe(content);
    expect(fresh.text.chunks).toHaveLength(fresh.chunks);
    expect(fresh.places).toBe(fresh.chunks);
  });

  it("bug: a chunk of 1 byte after a blank first line reads on (both buffers were full of the carried line)", () => {
    // In a child process: the bug was a loop of resolved promises that no test timeout can stop.
    const file = `${tempDir()}/blank-first.txt`;
    writeFileSync(file, "\nxx\n\nyyy\n");
    const script = `
      import { openSync } from "node:fs";
      import { readText } from "./src/file/reader.ts";
      const seen = [];
      const text = await readText(openSync(${JSON.stringify(file)}, "r"), 9, 1, 0, (c) => { seen.push(c.toString()); }, true);
      console.log(JSON.stringify({ seen: seen.join(""), completeBytes: text.completeBytes }));
    `;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: new URL("../..", import.meta.url),
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(child.signal).toBeNull();
    expect(JSON.parse(child.stdout)).toEqual({ seen: "\nxx\n\nyyy\n", completeBytes: 9 });
  });

  it("a line longer than a chunk grows the buffer it is read into", async () => {
    const file = `${tempDir()}/lines.txt`;
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`);
    lines[50] = "y".repeat(1_000);
    const content = `${lines.join("\n")}\n`;
    writeFileSync(file, content);
    const reused = await chunksOf(file, true);
    expect(reused.seen).toBe(content);
    expect(reused.text.completeBytes).toBe(reused.size);
    // The two buffers, and at least one grown to hold the long line with a chunk after it.
    expect(reused.places).toBeGreaterThan(2);
  });
});

describe("the compaction's copy pass", () => {
  /**
   * `writeWinners` over a fresh history whose winner of k7 (line 48) is edited in place between the scan and
   * the copy (in the size callback of a catch-up round); its result or error, and the temp file's path.
   */
  async function editedBetweenPasses(skip: boolean) {
    const { directory, file } = await history();
    const fd = openSync(file, "r");
    const args = input(directory, file, fd, skip);
    try {
      const outcome = await writeWinners(args, async () => {
        editInPlace(file, 47, 207);
        return -1;
      }).catch((e: unknown) => e);
      return { outcome, temp: args.temp };
    } finally {
      closeSync(fd);
    }
  }

  it("refuses a winner edited after the scan read it, and writes nothing", async () => {
    const { outcome, temp } = await editedBetweenPasses(false);
    expect(outcome).toBeInstanceOf(CorruptionError);
    expect((outcome as CorruptionError).line).toBe(48);
    expect(existsSync(temp)).toBe(false);
  });

  it("in skip mode, skips it: its key falls back to its previous line", async () => {
    const { outcome, temp } = await editedBetweenPasses(true);
    const result = outcome as Awaited<ReturnType<typeof writeWinners>>;
    expect(result.skipped).toEqual([48]);
    expect(result.kept).toBe(20);
    const written = readFileSync(temp, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { entityID: string; entity: { n: number } });
    expect(written.find((c) => c.entityID === "k7")?.entity.n).toBe(107);
    expect(written.filter((c) => c.entityID !== "k7").map((c) => c.entity.n)).toEqual(
      Array.from({ length: 20 }, (_, k) => 200 + k).filter((n) => n !== 207),
    );
  });

  for (const thread of ["main thread", "worker thread"] as const) {
    it(`(${thread}) a winner whose checksum holds but which does not decode is skipped in skip mode`, async () => {
      const { directory, file } = await history();
      const lines = readFileSync(file, "utf8").split("\n");
      // The winner of k3, edited by hand with its checksum recomputed: a timestamp that is no time.
      const line = lines[43] as string;
      const body = line.slice(0, line.lastIndexOf(',"crc":"')).replace(/"timestamp":"[^"]*"/, '"timestamp":"never"');
      lines[43] = appendLineCrc(body);
      writeFileSync(file, lines.join("\n"));
      const reported: number[][] = [];
      const options = {
        directory,
        autoCompact: false,
        onCorruption: "skip",
        onSkippedLines: (r: { lines: number[] }) => reported.push(r.lines),
      } as const;
      const store = await FileStore.open(
        thread === "worker thread" ? withSourceWorker({ ...options, compactionWorkerMinBytes: 0 }) : options,
      );
      try {
        await store.compact("ws");
        expect(store.stats()).toMatchObject(thread === "worker thread" ? { workerScans: 1 } : { mainThreadScans: 1 });
        expect(reported).toEqual([[44]]);
        const loaded = await store.load("ws");
        expect(loaded.find((c) => c.entityId === "k3")?.entity).toEqual(set("k3", 103).entity);
        expect(loaded).toHaveLength(20);
      } finally {
        await store.close();
      }
      // The new file holds 20 lines: the damaged one is gone, its key's previous line kept.
      expect(readFileSync(file, "utf8").trimEnd().split("\n")).toHaveLength(20);
    });
  }
});
