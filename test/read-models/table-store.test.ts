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
        { id: "a", model, lastEventPosition: 7, revision: 0 },
        { id: "gone", model: undefined, lastEventPosition: 8, revision: r0 },
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
    expect(store[projectorLoadNow]("M", "a")?.model).toEqual({ n: 1, tags: ["a"] });
    expect(await store.load("M", "gone")).toBeUndefined();
    expect((await store.getProjectionStatus("p"))?.checkpoint).toBe(8);
    const page = await store.query({ modelType: "M", filters: [], sort: [] });
    expect(page.items.map((i) => i.model)).toEqual([{ n: 1, tags: ["a"] }]);
  });

  it("refuses a projector's batch with a bad model, id or revision as a whole: nothing written, checkpoint kept", async () => {
    const store = new MemoryReadModelStore({ maxValueBytes: 100 });
    await store.updateProjectionStatus(status(1));
    const cases: [unknown[], string][] = [
      [[{ id: "a", model: { s: "x".repeat(200) }, lastEventPosition: 2, revision: 0 }], ErrorCode.TooLarge],
      [[{ id: "a", model: { n: 1n }, lastEventPosition: 2, revision: 0 }], ErrorCode.InvalidValue],
      [[{ id: "", model: {}, lastEventPosition: 2, revision: 0 }], ErrorCode.InvalidName],
      [
        [
          { id: "b", model: {}, lastEventPosition: 2, revision: 0 },
          { id: "a", model: {}, lastEventPosition: 2, revision: 4 },
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
});
