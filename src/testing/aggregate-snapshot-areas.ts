/**
 * Areas of the event-sourced repository suite: snapshots (schedules,
 * `snapshotVersion`, loads at a version, failures), `maxEvents`, and edge
 * cases (size limits, a throwing evolve, closed stores, bad options).
 */
import type { EventStore } from "../events/index.js";
import { ErrorCode, type LimitExceededError } from "../index.js";
import { EventSourcedRepository, type SnapshotErrorInfo, type SnapshotStore } from "../repository/index.js";
import type { FreshAggregateContext } from "./aggregate-areas.js";
import { added, evolveTally, initialTally, range, type TallyEvent, type TallyState } from "./aggregate-fixtures.js";
import { expectCode } from "./assert.js";
import { uniqueName } from "./fixtures.js";
import { describe, expect, it } from "./vitest.js";

/** A snapshot store whose calls fail. */
function failingSnapshots(): SnapshotStore {
  const fail = async () => {
    throw new Error("snapshot store down");
  };
  return {
    capabilities: { durable: false },
    save: fail,
    load: fail,
    delete: fail,
    close: async () => {},
    [Symbol.asyncDispose]: async () => {},
  };
}

/** Snapshots every N, on demand, never; snapshotVersion; loads at a version; failures; maxEvents. */
export function describeAggregateSnapshots(fresh: FreshAggregateContext): void {
  describe("snapshots", () => {
    it("snapshotEvery N writes a snapshot after a save that crosses a multiple of N; load starts from it", async () => {
      const t = fresh();
      const repo = await t.repo({ snapshotEvery: 3 });
      const id = uniqueName("t");
      await repo.save(id, added(1, 2));
      await repo.flushSnapshots();
      expect(await (await t.snapshots()).load(`tally-${id}`)).toBeUndefined();
      await repo.save(id, added(3, 2)); // 2 → 4 crosses 3
      await repo.flushSnapshots();
      const snap = await (await t.snapshots()).load(`tally-${id}`);
      expect(snap).toMatchObject({ streamId: `tally-${id}`, version: 4, snapshotVersion: 1 });
      expect((snap?.state as TallyState | undefined)?.items).toEqual(range(4));
      await repo.save(id, added(5));
      const loaded = await repo.load(id);
      expect(loaded).toMatchObject({ version: 5, snapshotVersionAt: 4, eventsFolded: 1 });
      expect(loaded.state.items).toEqual(range(5));
      const full = await repo.load(id, { useSnapshot: false });
      expect(full).toMatchObject({ version: 5, snapshotVersionAt: 0, eventsFolded: 5 });
      expect(full.state).toEqual(loaded.state);
    });

    it("createSnapshot: true snapshots that save; false skips a due one; no snapshotEvery means none", async () => {
      const t = fresh();
      const repo = await t.repo();
      const snapshots = await t.snapshots();
      const id = uniqueName("t");
      await repo.save(id, added(1, 5));
      await repo.flushSnapshots();
      expect(await snapshots.load(`tally-${id}`)).toBeUndefined();
      await repo.save(id, added(6), { createSnapshot: true });
      await repo.flushSnapshots();
      expect((await snapshots.load(`tally-${id}`))?.version).toBe(6);
      const every = await t.repo({ snapshotEvery: 1 });
      await every.save(id, added(7), { createSnapshot: false });
      await every.flushSnapshots();
      expect((await snapshots.load(`tally-${id}`))?.version).toBe(6);
      const r = await every.handle(id, () => added(8));
      await every.flushSnapshots();
      const snap = await snapshots.load(`tally-${id}`);
      expect([snap?.version, (snap?.state as TallyState | undefined)?.items]).toEqual([8, range(8)]);
      expect(r.state.items).toEqual(range(8));
    });

    it("load({ version: v }) starts from the newest snapshot at or below v and folds exactly to v", async () => {
      const t = fresh();
      const repo = await t.repo({ snapshotEvery: 5 });
      const id = uniqueName("t");
      for (let n = 1; n <= 12; n++) await repo.save(id, added(n));
      await repo.flushSnapshots();
      const at7 = await repo.load(id, { version: 7 });
      expect(at7).toMatchObject({ version: 7, snapshotVersionAt: 5, eventsFolded: 2 });
      expect(at7.state.items).toEqual(range(7));
      expect(await repo.load(id, { version: 10 })).toMatchObject({ snapshotVersionAt: 10, eventsFolded: 0 });
      expect((await repo.load(id, { version: 3 })).state.items).toEqual(range(3));
      expect(await repo.load(id, { version: 3 })).toMatchObject({ snapshotVersionAt: 0, eventsFolded: 3 });
      expect((await repo.load(id, { version: 12, useSnapshot: false })).eventsFolded).toBe(12);
    });

    it("a snapshot of another snapshotVersion is ignored, and replaced by a load that folds many events", async () => {
      const t = fresh();
      const v1 = await t.repo({ snapshotEvery: 4 });
      const id = uniqueName("t");
      await v1.save(id, added(1, 8));
      await v1.flushSnapshots();
      expect((await v1.load(id)).snapshotVersionAt).toBe(8);
      // The state's shape changed: the new repository doubles every number.
      const v2 = await t.repo({
        snapshotEvery: 4,
        snapshotVersion: 2,
        evolve: (s, e) => (e.type === "added" ? { ...s, items: [...s.items, e.data.n * 2] } : s),
      });
      const loaded = await v2.load(id);
      expect(loaded).toMatchObject({ snapshotVersionAt: 0, eventsFolded: 8 });
      expect(loaded.state.items).toEqual(range(8).map((n) => n * 2));
      await v2.flushSnapshots();
      const replaced = await (await t.snapshots()).load(`tally-${id}`, { snapshotVersion: 2 });
      expect([replaced?.version, (replaced?.state as TallyState | undefined)?.items]).toEqual([
        8,
        range(8).map((n) => n * 2),
      ]);
      expect(await v2.load(id)).toMatchObject({ snapshotVersionAt: 8, eventsFolded: 0 });
    });

    it("a failed snapshot write is reported and does not fail the save; a failed read folds from the start", async () => {
      const t = fresh();
      const reports: SnapshotErrorInfo[] = [];
      const repo = await t.repo({
        snapshots: failingSnapshots(),
        snapshotEvery: 1,
        onSnapshotError: (i) => reports.push(i),
      });
      const id = uniqueName("t");
      expect((await repo.save(id, added(1, 2))).version).toBe(2);
      await repo.flushSnapshots();
      expect(reports.map((r) => [r.operation, r.streamId, r.version])).toContainEqual(["save", `tally-${id}`, 2]);
      expect(reports.every((r) => r.aggregateType === "tally" && String(r.error).includes("snapshot store down"))).toBe(
        true,
      );
      const loaded = await repo.load(id);
      expect([loaded.version, loaded.state.items]).toEqual([2, [1, 2]]);
      expect(reports.some((r) => r.operation === "load")).toBe(true);
    });

    it("maxEvents bounds the events one load folds: beyond it a LimitExceededError, never a truncated state", async () => {
      const t = fresh();
      const repo = await t.repo({ maxEvents: 5, snapshotEvery: 0 });
      const id = uniqueName("t");
      await repo.save(id, added(1, 8));
      const error = (await expectCode(repo.load(id), ErrorCode.LimitExceeded)) as LimitExceededError;
      expect([error.limit, error.max]).toEqual(["maxEvents", 5]);
      await expectCode(repo.load(id, { version: 6 }), ErrorCode.LimitExceeded);
      // A version that does not exist is not found, as without the limit.
      await expectCode(repo.load(id, { version: 100 }), ErrorCode.NotFound);
      await expectCode(repo.load(uniqueName("missing"), { version: 100 }), ErrorCode.NotFound);
      expect((await repo.load(id, { version: 5 })).state.items).toEqual(range(5));
      expect((await repo.load(id, { maxEvents: 8 })).state.items).toEqual(range(8));
      await expectCode(
        repo.handle(id, () => added(9)),
        ErrorCode.LimitExceeded,
      );
      // With a snapshot, the load folds only the events after it.
      await repo.save(id, added(9), { createSnapshot: true });
      await repo.flushSnapshots();
      await repo.save(id, added(10, 2));
      expect(await repo.load(id)).toMatchObject({ version: 11, snapshotVersionAt: 9, eventsFolded: 2 });
      await expectCode(repo.load(id, { useSnapshot: false }), ErrorCode.LimitExceeded);
    });
  });
}

/** Size limits, a throwing evolve, closed stores, bad options. */
export function describeAggregateEdgeCases(fresh: FreshAggregateContext): void {
  describe("edge cases", () => {
    it("events over the size limit: a TooLargeError, nothing appended", async () => {
      const t = fresh();
      await t.eventStore({ maxValueBytes: 1024 });
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1));
      const big = { type: "added" as const, data: { n: 2, pad: "x".repeat(2000) } } as unknown as TallyEvent;
      await expectCode(repo.save(id, [...added(2), big]), ErrorCode.TooLarge);
      await expectCode(
        repo.handle(id, () => [big]),
        ErrorCode.TooLarge,
      );
      expect(await t.storedNumbers(repo, id)).toEqual([1]);
    });

    it("an evolve that throws while loading surfaces its error", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, [...added(1), { type: "poison", data: {} }]);
      await expect(repo.load(id)).rejects.toThrow(/poison/);
      await expect(repo.handle(id, () => added(3))).rejects.toThrow(/poison/);
      expect((await repo.readEvents(id)).map((e) => e.type)).toEqual(["added", "poison"]);
    });

    it("a closed repository, or a closed event store, refuses every call with a ClosedError", async () => {
      const t = fresh();
      const repo = await t.repo({ snapshotEvery: 1 });
      const id = uniqueName("t");
      await repo.save(id, added(1));
      await repo.close();
      await repo.close();
      await expectCode(repo.load(id), ErrorCode.Closed);
      await expectCode(repo.save(id, added(2)), ErrorCode.Closed);
      await expectCode(
        repo.handle(id, () => added(2)),
        ErrorCode.Closed,
      );
      const other = await t.repo();
      await (await t.eventStore()).close();
      await expectCode(other.load(id), ErrorCode.Closed);
      await expectCode(other.save(id, added(2)), ErrorCode.Closed);
      await expectCode(
        other.handle(id, () => added(2)),
        ErrorCode.Closed,
      );
    });

    it("invalid options are a ConfigurationError naming the option", async () => {
      const t = fresh();
      const eventStore: EventStore = await t.eventStore();
      const base = { eventStore, aggregateType: "tally", initialState: initialTally, evolve: evolveTally };
      const refused = async (options: object, pattern: RegExp) => {
        const error = await expectCode(EventSourcedRepository.open(options as typeof base), ErrorCode.Configuration);
        expect(String(error)).toMatch(pattern);
      };
      await refused({ ...base, evolve: undefined }, /evolve/);
      await refused({ ...base, eventStore: {} }, /eventStore/);
      await refused({ ...base, aggregateType: "" }, /aggregateType/);
      // With the default stream names, types "order" and "order-line" could share stream "order-line-1".
      await refused({ ...base, aggregateType: "order-line" }, /aggregateType must not contain "-"/);
      const named = await EventSourcedRepository.open({
        ...base,
        aggregateType: "order-line",
        streamIdOf: (id: string) => `orderLine-${id}`,
      });
      expect(named.streamIdOf("1")).toBe("orderLine-1");
      await named.close();
      await refused({ ...base, snapshotEvery: -1 }, /snapshotEvery/);
      await refused({ ...base, maxEvents: 0 }, /maxEvents/);
      await refused({ ...base, snapshotFrequency: 10 }, /snapshotFrequency.*snapshotEvery/);
      await refused({ ...base, retry: { maxAttempts: 1.5 } }, /maxAttempts/);
    });
  });
}
