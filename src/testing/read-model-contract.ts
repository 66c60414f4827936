/**
 * The ReadModelStore conformance suite: one set of tests every read-model
 * store passes unchanged, one function per area — save/load/delete/list,
 * revisions and conflicts, metadata, projection status, atomic
 * checkpoints (when declared), queries (examples and a model-based test
 * against a plain array), close, and durability (when the factory can
 * reopen).
 */
import { ErrorCode } from "../index.js";
import type { ProjectionStatusRecord, ReadModelMetadata, ReadModelStore } from "../read-models/index.js";
import { expectCode } from "./assert.js";
import { uniqueName } from "./fixtures.js";
import {
  type ReadModelStoreContractOptions,
  type ReadModelStoreFactory,
  readModelMetadata,
  statusRecord,
} from "./read-model-fixtures.js";
import { describeDurability, describeQueries } from "./read-model-query-areas.js";
import { afterEach, describe, expect, it } from "./vitest.js";

export type { ReadModelStoreContractOptions, ReadModelStoreFactoryOptions } from "./read-model-fixtures.js";
export { readModelMetadata } from "./read-model-fixtures.js";

type Factory = ReadModelStoreFactory;
const status = statusRecord;

/**
 * Registers the ReadModelStore conformance tests for one backend.
 * @param factory opens a store (tests use unique model types, so one shared backend is fine)
 */
export function describeReadModelStoreContract(
  name: string,
  factory: Factory,
  options: ReadModelStoreContractOptions = {},
): void {
  const open: ReadModelStore[] = [];
  const fresh: Factory = async (config) => {
    const store = await factory(config);
    open.push(store);
    return store;
  };
  describe(`ReadModelStore contract: ${name}`, { timeout: options.timeoutMs ?? 30_000 }, () => {
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });
    describeBasics(fresh);
    describeRevisions(fresh);
    describeMetadata(fresh);
    describeStatus(fresh);
    describeAtomicCheckpoint(fresh);
    describeQueries(fresh, options);
    describeClose(fresh);
    if (options.reopen) describeDurability(fresh, options.reopen);
  });
}

function describeBasics(fresh: Factory): void {
  describe("save, load, delete, list", () => {
    it("loads what was saved, as copies; a missing model is undefined", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const model = { id: "a", total: 3, lines: [{ sku: "x" }] };
      await store.save(model, readModelMetadata(type, "a"));
      model.lines.push({ sku: "mutated" });
      const loaded = await store.load<typeof model>(type, "a");
      expect(loaded?.model).toEqual({ id: "a", total: 3, lines: [{ sku: "x" }] });
      loaded?.model.lines.push({ sku: "again" });
      expect((await store.load<typeof model>(type, "a"))?.model.lines).toEqual([{ sku: "x" }]);
      expect(await store.load(type, "missing")).toBeUndefined();
      expect(await store.load(uniqueName("Other"), "a")).toBeUndefined();
    });

    it("a save replaces; delete says whether it existed; list gives sorted ids per type", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const other = uniqueName("U");
      for (const id of ["b", "a/1", "c", "a"]) await store.save({ id }, readModelMetadata(type, id));
      await store.save({ id: "z" }, readModelMetadata(other, "z"));
      await store.save({ id: "b", v: 2 }, readModelMetadata(type, "b"));
      expect((await store.load(type, "b"))?.model).toEqual({ id: "b", v: 2 });
      expect(await store.list(type)).toEqual(["a", "a/1", "b", "c"]);
      expect(await store.delete(type, "c")).toBe(true);
      expect(await store.delete(type, "c")).toBe(false);
      expect(await store.load(type, "c")).toBeUndefined();
      expect(await store.list(type)).toEqual(["a", "a/1", "b"]);
      expect(await store.list(other)).toEqual(["z"]);
      expect(await store.list(uniqueName("Empty"))).toEqual([]);
    });

    it("refuses bad input with typed errors and keeps what is stored", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      await store.save({ keep: true }, readModelMetadata(type, "k"));
      await expectCode(store.save({ n: 10n }, readModelMetadata(type, "k")), ErrorCode.InvalidValue);
      await expectCode(store.save({}, readModelMetadata("a/b", "k")), ErrorCode.InvalidName);
      await expectCode(store.save({}, readModelMetadata(type, "")), ErrorCode.InvalidName);
      await expectCode(
        store.save({}, { ...readModelMetadata(type, "k"), lastUpdated: new Date(Number.NaN) }),
        ErrorCode.Validation,
      );
      await expectCode(store.save({ big: "x".repeat(2_000_000) }, readModelMetadata(type, "k")), ErrorCode.TooLarge);
      await expectCode(store.load("a/b", "k"), ErrorCode.InvalidName);
      await expectCode(store.save({}, readModelMetadata(type, "k"), { expectedRevision: -1 }), ErrorCode.Validation);
      // Free-form metadata is a plain object of strings: an array or a Map would be stored as something else.
      for (const free of [["x", "y"], new Map([["a", "b"]])]) {
        await expectCode(
          store.save({}, { ...readModelMetadata(type, "k"), metadata: free as never }),
          ErrorCode.Validation,
        );
      }
      // A query whose filters or sort have holes is bad input like any other malformed query.
      const holes = (item: object) => Object.assign(new Array(2), { 1: item });
      await expectCode(
        store.query({ modelType: type, filters: holes({ path: "keep", op: "eq", value: true }), sort: [] }),
        ErrorCode.Validation,
      );
      await expectCode(
        store.query({ modelType: type, filters: [], sort: holes({ path: "keep", direction: "asc" }) }),
        ErrorCode.Validation,
      );
      expect((await store.load(type, "k"))?.model).toEqual({ keep: true });
    });
  });
}

function describeRevisions(fresh: Factory): void {
  describe("revisions and conflicts", () => {
    it("every write of a model raises its revision; load returns it", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const r1 = await store.save({ v: 1 }, readModelMetadata(type, "a"));
      expect(r1).toBeGreaterThan(0);
      expect((await store.load(type, "a"))?.revision).toBe(r1);
      const r2 = await store.save({ v: 2 }, readModelMetadata(type, "a"));
      expect(r2).toBeGreaterThan(r1);
      expect((await store.load(type, "a"))?.revision).toBe(r2);
    });

    it("expectedRevision: the current one passes, another fails with both numbers and writes nothing", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const r1 = await store.save({ v: 1 }, readModelMetadata(type, "a"), { expectedRevision: 0 });
      const r2 = await store.save({ v: 2 }, readModelMetadata(type, "a"), { expectedRevision: r1 });
      const stale = (await expectCode(
        store.save({ v: 3 }, readModelMetadata(type, "a"), { expectedRevision: r1 }),
        ErrorCode.VersionConflict,
      )) as { expected: number; actual: number };
      expect(stale.expected).toBe(r1);
      expect(stale.actual).toBe(r2);
      await expectCode(
        store.save({ v: 3 }, readModelMetadata(type, "a"), { expectedRevision: 0 }),
        ErrorCode.VersionConflict,
      );
      const missing = (await expectCode(
        store.save({ v: 1 }, readModelMetadata(type, "b"), { expectedRevision: 5 }),
        ErrorCode.VersionConflict,
      )) as { actual: number };
      expect(missing.actual).toBe(0);
      expect((await store.load(type, "a"))?.model).toEqual({ v: 2 });
      expect(await store.load(type, "b")).toBeUndefined();
    });

    it("delete checks expectedRevision; a model created again never reuses a revision", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const r1 = await store.save({ v: 1 }, readModelMetadata(type, "a"));
      await expectCode(store.delete(type, "a", { expectedRevision: r1 + 100 }), ErrorCode.VersionConflict);
      expect(await store.load(type, "a")).toBeDefined();
      expect(await store.delete(type, "a", { expectedRevision: r1 })).toBe(true);
      const again = await store.save({ v: 2 }, readModelMetadata(type, "a"), { expectedRevision: 0 });
      expect(again).toBeGreaterThan(r1);
      await expectCode(
        store.save({ v: 3 }, readModelMetadata(type, "a"), { expectedRevision: r1 }),
        ErrorCode.VersionConflict,
      );
    });

    it("of two writers expecting the same revision, exactly one wins", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const r1 = await store.save({ v: 0 }, readModelMetadata(type, "a"));
      const results = await Promise.allSettled(
        [1, 2, 3].map((v) => store.save({ v }, readModelMetadata(type, "a"), { expectedRevision: r1 })),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results)
        if (r.status === "rejected") expect((r.reason as { code: string }).code).toBe(ErrorCode.VersionConflict);
    });

    it("of concurrent deletes of one model, exactly one says it existed", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      for (const id of ["a", "b", "c"]) await store.save({ id }, readModelMetadata(type, id));
      for (const id of ["a", "b", "c"]) {
        const existed = await Promise.all([1, 2, 3, 4].map(() => store.delete(type, id)));
        expect(existed.filter(Boolean), `deletes of ${id}`).toHaveLength(1);
        expect(await store.load(type, id)).toBeUndefined();
      }
    });
  });
}

function describeMetadata(fresh: Factory): void {
  describe("metadata", () => {
    it("round-trips every field (a Date back as a Date) and is a copy", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const metadata: ReadModelMetadata = {
        id: "p1",
        modelType: type,
        schemaVersion: 3,
        lastUpdated: new Date("2024-12-31T23:59:59.999Z"),
        lastEventPosition: 12_345,
        metadata: { source: "test", "with space": "é ✓" },
      };
      await store.save({ x: 1 }, metadata);
      const loaded = await store.load(type, "p1");
      expect(loaded?.metadata).toEqual(metadata);
      expect(loaded?.metadata.lastUpdated).toBeInstanceOf(Date);
      const page = await store.query({ modelType: type, filters: [], sort: [] });
      expect(page.items[0]?.metadata).toEqual(metadata);
      expect(page.items[0]?.revision).toBe(loaded?.revision);
    });
  });
}

function describeStatus(fresh: Factory): void {
  describe("projection status", () => {
    it("writes and reads a status record; a missing one is undefined", async () => {
      const store = await fresh({ indexes: [] });
      const name = uniqueName("proj");
      expect(await store.getProjectionStatus(name)).toBeUndefined();
      const record: ProjectionStatusRecord = {
        name,
        status: "failed",
        checkpoint: 41,
        updatedAt: new Date("2025-05-06T07:08:09.010Z"),
        lagEvents: 3,
        lagMs: 1500,
        lastError: "boom",
        failedPosition: 42,
      };
      await store.updateProjectionStatus(record);
      expect(await store.getProjectionStatus(name)).toEqual(record);
      await store.updateProjectionStatus(status(name, 50));
      expect(await store.getProjectionStatus(name)).toEqual(status(name, 50));
    });

    it("no model id collides with a status", async () => {
      const store = await fresh({ indexes: [] });
      const name = uniqueName("proj");
      const ids = ["status", "_status", "projection_status", "s", `s.${name}`, name, ".."];
      for (const id of ids) await store.save({ id }, readModelMetadata(name, id));
      await store.updateProjectionStatus(status(name, 7));
      for (const id of ids) expect((await store.load(name, id))?.model).toEqual({ id });
      expect(await store.list(name)).toEqual([...ids].sort());
      expect((await store.getProjectionStatus(name))?.checkpoint).toBe(7);
    });

    it("listProjectionStatuses (where the store has it): every status, sorted by name, and no model", async (ctx) => {
      const store = await fresh({ indexes: [] });
      if (typeof store.listProjectionStatuses !== "function") ctx.skip();
      const list = () => store.listProjectionStatuses?.() ?? Promise.resolve([]);
      const prefix = uniqueName("listed");
      const names = [`${prefix}-b`, `${prefix}-a`, `${prefix}-c`];
      for (const [i, name] of names.entries()) await store.updateProjectionStatus(status(name, i + 1));
      await store.save({ id: "m" }, readModelMetadata(`${prefix}-model`, "m"));
      const listed = await list();
      const ours = listed.filter((r) => r.name.startsWith(prefix));
      expect(ours).toEqual([status(`${prefix}-a`, 2), status(`${prefix}-b`, 1), status(`${prefix}-c`, 3)]);
      const all = listed.map((r) => r.name);
      expect(all).toEqual([...all].sort());
    });

    it("deleteProjectionStatus (where the store has it): removes one status, says whether there was one", async (ctx) => {
      const store = await fresh({ indexes: [] });
      if (typeof store.deleteProjectionStatus !== "function") ctx.skip();
      const remove = (name: string) => store.deleteProjectionStatus?.(name) ?? Promise.resolve(false);
      const prefix = uniqueName("removed");
      const [a, b] = [`${prefix}-a`, `${prefix}-b`];
      await store.updateProjectionStatus(status(a, 1));
      await store.updateProjectionStatus(status(b, 2));
      await store.save({ id: "m" }, readModelMetadata(a, "m"));
      expect(await remove(a)).toBe(true);
      expect(await remove(a)).toBe(false);
      expect(await remove(uniqueName("never"))).toBe(false);
      expect(await store.getProjectionStatus(a)).toBeUndefined();
      expect(await store.getProjectionStatus(b)).toEqual(status(b, 2));
      expect((await store.load(a, "m"))?.model).toEqual({ id: "m" });
      const listed = (await store.listProjectionStatuses?.()) ?? [];
      expect(listed.some((r) => r.name === a)).toBe(false);
      await store.updateProjectionStatus(status(a, 3));
      expect(await store.getProjectionStatus(a)).toEqual(status(a, 3));
    });

    it("refuses an invalid record with a ValidationError", async () => {
      const store = await fresh({ indexes: [] });
      const name = uniqueName("proj");
      await expectCode(
        store.updateProjectionStatus({ ...status(name, 1), status: "done" as never }),
        ErrorCode.Validation,
      );
      await expectCode(store.updateProjectionStatus({ ...status(name, 1), checkpoint: -1 }), ErrorCode.Validation);
      await expectCode(
        store.updateProjectionStatus({ ...status(name, 1), updatedAt: "x" as never }),
        ErrorCode.Validation,
      );
      expect(await store.getProjectionStatus(name)).toBeUndefined();
    });
  });
}

function describeAtomicCheckpoint(fresh: Factory): void {
  describe("saveWithCheckpoint (atomicCheckpoint)", () => {
    it("is there exactly when the capability says so; writes models and the status together", async () => {
      const store = await fresh({ indexes: [] });
      expect(typeof store.saveWithCheckpoint === "function").toBe(store.capabilities.atomicCheckpoint);
      if (!store.saveWithCheckpoint) return;
      const type = uniqueName("T");
      const name = uniqueName("proj");
      const r0 = await store.save({ v: 0 }, readModelMetadata(type, "gone"));
      const revisions = await store.saveWithCheckpoint(
        [
          { type: "save", model: { v: 1 }, metadata: readModelMetadata(type, "a", 5) },
          { type: "save", model: { v: 2 }, metadata: readModelMetadata(type, "a", 6) },
          { type: "delete", modelType: type, id: "gone", expectedRevision: r0 },
          { type: "delete", modelType: type, id: "never" },
        ],
        status(name, 6),
      );
      expect(revisions).toHaveLength(4);
      expect(revisions[1]).toBeGreaterThan(revisions[0] as number);
      expect(revisions[3]).toBe(0);
      const a = await store.load(type, "a");
      expect(a?.model).toEqual({ v: 2 });
      expect(a?.revision).toBe(revisions[1]);
      expect(await store.load(type, "gone")).toBeUndefined();
      expect((await store.getProjectionStatus(name))?.checkpoint).toBe(6);
    });

    it("one conflict fails the whole batch: no model and no checkpoint is written", async () => {
      const store = await fresh({ indexes: [] });
      if (!store.saveWithCheckpoint) return;
      const type = uniqueName("T");
      const name = uniqueName("proj");
      await store.updateProjectionStatus(status(name, 1));
      const r = await store.save({ v: 0 }, readModelMetadata(type, "b"));
      await expectCode(
        store.saveWithCheckpoint(
          [
            { type: "save", model: { v: 1 }, metadata: readModelMetadata(type, "a") },
            { type: "save", model: { v: 1 }, metadata: readModelMetadata(type, "b"), expectedRevision: r + 1 },
          ],
          status(name, 2),
        ),
        ErrorCode.VersionConflict,
      );
      await expectCode(
        store.saveWithCheckpoint(
          [{ type: "save", model: { n: 1n }, metadata: readModelMetadata(type, "a") }],
          status(name, 2),
        ),
        ErrorCode.InvalidValue,
      );
      expect(await store.load(type, "a")).toBeUndefined();
      expect((await store.load(type, "b"))?.revision).toBe(r);
      expect((await store.getProjectionStatus(name))?.checkpoint).toBe(1);
    });
  });
}

function describeClose(fresh: Factory): void {
  describe("close", () => {
    it("is idempotent; every call after it fails with a ClosedError", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      await store.save({}, readModelMetadata(type, "a"));
      await store.close();
      await store.close();
      await expectCode(store.load(type, "a"), ErrorCode.Closed);
      await expectCode(store.save({}, readModelMetadata(type, "a")), ErrorCode.Closed);
      await expectCode(store.delete(type, "a"), ErrorCode.Closed);
      await expectCode(store.list(type), ErrorCode.Closed);
      await expectCode(store.query({ modelType: type, filters: [], sort: [] }), ErrorCode.Closed);
      await expectCode(store.updateProjectionStatus(status("p", 1)), ErrorCode.Closed);
      await expectCode(store.getProjectionStatus("p"), ErrorCode.Closed);
    });

    it("writes called before close() are carried out; close() resolves after them", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      await store.save({ n: 0 }, readModelMetadata(type, "a"));
      let settled = 0;
      const writes = [
        store.save({ n: 1 }, readModelMetadata(type, "b")),
        store.delete(type, "a"),
        store.updateProjectionStatus(status("p", 1)),
        store.save({ n: 2 }, readModelMetadata(type, "c")),
      ].map((write) =>
        Promise.resolve(write).finally(() => {
          settled++;
        }),
      );
      await store.close();
      expect(settled, "writes settled when close() resolved").toBe(writes.length);
      const results = await Promise.allSettled(writes);
      expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok"))).toEqual(["ok", "ok", "ok", "ok"]);
    });

    it("an aborted signal fails a call with an AbortError and writes nothing", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const signal = AbortSignal.abort();
      await expectCode(store.save({}, readModelMetadata(type, "a"), { signal }), ErrorCode.Aborted);
      await expectCode(store.load(type, "a", { signal }), ErrorCode.Aborted);
      await expectCode(store.query({ modelType: type, filters: [], sort: [] }, { signal }), ErrorCode.Aborted);
      expect(await store.load(type, "a")).toBeUndefined();
    });

    it("a signal that is not an AbortSignal is a ValidationError and writes nothing", async () => {
      const store = await fresh({ indexes: [] });
      const type = uniqueName("T");
      const signal = { aborted: true } as unknown as AbortSignal;
      await expectCode(store.save({}, readModelMetadata(type, "a"), { signal }), ErrorCode.Validation);
      await expectCode(store.load(type, "a", { signal }), ErrorCode.Validation);
      await expectCode(store.query({ modelType: type, filters: [], sort: [] }, { signal }), ErrorCode.Validation);
      expect(await store.load(type, "a")).toBeUndefined();
    });

    it("closes through await using (Symbol.asyncDispose)", async () => {
      const store = await fresh({ indexes: [] });
      await store[Symbol.asyncDispose]();
      await expectCode(store.list("T"), ErrorCode.Closed);
    });
  });
}
