/**
 * A load without a hint file reads the file in two passes, each through
 * buffers it reuses (src/file/hinted-read.ts, `resolveInTwoPasses`): the
 * first finds each key's latest line, the second reads those lines again
 * and decodes them. So a load holds about a chunk of the file at a time,
 * not all of it. Watched through the reads it makes (`fs.read` and
 * `fs.readSync`, wrapped).
 */
import { promisify } from "node:util";
import { describe, expect, it, vi } from "vitest";

/** Every `fs.read` and `fs.readSync` while {@link reads}.on: the buffer read into and the bytes it got. */
const reads = vi.hoisted(() => ({ on: false, log: [] as { backing: ArrayBufferLike; bytes: number }[] }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  type ReadCallback = (err: NodeJS.ErrnoException | null, bytesRead: number, buffer: Buffer) => void;
  const read = (...args: unknown[]) => {
    const callback = args[args.length - 1] as ReadCallback;
    const buffer = args[1] as Buffer;
    const rest = args.slice(0, -1) as Parameters<typeof fs.read>;
    (fs.read as (...a: unknown[]) => void)(...rest, (err: NodeJS.ErrnoException | null, bytesRead: number) => {
      if (reads.on && !err) reads.log.push({ backing: buffer.buffer, bytes: bytesRead });
      callback(err, bytesRead, buffer);
    });
  };
  // As fs.read: promisified, it resolves with { bytesRead, buffer }.
  Object.defineProperty(read, promisify.custom, {
    value: (...args: unknown[]) =>
      new Promise((resolve, reject) =>
        read(...args, (err: NodeJS.ErrnoException | null, bytesRead: number, buffer: Buffer) =>
          err ? reject(err) : resolve({ bytesRead, buffer }),
        ),
      ),
  });
  const readSync = (...args: Parameters<typeof fs.readSync>) => {
    const bytesRead = fs.readSync(...args);
    const buffer = args[1] as Uint8Array;
    if (reads.on) reads.log.push({ backing: buffer.buffer, bytes: bytesRead });
    return bytesRead;
  };
  return { ...fs, default: { ...fs, read, readSync }, read, readSync };
});

const { existsSync, statSync } = await import("node:fs");
const { FileStore } = await import("../../src/file/index.js");
const { withInternals } = await import("../../src/file/internal.js");
const { tempDir } = await import("./helpers.js");

describe("a load without a hint file", () => {
  it("reads the file twice, through two reused buffers and one for the winners, and returns every key's latest", async () => {
    const directory = tempDir();
    // Reads of 64 KiB: a load that kept the file would read it into a buffer per chunk.
    const options = withInternals({ directory, autoCompact: false }, { readChunkBytes: 64 * 1024, hintMinLines: 1e9 });
    const store = await FileStore.open(options);
    const keys = 3000;
    for (let v = 0; v < 3; v++) {
      await store.save(
        Array.from({ length: keys }, (_, k) => ({
          namespace: "ws",
          changeType: "set" as const,
          entityType: "item",
          entityId: `k${k}`,
          entity: { v, k, pad: "x".repeat(40) },
        })),
      );
    }
    const file = store.fileOf("ws");
    const size = statSync(file).size;
    expect(size).toBeGreaterThan(16 * 64 * 1024); // sixteen chunks and more
    expect(existsSync(`${file.slice(0, -".jsonl".length)}.hint`)).toBe(false);

    try {
      reads.log.length = 0;
      reads.on = true;
      let loaded: Awaited<ReturnType<typeof store.load>>;
      try {
        loaded = await store.load("ws");
      } finally {
        reads.on = false;
      }
      expect(loaded.length).toBe(keys);
      expect(loaded.every((c) => c.changeType === "set" && (c.entity as { v: number }).v === 2)).toBe(true);

      // Besides a one-byte read of the file's last byte (is its last line whole?).
      const passes = reads.log.filter((r) => r.bytes > 1);
      const bytes = passes.reduce((sum, r) => sum + r.bytes, 0);
      const buffers = new Set(passes.map((r) => r.backing)).size;
      // The first pass reads the whole file, the second the winners: the last third of it.
      expect(bytes).toBeGreaterThanOrEqual(size + Math.floor(size / 3) - 1);
      expect(bytes).toBeLessThan(2 * size);
      // Two buffers for the first pass, one for the second; not one per chunk.
      expect(passes.length).toBeGreaterThan(16);
      expect(buffers).toBeLessThanOrEqual(3);
    } finally {
      await store.close();
    }
  });
});
