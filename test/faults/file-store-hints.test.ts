/**
 * Storage faults while a FileStore writes a hint file (`<namespace>.hint`,
 * derived data): a load whose hint cannot be written still returns the
 * state and leaves no temp file; once space returns the next load writes
 * the hint and later loads read it.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FileStore } from "../../src/file/index.js";
import { figures } from "./figures.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("file-store-hints");
const VERSIONS = 12;
const KEYS = 200;

const set = (id: number, v: number) => ({
  namespace: "ns",
  changeType: "set" as const,
  entityType: "t",
  entityId: String(id),
  entity: { v },
});

describe("FileStore hint files under storage faults", () => {
  it("disk full when a load writes its hint: the load returns the state, no temp file stays, and the hint is written once space returns", async () => {
    const fs = Tmpfs.mount(2 * 1024 * 1024);
    const open = () => FileStore.open({ directory: fs.dir, autoCompact: false });
    {
      await using writer = await open();
      // 12 versions of 200 keys: 2,400 lines, 2,200 of them superseded (a load of it writes a hint).
      for (let v = 0; v < VERSIONS; v++) await writer.save(Array.from({ length: KEYS }, (_, id) => set(id, v)));
    }
    const expected = Array.from({ length: KEYS }, (_, id) => ({ id: String(id), v: VERSIONS - 1 }));
    const state = (changes: Awaited<ReturnType<FileStore["load"]>>) =>
      changes
        .map((c) => ({ id: c.entityId, v: (c.entity as { v: number }).v }))
        .sort((a, b) => Number(a.id) - Number(b.id));

    fs.fill();
    const started = Date.now();
    {
      await using full = await open();
      expect(state(await full.load("ns"))).toEqual(expected);
      expect(full.stats().hintsWritten).toBe(0);
    }
    expect(readdirSync(fs.dir).filter((n) => n.endsWith(".tmp") || n.endsWith(".hint"))).toEqual([]);
    fs.free();
    {
      await using freed = await open();
      expect(state(await freed.load("ns"))).toEqual(expected);
      expect(freed.stats().hintsWritten).toBe(1);
    }
    const recoveryMs = Date.now() - started;
    await using hinted = await open();
    const loaded = state(await hinted.load("ns"));
    expect(loaded).toEqual(expected);
    expect(hinted.stats().hintedLoads).toBe(1);
    record({
      backend: "FileStore",
      fault: "disk full (ENOSPC) while a load writes its hint file",
      injection: "tmpfs of 2 MiB filled before the load",
      injections: 1,
      acknowledged: VERSIONS * KEYS,
      acknowledgedLost: expected.filter((e, i) => loaded[i]?.id !== e.id || loaded[i]?.v !== e.v).length,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });
});
