/**
 * Several processes on one directory: 4 writers save to one namespace
 * while a fifth compacts it over and over, and this process reads it.
 * Nothing acknowledged is lost, every line is whole and valid, each
 * save's lines are contiguous, and a reader never sees part of a save.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { Change } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";
import { spawnChild } from "./spawn.js";

const WRITERS = 4;
const SAVES = 150;

/** Checks that every save (writer, batch) in `changes` is complete: its n items all present. */
function checkWholeSaves(changes: Change[]): Map<string, number> {
  const items = new Map<string, number>();
  for (const c of changes) {
    if (c.entityType !== "item") continue;
    const e = c.entity as { writer: number; b: number; n: number };
    const save = `w${e.writer}-b${e.b}`;
    items.set(save, (items.get(save) ?? 0) + 1);
  }
  for (const c of changes) {
    if (c.entityType !== "item") continue;
    const e = c.entity as { writer: number; b: number; n: number };
    expect(items.get(`w${e.writer}-b${e.b}`), `save w${e.writer}-b${e.b} is partly visible`).toBe(e.n);
  }
  return items;
}

describe("FileStore with several processes", () => {
  it(`${WRITERS} writers and a compactor on one namespace lose nothing and never interleave`, {
    timeout: 300_000,
  }, async () => {
    const dir = tempDir();
    const stopFile = path.join(dir, "stop");
    const compactor = await spawnChild("mp-compactor", { dir, stopFile });
    await compactor.waitFor((l) => l === "ready");
    const writers = await Promise.all(
      Array.from({ length: WRITERS }, (_, writer) => spawnChild("mp-writer", { dir, writer, saves: SAVES })),
    );
    // Read while they write: every load sees whole saves only.
    const reader = await FileStore.open({ directory: dir, autoCompact: false });
    let reads = 0;
    let running = true;
    const done = Promise.all(writers.map((w) => w.exited)).then(() => {
      running = false;
    });
    while (running) {
      checkWholeSaves(await reader.load("ws"));
      reads++;
      await new Promise((r) => setTimeout(r, 10));
    }
    await done;
    for (const w of writers) expect((await w.exited).code, w.stderr()).toBe(0);
    writeFileSync(stopFile, "");
    const compactorDone = await compactor.waitFor((l) => l.startsWith("done"));
    expect((await compactor.exited).code, compactor.stderr()).toBe(0);
    const compactions = Number(compactorDone.split(" ")[1]);

    // Everything acknowledged is there.
    const final = await reader.load("ws");
    const saves = checkWholeSaves(final);
    for (const [writer, w] of writers.entries()) {
      const acks = w.lines.filter((l) => l.startsWith("ack "));
      expect(acks).toHaveLength(SAVES);
      for (const ack of acks) {
        const [, b, n] = ack.split(" ");
        expect(saves.get(`w${writer}-b${b}`), `save w${writer}-b${b}`).toBe(Number(n));
      }
    }
    // In the file, each save's item lines are contiguous and in order (compaction keeps them so).
    const order = final.filter((c) => c.entityType === "item").map((c) => c.entityId);
    for (let i = 0; i < order.length; ) {
      const m = /^(w\d+-b\d+)-i(\d+)$/.exec(order[i] as string)!;
      const n = saves.get(m[1] as string)!;
      expect(order.slice(i, i + n)).toEqual(Array.from({ length: n }, (_, k) => `${m[1]}-i${k}`));
      i += n;
    }
    expect(final.filter((c) => c.entityType === "counter").map((c) => (c.entity as { b: number }).b)).toEqual(
      Array.from({ length: WRITERS }, () => SAVES - 1),
    );
    // Every line in the file is whole: valid JSON with a matching checksum.
    const lines = readFileSync(reader.fileOf("ws"), "utf8").split("\n");
    expect(lines.pop()).toBe("");
    for (const line of lines) {
      const at = line.lastIndexOf(',"crc":"');
      expect(crc32(line.slice(0, at)).toString(16).padStart(8, "0")).toBe(JSON.parse(line).crc);
    }
    await reader.close();
    expect(compactions).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
  });
});
