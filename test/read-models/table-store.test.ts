/**
 * The in-memory table behind the memory and file read-model stores: batch
 * revisions across model types and repeated ids, the projector's batch
 * path (same checks and atomicity as saveWithCheckpoint), and copies.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/index.js";
import { MemoryReadModelStore } from "../../src/memory/index.js";
import { projectorLoadNow, projectorSaveBatch } from "../../src/read-models/base.js";
import { ProjectionStatus, type ProjectionStatusRecord, type ReadModelMetadata } from "../../src/read-models/index.js";
import { type ProjectedEntry, plainWithin } from "../../src/read-models/prepare.js";

const meta = (modelType: string, id: string, lastEventPosition = 1): ReadModelMetadata => ({
  id,
  modelType,
  schemaVersion: 1,
  lastUpdated: new Date(),
  lastEventPosition,
  metadata: {},
});
const status = (checkpoint: number): ProjectionStatusRecord => ({
  name: "p",
  status: ProjectionStatus.CatchingUp,
  checkpoint,
  updatedAt: new Date(),
});
const batch = { modelType: "M", schemaVersion: 2, lastUpdated: new Date(0), metadata: { projection: "p" } };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("TableReadModelStore batches", () => {
  it("gives each write of a batch that mixes model types and repeats ids the revision after the earlier ones", async () => {
    const store = new MemoryReadModelStore();
    const revisions = await store.saveWithCheckpoint(
      [
        { type: "save", model: { v: 1 }, metadata: meta("A", "x") },
        { type: "save", model: { v: 1 }, metadata: meta("B", "x") },
        { type: "save", model: { v: 2 }, metadata: meta("A", "x"), expectedRevision: 1 },
        { type: "delete", modelType: "B", id: "x", expectedRevision: 2 },
        { type: "save", model: { v: 3 }, metadata: meta("B", "x"), expectedRevision: 0 },
      ],
      status(5),
    );
    expect(revisions).toEqual([1, 2, 3, 4, 5]);
    expect((await store.load("A", "x"))?.model).toEqual({ v: 2 });
    expect(await store.load("B", "x")).toMatchObject({ model: { v: 3 }, revision: 5 });
    const conflict = await rejection(
      store.saveWithCheckpoint(
        [
          { type: "save", model: { v: 9 }, metadata: meta("A", "y") },
          { type: "save", model: { v: 9 }, metadata: meta("A", "y"), expectedRevision: 0 },
        ],
        status(6),
      ),
    );
    expect(isStatelogError(conflict, ErrorCode.VersionConflict)).toBe(true);
    expect(await store.load("A", "y")).toBeUndefined();
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(5);
  });

  it("writes a projector's batch with the checks, metadata and atomic checkpoint of saveWithCheckpoint", async () => {
    const store = new MemoryReadModelStore();
    const r0 = await store.save({ old: true }, meta("M", "gone"));
    const model = { n: 1, tags: ["a"] };
    const revisions = await store[projectorSaveBatch](
      batch,
      [
        { id: "a", value: model, lastEventPosition: 7, revision: 0 },
        { id: "gone", value: undefined, lastEventPosition: 8, revision: r0 },
      ],
      status(8),
    );
    expect(revisions).toEqual([r0 + 1, r0 + 2]);
    model.tags.push("changed after the save");
    const a = await store.load<typeof model>("M", "a");
    expect(a?.model).toEqual({ n: 1, tags: ["a"] });
    expect(a?.metadata).toEqual({
      id: "a",
      modelType: "M",
      schemaVersion: 2,
      lastUpdated: new Date(0),
      lastEventPosition: 7,
      metadata: { projection: "p" },
    });
    a?.model.tags.push("changed by a reader");
    expect(store[projectorLoadNow]("M", "a")?.value).toEqual({ n: 1, tags: ["a"] });
    expect(await store.load("M", "gone")).toBeUndefined();
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(8);
    const page = await store.query({ modelType: "M", filters: [], sort: [] });
    expect(page.items.map((i) => i.model)).toEqual([{ n: 1, tags: ["a"] }]);
  });

  it("refuses a projector's batch with a bad model, id or revision as a whole: nothing written, checkpoint kept", async () => {
    const store = new MemoryReadModelStore({ maxValueBytes: 100 });
    await store.updateProjectionStatus(status(1));
    const cases: [unknown[], string][] = [
      [[{ id: "a", value: { s: "x".repeat(200) }, lastEventPosition: 2, revision: 0 }], ErrorCode.TooLarge],
      [[{ id: "a", value: { n: 1n }, lastEventPosition: 2, revision: 0 }], ErrorCode.InvalidValue],
      [[{ id: "", value: {}, lastEventPosition: 2, revision: 0 }], ErrorCode.InvalidName],
      [
        [
          { id: "b", value: {}, lastEventPosition: 2, revision: 0 },
          { id: "a", value: {}, lastEventPosition: 2, revision: 4 },
        ],
        ErrorCode.VersionConflict,
      ],
    ];
    for (const [models, code] of cases) {
      const error = await rejection(store[projectorSaveBatch](batch, models as never, status(2)));
      expect(isStatelogError(error, code), `${code}: ${String(error)}`).toBe(true);
    }
    expect(await store.list("M")).toEqual([]);
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(1);
    await store.close();
    expect(isStatelogError(await rejection(store[projectorSaveBatch](batch, [], status(3))), ErrorCode.Closed)).toBe(
      true,
    );
  });

  it("keeps the entries a projector hands over as they are when their models are plain JSON data, else a copy", async () => {
    const store = new MemoryReadModelStore({ maxValueBytes: 100 });
    // Entries as the projector gets them: from the store's own load (a model not stored yet: an entry without one).
    const entry = (id: string, value: unknown, lastEventPosition: number) => {
      const e = store[projectorLoadNow]("M", id);
      expect(e).toMatchObject({ id, value: undefined, revision: 0 });
      e.value = value;
      e.lastEventPosition = lastEventPosition;
      return e;
    };
    const plain = entry("a", { n: 1, tags: ["x"] }, 3);
    const model = plain.value;
    const negativeZero = entry("b", { n: -0 }, 4);
    const revisions = await store[projectorSaveBatch](batch, [plain, negativeZero], status(4), true);
    expect(revisions).toEqual([1, 2]);
    // The table keeps the entry written, with the revision its save got; a model that is not plain JSON is copied.
    expect([plain.revision, negativeZero.revision]).toEqual([1, 2]);
    expect(plain.value).toBe(model);
    expect(Object.is((negativeZero.value as { n: number }).n, 0)).toBe(true);
    // What the projector loads next, and what a reader loads, are copies.
    const again = store[projectorLoadNow]("M", "a");
    expect(again).toMatchObject({ id: "a", value: { n: 1, tags: ["x"] }, revision: 1, lastEventPosition: 3 });
    expect(again.value).not.toBe(model);
    (again.value as { tags: string[] }).tags.push("changed by the projector");
    const read = await store.load<{ n: number; tags: string[] }>("M", "a");
    expect(read?.model).toEqual({ n: 1, tags: ["x"] });
    expect(read?.metadata).toEqual({
      id: "a",
      modelType: "M",
      schemaVersion: 2,
      lastUpdated: new Date(0),
      lastEventPosition: 3,
      metadata: { projection: "p" },
    });
    read?.model.tags.push("changed by a reader");
    expect(store[projectorLoadNow]("M", "a")?.value).toEqual({ n: 1, tags: ["x"] });
    // The load checks an id it does not find (the ids of handed-over entries are not checked again).
    let invalid: unknown;
    try {
      store[projectorLoadNow]("M", "");
    } catch (error) {
      invalid = error;
    }
    expect(isStatelogError(invalid, ErrorCode.InvalidName)).toBe(true);
    // A handed-over model too large is refused like any other: nothing written.
    const large = entry("c", { s: "x".repeat(200) }, 5);
    expect(
      isStatelogError(await rejection(store[projectorSaveBatch](batch, [large], status(5), true)), ErrorCode.TooLarge),
    ).toBe(true);
    expect(await store.list("M")).toEqual(["a", "b"]);
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(4);
  });

  it("tells plain JSON data, stored as it is, from what needs a copy", () => {
    for (const value of [null, true, "s", 1.5, [], [1, "a", null], { a: { b: [{ c: 1 }] } }]) {
      expect(plainWithin(value, 1000), JSON.stringify(value)).toBe(true);
    }
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    const sparse: number[] = [1];
    sparse[2] = 3;
    const cases: [string, unknown][] = [
      ["-0", { n: -0 }],
      ["NaN", [Number.NaN]],
      ["Infinity", Number.POSITIVE_INFINITY],
      ["undefined", { a: undefined }],
      ["a function", { f: () => 1 }],
      ["a Date", { d: new Date(0) }],
      ["a null-prototype object", Object.create(null)],
      ["a __proto__ key", JSON.parse('{"__proto__": 1}')],
      ["a hole", sparse],
      ["a class instance", new (class Point {})()],
      ["an array with its own toJSON", Object.assign([1, 2], { toJSON: () => "x" })],
      ["an array of another class", new (class Row extends Array<number> {})()],
      ["a bigint", 1n],
      ["too deep", deep],
    ];
    for (const [what, value] of cases) expect(plainWithin(value, 1000), what).toBe(false);
    expect(plainWithin({ s: "x".repeat(200) }, 100)).toBe(false);
  });

  it("takes a projector's map of a batch's entries as the type's own when it holds none of that type", async () => {
    const store = new MemoryReadModelStore({ indexes: ["n"] });
    const byId = new Map<string, ProjectedEntry>();
    for (const [id, n] of [
      ["a", 3],
      ["b", 1],
      ["c", 2],
    ] as const) {
      const e = store[projectorLoadNow]("M", id);
      e.value = { n };
      e.lastEventPosition = n;
      byId.set(id, e);
    }
    const first = [...byId.values()];
    expect(await store[projectorSaveBatch](batch, first, status(3), true, byId)).toEqual([1, 2, 3]);
    expect(first.map((e) => e.revision)).toEqual([1, 2, 3]);
    expect(await store.list("M")).toEqual(["a", "b", "c"]);
    const sorted = await store.query({ modelType: "M", filters: [], sort: [{ path: "n", direction: "asc" }] });
    expect(sorted.items.map((i) => i.metadata.id)).toEqual(["b", "c", "a"]);
    // The next batch changes one model and deletes another: written into the table as usual.
    const a = store[projectorLoadNow]("M", "a");
    a.value = { n: 0 };
    a.lastEventPosition = 4;
    const next = new Map([["a", a]]);
    const gone = { id: "c", value: undefined, lastEventPosition: 5, revision: 3 };
    expect(await store[projectorSaveBatch](batch, [a, gone], status(5), true, next)).toEqual([4, 5]);
    expect(await store.list("M")).toEqual(["a", "b"]);
    expect((await store.load("M", "a"))?.revision).toBe(4);
    const again = await store.query({ modelType: "M", filters: [], sort: [{ path: "n", direction: "asc" }] });
    expect(again.items.map((i) => [i.metadata.id, i.model])).toEqual([
      ["a", { n: 0 }],
      ["b", { n: 1 }],
    ]);
    expect(await store.save({ n: 9 }, meta("M", "d"))).toBe(6);
    expect(await store.list("M")).toEqual(["a", "b", "d"]);
  });
});
