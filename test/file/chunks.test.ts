/** Reading files in small chunks (the hook lowers the 32 MiB chunk size): lines across chunk ends. */
import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { CorruptionError } from "../../src/core/errors.js";
import { FileStore } from "../../src/file/index.js";
import { setReadChunkBytes } from "../../src/file/reader.js";
import { tempDir } from "./helpers.js";

const set = (id: string, n: number, pad = 0): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId: id,
  entity: { n, pad: "x".repeat(pad) },
});

afterEach(() => setReadChunkBytes(32 * 1024 * 1024));

async function filled(): Promise<FileStore> {
  const store = await FileStore.open(tempDir(), { autoCompact: false });
  for (let round = 0; round < 20; round++) {
    await store.save([set(`k${round % 7}`, round, (round * 37) % 300), set("same", round)]);
  }
  return store;
}

describe("chunked reads", () => {
  it("loads and compacts the same state whatever the chunk size", async () => {
    const store = await filled();
    const whole = await store.load("ws");
    expect(whole).toHaveLength(8);
    for (const bytes of [1, 7, 64, 333, 4096]) {
      setReadChunkBytes(bytes);
      expect(await store.load("ws")).toEqual(whole);
    }
    setReadChunkBytes(100);
    await store.compact("ws");
    setReadChunkBytes(32 * 1024 * 1024);
    expect(await store.load("ws")).toEqual(whole);
    await store.close();
  });

  it("a damaged line in a later chunk is reported with its own line number", async () => {
    const store = await filled();
    const file = store.fileOf("ws");
    const lines = readFileSync(file, "utf8").split("\n");
    lines[30] = "{broken";
    writeFileSync(file, lines.join("\n"));
    setReadChunkBytes(256);
    const error = await store.load("ws").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).line).toBe(31);
    await store.close();
  });
});
