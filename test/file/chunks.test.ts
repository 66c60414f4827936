/** Reading files in small chunks (an internal option lowers the 32 MiB chunk size): lines across chunk ends. */
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { CorruptionError } from "../../src/core/errors.js";
import { FileStore } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { tempDir } from "./helpers.js";

const set = (id: string, n: number, pad = 0): ChangeInput => ({
  namespace: "ws",
  changeType: "set",
  entityType: "item",
  entityId: id,
  entity: { n, pad: "x".repeat(pad) },
});

/** A store on `directory` that reads `readChunkBytes` bytes at once. */
const openChunked = (directory: string, readChunkBytes: number): Promise<FileStore> =>
  FileStore.open(withInternals({ directory, autoCompact: false }, { readChunkBytes }));

async function filled(): Promise<FileStore> {
  const store = await FileStore.open({ directory: tempDir(), autoCompact: false });
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
      const chunked = await openChunked(store.directory, bytes);
      expect(await chunked.load("ws")).toEqual(whole);
      await chunked.close();
    }
    const compacting = await openChunked(store.directory, 100);
    await compacting.compact("ws");
    await compacting.close();
    expect(await store.load("ws")).toEqual(whole);
    await store.close();
  });

  it("a damaged line in a later chunk is reported with its own line number", async () => {
    const store = await filled();
    const file = store.fileOf("ws");
    const lines = readFileSync(file, "utf8").split("\n");
    lines[30] = "{broken";
    writeFileSync(file, lines.join("\n"));
    await store.close();
    const chunked = await openChunked(store.directory, 256);
    const error = await chunked.load("ws").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).line).toBe(31);
    await chunked.close();
  });

  it("the chunk size is an internal option: FileStore.open refuses a bad one", async () => {
    await expect(openChunked(tempDir(), 0)).rejects.toThrow(/readChunkBytes/);
  });

  it("internal options reach the store only through the internal module's own key", async () => {
    // The key is a symbol of that module alone: one of the same description from the global registry is
    // an unknown (ignored) symbol key, so code outside the package cannot pass internal options.
    const store = await FileStore.open({
      directory: tempDir(),
      [Symbol.for("statelog.internal")]: { readChunkBytes: 0 },
    } as Parameters<typeof FileStore.open>[0]);
    await store.save([set("a", 1)]);
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual(["a"]);
    await store.close();
  });
});
