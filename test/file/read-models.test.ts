import { appendFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FILE_READ_MODEL_STORE_DEFAULTS, FileErrorCode, FileReadModelStore } from "../../src/file/index.js";
import { appendLineCrc } from "../../src/file/lines.js";
import { type CorruptionError, ErrorCode, isStatelogError } from "../../src/index.js";
import { QueryBuilder } from "../../src/read-models/index.js";
import { describeReadModelStoreContract, readModelMetadata } from "../../src/testing/index.js";
import { tempDir } from "./helpers.js";

const dirs = new WeakMap<object, string>();
describeReadModelStoreContract(
  "FileReadModelStore",
  async (config) => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory, sync: "none", indexes: config.indexes });
    dirs.set(store, directory);
    return store;
  },
  {
    queryRuns: 40,
    reopen: async (store, config) => {
      const directory = dirs.get(store) as string;
      await store.close();
      return FileReadModelStore.open({ directory, indexes: config.indexes });
    },
  },
);

const LOG = "read-models.jsonl";
const meta = readModelMetadata;

describe("FileReadModelStore", () => {
  it("opens with its defaults and declares its capabilities", async () => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory });
    expect(store.sync).toBe(FILE_READ_MODEL_STORE_DEFAULTS.sync);
    expect(store.indexes).toEqual([]);
    expect(store.maxValueBytes).toBe(FILE_READ_MODEL_STORE_DEFAULTS.maxValueBytes);
    expect(store.capabilities).toEqual({ atomicCheckpoint: true, indexes: true, durable: true });
    await store.close();
  });

  it("refuses invalid and unknown options with a ConfigurationError naming the option, before touching the disk", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /FileReadModelStore option directory must be a non-empty string, got undefined/],
      [
        { directory: "x", sync: "always" },
        /FileReadModelStore option sync must be one of "fsync", "none", got "always"/,
      ],
      [{ directory: "x", indexes: [1] }, /option indexes must be an array of dotted paths/],
      [{ directory: "x", compactionMinDeadRecords: -1 }, /option compactionMinDeadRecords must be an integer >= 0/],
      [{ directory: "x", dir: "y" }, /FileReadModelStore has no option dir; it is called directory/],
      [{ directory: "x", fsync: true }, /has no option fsync; it is called sync/],
    ];
    for (const [options, message] of cases) {
      const error = await FileReadModelStore.open(options as never).catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.Configuration)).toBe(true);
      expect(String(error)).toMatch(message);
    }
  });

  it("one open store per directory: a second open fails with a LockedError", async () => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory });
    const error = await FileReadModelStore.open({ directory }).catch((e: unknown) => e);
    expect(isStatelogError(error, FileErrorCode.Locked)).toBe(true);
    await store.close();
    await (await FileReadModelStore.open({ directory })).close();
  });

  it("a batch and its checkpoint are one line: a torn last line drops both, and is cut off", async () => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory });
    await store.saveWithCheckpoint(
      [
        { type: "save", model: { v: 1 }, metadata: meta("T", "a", 1) },
        { type: "save", model: { v: 1 }, metadata: meta("T", "b", 1) },
      ],
      { name: "p", status: "up_to_date", checkpoint: 1, updatedAt: new Date() },
    );
    const good = statSync(join(directory, LOG)).size;
    await store.saveWithCheckpoint(
      [
        { type: "save", model: { v: 2 }, metadata: meta("T", "a", 2) },
        { type: "delete", modelType: "T", id: "b" },
      ],
      { name: "p", status: "up_to_date", checkpoint: 2, updatedAt: new Date() },
    );
    await store.close();
    const text = readFileSync(join(directory, LOG));
    expect(text.toString("utf8").split("\n").filter(Boolean)).toHaveLength(2);
    // A crash in the middle of the second write: part of its line reached the disk.
    writeFileSync(join(directory, LOG), text.subarray(0, good + 40));
    const again = await FileReadModelStore.open({ directory });
    expect((await again.load("T", "a"))?.model).toEqual({ v: 1 });
    expect((await again.load("T", "b"))?.model).toEqual({ v: 1 });
    expect((await again.getProjectionStatus("p"))?.checkpoint).toBe(1);
    expect(statSync(join(directory, LOG)).size).toBe(good);
    await again.save({ v: 3 }, meta("T", "a"));
    await again.close();
    const third = await FileReadModelStore.open({ directory });
    expect((await third.load("T", "a"))?.model).toEqual({ v: 3 });
    await third.close();
  });

  it("a damaged line before the last is a CorruptionError naming the file and line; nothing is changed", async () => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory });
    for (const id of ["a", "b", "c"]) await store.save({ id }, meta("T", id));
    await store.close();
    const file = join(directory, LOG);
    const lines = readFileSync(file, "utf8").split("\n");
    lines[1] = (lines[1] as string).replace('"id":"b"', '"id":"x"');
    writeFileSync(file, lines.join("\n"));
    const before = readFileSync(file, "utf8");
    const error = await FileReadModelStore.open({ directory }).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.Corruption)).toBe(true);
    expect(String(error)).toMatch(/read-models\.jsonl/);
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  // A line edited by hand with its checksum made anew (or written by another program): the checksum holds, the
  // content is not what the store writes.
  const metadataJson = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      id: "d",
      modelType: "T",
      schemaVersion: 1,
      lastUpdated: "2024-05-01T10:00:00.000Z",
      lastEventPosition: 1,
      metadata: {},
      ...extra,
    });
  const statusJson = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ name: "p", status: "up_to_date", checkpoint: 1, updatedAt: "2024-05-01T10:00:00.000Z", ...extra });
  it.each([
    ["a save with null metadata", '{"seq":9,"w":[{"t":"s","r":9,"m":null,"v":1}],"st":[]}'],
    ["a save with metadata without fields", '{"seq":9,"w":[{"t":"s","r":9,"m":{"bad":1},"v":1}],"st":[]}'],
    [
      "a save with an invalid lastUpdated",
      `{"seq":9,"w":[{"t":"s","r":9,"m":${metadataJson({ lastUpdated: "x" })},"v":1}],"st":[]}`,
    ],
    [
      "a save with a negative lastEventPosition",
      `{"seq":9,"w":[{"t":"s","r":9,"m":${metadataJson({ lastEventPosition: -1 })},"v":1}],"st":[]}`,
    ],
    ["a save without a model", `{"seq":9,"w":[{"t":"s","r":9,"m":${metadataJson()}}],"st":[]}`],
    ["a write that is null", '{"seq":9,"w":[null],"st":[]}'],
    ["a delete without an id", '{"seq":9,"w":[{"t":"d","r":9,"y":"T"}],"st":[]}'],
    ["writes that are not an array", '{"seq":9,"w":{},"st":[]}'],
    ["no statuses", '{"seq":9,"w":[]}'],
    ["a status that is null", '{"seq":9,"w":[],"st":[null]}'],
    ["a status that is an empty object", '{"seq":9,"w":[],"st":[{}]}'],
    ["a status with an unknown status", `{"seq":9,"w":[],"st":[${statusJson({ status: "asleep" })}]}`],
    ["a status with an invalid updatedAt", `{"seq":9,"w":[],"st":[${statusJson({ updatedAt: 5 })}]}`],
    ["removed statuses that are not names", '{"seq":9,"w":[],"st":[],"sx":[1]}'],
  ])(
    "a line with a valid checksum but a %s: open fails with a CorruptionError naming file and line",
    async (_what, body) => {
      const directory = tempDir("statelog-rm-");
      const store = await FileReadModelStore.open({ directory });
      for (const id of ["a", "b"]) await store.save({ id }, meta("T", id));
      await store.close();
      const file = join(directory, LOG);
      const lines = readFileSync(file, "utf8").split("\n");
      lines.splice(1, 0, appendLineCrc(body.slice(0, -1)));
      writeFileSync(file, lines.join("\n"));
      const error = await FileReadModelStore.open({ directory }).catch((e: unknown) => e);
      expect(isStatelogError(error, ErrorCode.Corruption), String(error)).toBe(true);
      expect([(error as CorruptionError).file, (error as CorruptionError).line]).toEqual([file, 2]);
      expect(String(error)).not.toMatch(/not JSON|checksum/); // the line itself is sound
    },
  );

  it("a line written by hand the way the store writes it is read (the checks pass stored metadata and statuses)", async () => {
    const directory = tempDir("statelog-rm-");
    const file = join(directory, LOG);
    await FileReadModelStore.open({ directory }).then((s) => s.close());
    const body = `{"seq":9,"w":[{"t":"s","r":9,"m":${metadataJson({ metadata: { k: "v" } })},"v":{"n":1}}],"st":[${statusJson()}]}`;
    writeFileSync(file, `${appendLineCrc(body.slice(0, -1))}\n`);
    const store = await FileReadModelStore.open({ directory });
    const loaded = await store.load("T", "d");
    expect([loaded?.model, loaded?.revision, loaded?.metadata.metadata, loaded?.metadata.lastUpdated]).toEqual([
      { n: 1 },
      9,
      { k: "v" },
      new Date("2024-05-01T10:00:00.000Z"),
    ]);
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(1);
    await store.close();
  });

  it("compacts once dead records outnumber live ones, keeping models, deletes, statuses and revisions", async () => {
    const directory = tempDir("statelog-rm-");
    const file = join(directory, LOG);
    const store = await FileReadModelStore.open({
      directory,
      sync: "none",
      compactionMinDeadRecords: 50,
      indexes: ["n"],
    });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) await store.save({ n: round * 10 + i }, meta("T", `m${i}`));
      await store.updateProjectionStatus({
        name: "p",
        status: "catching_up",
        checkpoint: round,
        updatedAt: new Date(),
      });
    }
    await store.delete("T", "m9");
    const last = await store.save({ n: -1 }, meta("T", "m0"));
    await store.close();
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean).length;
    expect(lines).toBeLessThan(100);
    const again = await FileReadModelStore.open({ directory, indexes: ["n"] });
    const page = await again.query<{ n: number }>(new QueryBuilder("T").sortBy("n").build());
    expect(page.items.map((i) => i.model.n)).toEqual([-1, 191, 192, 193, 194, 195, 196, 197, 198]);
    expect((await again.load("T", "m0"))?.revision).toBe(last);
    expect((await again.getProjectionStatus("p"))?.checkpoint).toBe(19);
    expect(await again.save({ n: 0 }, meta("T", "new"))).toBe(last + 1);
    await again.close();
  });

  it("new models alone never make a compaction (nothing is dead); deleting them does", async () => {
    const directory = tempDir("statelog-rm-");
    const file = join(directory, LOG);
    const store = await FileReadModelStore.open({ directory, sync: "none", compactionMinDeadRecords: 1000 });
    const inode = statSync(file).ino;
    const batch = (round: number) =>
      Array.from({ length: 2000 }, (_, i) => ({
        type: "save" as const,
        model: { round, i },
        metadata: meta("T", `r${round}-${i}`),
      }));
    const status = (checkpoint: number) => ({
      name: "p",
      status: "catching_up" as const,
      checkpoint,
      updatedAt: new Date(),
    });
    // Each batch more new models than the store held (the first one, 2,000 against none, most of all).
    for (let round = 0; round < 5; round++) await store.saveWithCheckpoint(batch(round), status(round));
    await store.saveWithCheckpoint([], status(5)); // a queued compaction would have run before this commit
    expect(store.count("T")).toBe(10_000);
    expect(statSync(file).ino).toBe(inode);
    // Deleting most of them leaves dead records: the next commit compacts.
    const deletes = Array.from({ length: 8_000 }, (_, k) => ({
      type: "delete" as const,
      modelType: "T",
      id: `r${Math.floor(k / 2000)}-${k % 2000}`,
    }));
    await store.saveWithCheckpoint(deletes, status(6));
    await store.saveWithCheckpoint([], status(7));
    expect(statSync(file).ino).not.toBe(inode);
    expect(store.count("T")).toBe(2_000);
    await store.close();
  });

  it("compact() rewrites the log with the live records only", async () => {
    const directory = tempDir("statelog-rm-");
    const file = join(directory, LOG);
    const store = await FileReadModelStore.open({ directory, compactionMinDeadRecords: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 30; i++) await store.save({ i }, meta("T", "one"));
    const before = statSync(file).size;
    await store.compact();
    expect(statSync(file).size).toBeLessThan(before / 10);
    await store.save({ i: 30 }, meta("T", "two"));
    await store.close();
    const again = await FileReadModelStore.open({ directory });
    expect(await again.list("T")).toEqual(["one", "two"]);
    expect((await again.load("T", "one"))?.model).toEqual({ i: 29 });
    await again.close();
  });

  it("refuses a torn line that a later line follows (damage, not a crash)", async () => {
    const directory = tempDir("statelog-rm-");
    const store = await FileReadModelStore.open({ directory });
    await store.save({ a: 1 }, meta("T", "a"));
    await store.close();
    appendFileSync(join(directory, LOG), '{"seq":9,"w":[\n{"seq":9}\n');
    const error = await FileReadModelStore.open({ directory }).catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.Corruption)).toBe(true);
  });
});
