import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { ChangeInput } from "../../src/core/change.js";
import { CorruptionError, isCorruptionError } from "../../src/core/errors.js";
import { FileStore, type FileStoreOptions, type SkippedLinesReport } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { itemSet as set, tempDir } from "./helpers.js";

async function storeWith(
  changes: ChangeInput[][],
  options: Partial<FileStoreOptions> = {},
): Promise<{ store: FileStore; file: string; dir: string }> {
  const dir = tempDir();
  const store = await FileStore.open({ directory: dir, autoCompact: false, ...options });
  for (const batch of changes) await store.save(batch);
  return { store, file: store.fileOf("ws"), dir };
}

function lines(file: string): string[] {
  return readFileSync(file, "utf8").split("\n");
}

/** `line` (statelog's own, with `crc`) with its entity text replaced by `text` and its checksum recomputed. */
function withEntityText(line: string, text: string): string {
  const from = line.indexOf(',"entity":') + ',"entity":'.length;
  const body = `${line.slice(0, from)}${text}${line.slice(line.lastIndexOf(',"timestamp":"'), line.lastIndexOf(',"crc":"'))}`;
  return `${body},"crc":"${crc32(Buffer.from(body)).toString(16).padStart(8, "0")}"}`;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

describe("format", () => {
  it("writes the changelog format's fields in order, an RFC 3339 UTC timestamp and a crc; jq-friendly JSON per line", async () => {
    const { store, file } = await storeWith([[set("a", { n: 1 })]]);
    await store.save([{ namespace: "ws", changeType: "unset", entityType: "item", entityId: "b" }]);
    const [first, second, rest] = lines(file);
    expect(rest).toBe("");
    const a = JSON.parse(first as string);
    expect(Object.keys(a)).toEqual(["namespace", "changeType", "entityType", "entityID", "entity", "timestamp", "crc"]);
    expect(a.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(a.crc).toMatch(/^[0-9a-f]{8}$/);
    expect(Object.keys(JSON.parse(second as string))).toEqual([
      "namespace",
      "changeType",
      "entityType",
      "entityID",
      "timestamp",
      "crc",
    ]);
    await store.close();
  });

  it("round-trips timestamps outside years 0-9999 (extended ISO years)", async () => {
    const far = [
      new Date(8.64e15),
      new Date(-8.64e15),
      new Date(Date.UTC(-1, 0, 1)),
      new Date(Date.UTC(10000, 5, 1, 1, 2, 3, 4)),
    ];
    const { store } = await storeWith([far.map((timestamp, i) => ({ ...set(`t${i}`, i), timestamp }))]);
    expect((await store.load("ws")).map((c) => c.timestamp.getTime())).toEqual(far.map((d) => d.getTime()));
    await store.compact("ws");
    expect((await store.load("ws")).map((c) => c.timestamp.getTime())).toEqual(far.map((d) => d.getTime()));
    await store.close();
  });

  it("integrity: false writes plain lines (no crc), which load", async () => {
    const { store, file } = await storeWith([[set("a", { n: 1 })]], { integrity: false });
    expect(Object.keys(JSON.parse(lines(file)[0] as string))).not.toContain("crc");
    expect((await store.load("ws")).map((c) => c.entity)).toEqual([{ n: 1 }]);
    await store.close();
  });

  it("loads files in the plain changelog format as Go writes it: Go timestamps, offsets, escapes, other field orders", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir });
    const plain = [
      `{"namespace":"ws","changeType":"set","entityType":"system","entityID":"sys-1","entity":{"id":"sys-1","name":"Prod"},"timestamp":"2025-10-25T12:00:00Z"}`,
      `{"namespace":"ws","changeType":"set","entityType":"resource","entityID":"r\\u003c1\\u003e","entity":{"id":"r<1>"},"timestamp":"2025-10-25T12:01:00.123456789Z"}`,
      `{"namespace":"ws","changeType":"set","entityType":"system","entityID":"sys-2","entity":{"id":"sys-2"},"timestamp":"2025-10-25T14:02:00.5+02:00"}`,
      `{"namespace":"ws","changeType":"unset","entityType":"system","entityID":"sys-3","entity":null,"timestamp":"2025-10-25T12:03:00Z"}`,
      `{ "timestamp": "2025-10-25T12:04:00Z", "entityID": "r<1>", "entityType": "resource", "changeType": "set", "namespace": "ws", "entity": {"v": 2} }`,
      `{"namespace":"ws","changeType":"set","entityType":"system","entityID":"sys-1","entity":{"id":"sys-1","name":"Prod 2"},"timestamp":"2025-10-25T12:05:00Z"}`,
      "",
    ].join("\n");
    writeFileSync(store.fileOf("ws"), plain);
    const loaded = await store.load("ws");
    expect(loaded.map((c) => [c.entityType, c.entityId, c.changeType, c.entity, c.timestamp.toISOString()])).toEqual([
      ["system", "sys-2", "set", { id: "sys-2" }, "2025-10-25T12:02:00.500Z"],
      ["system", "sys-3", "unset", undefined, "2025-10-25T12:03:00.000Z"],
      ["resource", "r<1>", "set", { v: 2 }, "2025-10-25T12:04:00.000Z"],
      ["system", "sys-1", "set", { id: "sys-1", name: "Prod 2" }, "2025-10-25T12:05:00.000Z"],
    ]);
    // New saves append in statelog's format; both kinds load together, and compact together.
    await store.save([set("new", 1)]);
    await store.compact("ws");
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual(["sys-2", "sys-3", "r<1>", "sys-1", "new"]);
    await store.close();
  });
});

describe("keys compared as bytes", () => {
  it("an escaped key, a non-ASCII key and the same key saved by statelog are one key", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir, autoCompact: false });
    writeFileSync(
      store.fileOf("ws"),
      [
        `{"namespace":"ws","changeType":"set","entityType":"item","entityID":"caf\\u00e9 \\"q\\"","entity":{"v":1},"timestamp":"2025-10-25T12:00:00Z"}`,
        `{"namespace":"ws","changeType":"set","entityType":"item","entityID":"日本","entity":{"v":1},"timestamp":"2025-10-25T12:00:01Z"}`,
        `{"namespace":"ws","changeType":"set","entityType":"item","entityID":"caf\\u00e8","entity":{"v":1},"timestamp":"2025-10-25T12:00:02Z"}`,
        "",
      ].join("\n"),
    );
    await store.save([set('café "q"', { v: 2 }), set("日本", { v: 2 })]);
    const loaded = await store.load("ws");
    expect(loaded.map((c) => [c.entityId, c.entity])).toEqual([
      ["cafè", { v: 1 }],
      ['café "q"', { v: 2 }],
      ["日本", { v: 2 }],
    ]);
    await store.compact("ws");
    expect((await store.load("ws")).map((c) => [c.entityId, c.entity])).toEqual(
      loaded.map((c) => [c.entityId, c.entity]),
    );
    expect(lines(store.fileOf("ws")).filter((l) => l !== "")).toHaveLength(3);
    await store.close();
  });
});

describe("corruption", () => {
  it("damage mid-file is a CorruptionError naming the file and the line", async () => {
    const { store, file } = await storeWith([[set("a", { n: 1 }), set("b", { n: 2 }), set("c", { n: 3 })]]);
    const content = lines(file);
    content[1] = (content[1] as string).replace('"n":2', '"n":7'); // still valid JSON: only the crc can tell
    writeFileSync(file, content.join("\n"));
    const error = await caught(store.load("ws"));
    expect(isCorruptionError(error)).toBe(true);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).file).toBe(file);
    expect((error as CorruptionError).line).toBe(2);
    expect((error as Error).message).toContain(`${file}:2`);
    // compact refuses too, and leaves the file as it was
    const before = readFileSync(file);
    expect(isCorruptionError(await caught(store.compact("ws")))).toBe(true);
    expect(readFileSync(file)).toEqual(before);
    await store.close();
  });

  it("a line that is not JSON is a CorruptionError with its line number", async () => {
    const { store, file } = await storeWith([[set("a", 1)], [set("b", 2)], [set("c", 3)]]);
    const content = lines(file);
    content[2] = `${(content[2] as string).slice(0, 30)}garbage`;
    writeFileSync(file, content.join("\n"));
    const error = (await caught(store.load("ws"))) as CorruptionError;
    expect(error.line).toBe(3);
    await store.close();
  });

  it('onCorruption: "skip" leaves damaged lines out, falls back to the previous version, and reports them', async () => {
    const reports: SkippedLinesReport[] = [];
    const { store, file } = await storeWith(
      [[set("a", { v: 1 }), set("b", { v: 1 })], [set("a", { v: 2 })], [set("c", 1)]],
      {
        onCorruption: "skip",
        onSkippedLines: (r) => reports.push(r),
      },
    );
    const content = lines(file);
    content[2] = (content[2] as string).replace('"v":2', '"v":9'); // the latest "a": its crc fails
    content[3] = "{not json";
    writeFileSync(file, content.join("\n"));
    const loaded = await store.load("ws");
    expect(loaded.map((c) => [c.entityId, c.entity])).toEqual([
      ["a", { v: 1 }],
      ["b", { v: 1 }],
    ]);
    expect(reports).toEqual([{ namespace: "ws", file, lines: [3, 4] }]);
    await store.close();
  });

  it("an entity that is not JSON under a checksum recomputed by hand: named among many lines, skipped to the previous version", async () => {
    // Entities are parsed in batches of many lines: the damaged ones are still named one by one.
    const first = Array.from({ length: 600 }, (_, i) => set(`k${i}`, { v: 1, i }));
    const second = Array.from({ length: 600 }, (_, i) => set(`k${i}`, { v: 2, i }));
    const reports: SkippedLinesReport[] = [];
    const { store, file, dir } = await storeWith([first, second], {
      onSkippedLines: (r) => reports.push(r),
    });
    const content = lines(file);
    const damage = (n: number, text: string): void => {
      content[n] = withEntityText(content[n] as string, text);
    };
    damage(700, '{"v":2,"i":100'); // k100's latest
    damage(1000, '{"v":"}'); // k400's latest: a string left open…
    damage(1001, '{","b":{}}'); // …that k401's closes
    writeFileSync(file, content.join("\n"));
    const error = (await caught(store.load("ws"))) as CorruptionError;
    expect(error).toBeInstanceOf(CorruptionError);
    expect(error.line).toBe(701);
    expect(error.message).toContain("the entity is not valid JSON");
    await store.close();
    const skipping = await FileStore.open({
      directory: dir,
      autoCompact: false,
      onCorruption: "skip",
      onSkippedLines: (r) => reports.push(r),
    });
    const loaded = await skipping.load("ws");
    expect(reports).toEqual([{ namespace: "ws", file, lines: [701, 1001, 1002] }]);
    const byId = new Map(loaded.map((c) => [c.entityId, c.changeType === "set" ? c.entity : undefined]));
    expect(byId.size).toBe(600);
    for (let i = 0; i < 600; i++) {
      expect(byId.get(`k${i}`)).toEqual({ v: i === 100 || i === 400 || i === 401 ? 1 : 2, i });
    }
    await skipping.close();
  });

  it("the first damaged line is the one named, when a later one fails while the earlier one waits in a batch", async () => {
    const { store, file } = await storeWith([Array.from({ length: 10 }, (_, i) => set(`k${i}`, { i }))]);
    const content = lines(file);
    content[3] = withEntityText(content[3] as string, '{"i":3,}'); // checked by its crc, parsed in a batch
    // A line without crc (not batched) whose entity is not JSON either.
    content[8] = (content[8] as string).replace(/,"crc":"[0-9a-f]{8}"/, "").replace('{"i":8}', '{"i":8,}');
    writeFileSync(file, content.join("\n"));
    const error = (await caught(store.load("ws"))) as CorruptionError;
    expect(error).toBeInstanceOf(CorruptionError);
    expect(error.line).toBe(4);
    await store.close();
  });

  it("an entity that is not JSON, copied by a compaction (which parses no entity) under its hint: the load names it", async () => {
    const dir = tempDir();
    const store = await FileStore.open(withInternals({ directory: dir, autoCompact: false }, { hintMinLines: 10 }));
    await store.save(Array.from({ length: 600 }, (_, i) => set(`k${i}`, { v: 1, i })));
    await store.save(Array.from({ length: 600 }, (_, i) => set(`k${i}`, { v: 2, i })));
    const file = store.fileOf("ws");
    const content = lines(file);
    content[700] = withEntityText(content[700] as string, '{"v":2');
    writeFileSync(file, content.join("\n"));
    await store.compact("ws");
    expect(existsSync(`${file.slice(0, -".jsonl".length)}.hint`)).toBe(true);
    const error = (await caught(store.load("ws"))) as CorruptionError;
    expect(error).toBeInstanceOf(CorruptionError);
    expect(error.line).toBe(101); // k100's line, now the 101st
    expect(lines(file)[100]).toBe(content[700]);
    await store.close();
  });

  it("bug: a superseded line whose key bytes were damaged is a CorruptionError, not a silent fallback", async () => {
    // Line 2 was "a" = v2; one changed character makes it "b", which line 3 writes again, so line 2
    // is superseded and "a" would silently fall back to v1 if only winning lines were checked.
    const { store, file } = await storeWith([[set("a", { v: 1 })], [set("a", { v: 2 })], [set("b", { v: 3 })]]);
    const content = lines(file);
    content[1] = (content[1] as string).replace('"entityID":"a"', '"entityID":"b"');
    expect(() => JSON.parse(content[1] as string)).not.toThrow();
    writeFileSync(file, content.join("\n"));
    const error = await caught(store.load("ws"));
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).file).toBe(file);
    expect((error as CorruptionError).line).toBe(2);
    const before = readFileSync(file);
    expect(((await caught(store.compact("ws"))) as CorruptionError).line).toBe(2);
    expect(readFileSync(file)).toEqual(before);
    await store.close();

    // Skip mode: line 2 is left out and reported; "a" falls back to its previous valid line, "b" keeps line 3.
    const reports: SkippedLinesReport[] = [];
    const skipping = await FileStore.open({
      directory: path.dirname(file),
      autoCompact: false,
      onCorruption: "skip",
      onSkippedLines: (r) => reports.push(r),
    });
    const expected = [
      ["a", { v: 1 }],
      ["b", { v: 3 }],
    ];
    expect((await skipping.load("ws")).map((c) => [c.entityId, c.entity])).toEqual(expected);
    expect(reports).toEqual([{ namespace: "ws", file, lines: [2] }]);
    await skipping.compact("ws");
    expect(reports.at(-1)).toEqual({ namespace: "ws", file, lines: [2] });
    expect(lines(file).filter((l) => l !== "")).toHaveLength(2);
    expect((await skipping.load("ws")).map((c) => [c.entityId, c.entity])).toEqual(expected);
    await skipping.close();
  });

  it("a torn last line is dropped on load and cut off on the next write", async () => {
    const { store, file } = await storeWith([[set("a", 1)], [set("b", 2)]]);
    const whole = statSync(file).size;
    appendFileSync(file, '{"namespace":"ws","changeType":"set","entityType":"item","entityID":"c","entity":{"half');
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual(["a", "b"]);
    // Another store (as after a restart) repairs it under the lock before appending.
    const other = await FileStore.open({ directory: store.directory });
    await other.save([set("d", 4)]);
    const content = lines(file);
    expect(content.at(-1)).toBe("");
    expect(content.slice(0, -1).every((l) => JSON.parse(l).entityID !== "c")).toBe(true);
    expect(statSync(file).size).toBeGreaterThan(whole);
    expect((await other.load("ws")).map((c) => c.entityId)).toEqual(["a", "b", "d"]);
    await other.close();
    await store.close();
  });

  it("a file that is only a torn line loads as empty", async () => {
    const dir = tempDir();
    const store = await FileStore.open({ directory: dir });
    writeFileSync(store.fileOf("ws"), '{"namespace":"ws","chan');
    expect(await store.load("ws")).toEqual([]);
    await store.save([set("a", 1)]);
    expect((await store.load("ws")).map((c) => c.entityId)).toEqual(["a"]);
    expect(lines(store.fileOf("ws"))).toHaveLength(2);
    await store.close();
  });

  it("a line from another namespace is corruption", async () => {
    const { store, file } = await storeWith([[set("a", 1)]]);
    appendFileSync(
      file,
      `{"namespace":"other","changeType":"set","entityType":"item","entityID":"x","entity":1,"timestamp":"2025-01-01T00:00:00Z"}\n`,
    );
    expect(((await caught(store.load("ws"))) as CorruptionError).line).toBe(2);
    await store.close();
  });
});
