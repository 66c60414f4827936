/**
 * Areas of the event-sourced repository suite: loading and saving, and
 * commands (`handle`) with their retries. Each runs unchanged on every
 * event store.
 */
import { ExpectedVersion } from "../events/index.js";
import { ErrorCode, isVersionConflictError, type VersionConflictError } from "../index.js";
import type { AggregateContext, TallyEvent, TallyState } from "./aggregate-fixtures.js";
import { added, range } from "./aggregate-fixtures.js";
import { expectCode } from "./assert.js";
import { uniqueName } from "./fixtures.js";
import { describe, expect, it } from "./vitest.js";

/** Creates the context of one test (closed after it). */
export type FreshAggregateContext = () => AggregateContext;

/** load, save, expected versions, metadata, loads at a version, stream names, upcasting. */
export function describeAggregateLoadAndSave(fresh: FreshAggregateContext): void {
  describe("load and save", () => {
    it("save appends to `{aggregateType}-{id}` and load folds every event with its version", async () => {
      const t = fresh();
      const repo = await t.repo({ snapshots: undefined });
      const id = uniqueName("t");
      const first = await repo.save(id, added(1, 2), { expectedVersion: ExpectedVersion.NoStream });
      expect(first).toEqual({ id, streamId: `tally-${id}`, version: 2, appended: 2 });
      expect((await repo.save(id, added(3), { expectedVersion: 2 })).version).toBe(3);
      const loaded = await repo.load(id);
      expect(loaded).toMatchObject({ id, streamId: `tally-${id}`, version: 3, snapshotVersionAt: 0, eventsFolded: 3 });
      expect(loaded.state.items).toEqual([1, 2, 3]);
      expect((await (await t.eventStore()).readStream(`tally-${id}`)).length).toBe(3);
    });

    it("an aggregate without events is not found; its events are []", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("missing");
      const error = await expectCode(repo.load(id), ErrorCode.NotFound);
      expect(String(error)).toContain(id);
      await expectCode(repo.load(id, { version: 1 }), ErrorCode.NotFound);
      expect(await repo.readEvents(id)).toEqual([]);
    });

    it("a stale expectedVersion is a VersionConflictError { expected, actual } and appends nothing", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1, 2));
      const stale = (await expectCode(
        repo.save(id, added(3), { expectedVersion: 1 }),
        ErrorCode.VersionConflict,
      )) as VersionConflictError;
      expect([stale.expected, stale.actual]).toEqual([1, 2]);
      await expectCode(
        repo.save(id, added(3), { expectedVersion: ExpectedVersion.NoStream }),
        ErrorCode.VersionConflict,
      );
      expect(await t.storedNumbers(repo, id)).toEqual([1, 2]);
      expect((await repo.save(id, added(3), { expectedVersion: ExpectedVersion.Any })).version).toBe(3);
      expect((await repo.save(id, added(4), { expectedVersion: ExpectedVersion.StreamExists })).version).toBe(4);
    });

    it("expectedVersion on a missing stream: a number > 0 or stream_exists conflicts and creates nothing; 0 and no_stream create it", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      const e = (await expectCode(
        repo.save(id, added(1), { expectedVersion: 3 }),
        ErrorCode.VersionConflict,
      )) as VersionConflictError;
      expect(e.expected).toBe(3);
      await expectCode(
        repo.save(id, added(1), { expectedVersion: ExpectedVersion.StreamExists }),
        ErrorCode.VersionConflict,
      );
      await expectCode(repo.load(id), ErrorCode.NotFound);
      expect((await repo.save(id, added(1), { expectedVersion: 0 })).version).toBe(1);
      const other = uniqueName("t");
      expect((await repo.save(other, added(1), { expectedVersion: ExpectedVersion.NoStream })).version).toBe(1);
    });

    it("saving no events appends nothing and still checks expectedVersion", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      expect((await repo.save(id, [])).version).toBe(0);
      await expectCode(repo.save(id, [], { expectedVersion: ExpectedVersion.StreamExists }), ErrorCode.VersionConflict);
      await repo.save(id, added(1, 2));
      expect(await repo.save(id, [], { expectedVersion: 2 })).toMatchObject({ version: 2, appended: 0 });
      await expectCode(repo.save(id, [], { expectedVersion: 1 }), ErrorCode.VersionConflict);
      // A bad expectedVersion is bad input with or without events.
      for (const bad of [-1, 1.5, "bogus", 1n]) {
        await expectCode(repo.save(id, [], { expectedVersion: bad as never }), ErrorCode.Validation);
        await expectCode(repo.save(id, added(3), { expectedVersion: bad as never }), ErrorCode.Validation);
      }
      expect((await repo.load(id)).version).toBe(2);
    });

    it("metadata travels with the events (an event's own keys win) and comes back on read and to evolve", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      const own = added(2, 1, { causationId: "evt-0", userId: "u-1" });
      await repo.save(id, [...added(1), ...own], { metadata: { correlationId: "corr-1", causationId: "cmd-1" } });
      const events = await repo.readEvents(id);
      expect(events.map((e) => e.metadata)).toEqual([
        { correlationId: "corr-1", causationId: "cmd-1" },
        { correlationId: "corr-1", causationId: "evt-0", userId: "u-1" },
      ]);
      expect((await repo.load(id)).state.lastMetadata).toEqual({
        correlationId: "corr-1",
        causationId: "evt-0",
        userId: "u-1",
      });
      // A metadata option that is not a plain object is refused, also when the events carry metadata of their own.
      for (const bad of ["xy", ["x"], null, 7, new Map([["a", "b"]]), new Date(0)]) {
        await expectCode(repo.save(id, own, { metadata: bad as never }), ErrorCode.Validation);
        await expectCode(
          repo.handle(id, () => own, { metadata: bad as never }),
          ErrorCode.Validation,
        );
      }
      expect(await repo.readEvents(id)).toHaveLength(2);
    });

    it("load({ version: v }) folds exactly the first v events; a version past the end is not found", async () => {
      const t = fresh();
      const repo = await t.repo({ snapshots: undefined });
      const id = uniqueName("t");
      await repo.save(id, added(1, 5));
      for (const v of [1, 3, 5]) {
        const at = await repo.load(id, { version: v });
        expect([at.version, at.state.items]).toEqual([v, range(v)]);
      }
      await expectCode(repo.load(id, { version: 6 }), ErrorCode.NotFound);
      await expectCode(repo.load(id, { version: 0 }), ErrorCode.Validation);
    });

    it("streamIdOf names the streams; upcast turns stored old shapes into today's events before evolve", async () => {
      const t = fresh();
      const store = await t.eventStore();
      const id = uniqueName("t");
      await store.append(`legacy/${id}`, [
        { id: `${id}-1`, type: "tally.v1", data: { value: 7 }, timestamp: new Date() },
        { id: `${id}-2`, type: "added", data: { n: 8 }, timestamp: new Date() },
      ]);
      const repo = await t.repo({
        streamIdOf: (x) => `legacy/${x}`,
        upcast: (e) =>
          e.type === "tally.v1"
            ? { type: "added", data: { n: (e.data as { value: number }).value } }
            : (e as unknown as TallyEvent),
      });
      expect((await repo.load(id)).state.items).toEqual([7, 8]);
      expect((await repo.save(id, added(9))).streamId).toBe(`legacy/${id}`);
      expect((await repo.load(id)).state.items).toEqual([7, 8, 9]);
    });
  });
}

/** handle: decide, append at the loaded version, retry after a conflict; failures and aborts append nothing. */
export function describeAggregateCommands(fresh: FreshAggregateContext): void {
  const add = (n: number) => (_s: TallyState) => added(n);

  describe("commands", () => {
    it("handle creates a new aggregate at version 0 and returns the new state, version and events", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      const seen: number[] = [];
      const r = await repo.handle(id, (s, ctx) => {
        seen.push(ctx.version, s.items.length);
        return added(1, 2);
      });
      expect(seen).toEqual([0, 0]);
      expect(r).toMatchObject({ id, version: 2, attempts: 1 });
      expect(r.state.items).toEqual([1, 2]);
      expect(r.events).toEqual(added(1, 2));
      const next = await repo.handle(id, (s) => added(s.items.length + 1), { metadata: { correlationId: "c" } });
      expect([next.version, next.state.items]).toEqual([3, [1, 2, 3]]);
      expect((await repo.readEvents(id))[2]?.metadata).toEqual({ correlationId: "c" });
    });

    it("a decide with no events appends nothing", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      for (const nothing of [undefined, null, []]) {
        const r = await repo.handle(id, () => nothing as never);
        expect([r.version, r.events, r.state.items]).toEqual([0, [], []]);
      }
      await expectCode(repo.load(id), ErrorCode.NotFound);
    });

    it("a writer that loses a race reloads, decides again on the new state and appends once", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1));
      const states: number[][] = [];
      const r = await repo.handle(id, async (s, ctx) => {
        states.push([...s.items]);
        if (ctx.attempt === 1) await repo.save(id, added(2)); // another writer gets in first
        return added(s.items.length + 1);
      });
      expect(states).toEqual([[1], [1, 2]]);
      expect(r).toMatchObject({ version: 3, attempts: 2 });
      expect(await t.storedNumbers(repo, id)).toEqual([1, 2, 3]);
    });

    it("the retry policy: retry false surfaces the conflict; maxAttempts bounds the attempts; retryOn picks the errors", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1));
      let n = 100;
      const racing = async () => {
        await repo.save(id, added(n++));
        return added(0);
      };
      await expectCode(repo.handle(id, racing, { retry: false }), ErrorCode.VersionConflict);
      let attempts = 0;
      const counted = async () => {
        attempts++;
        return racing();
      };
      await expectCode(
        repo.handle(id, counted, { retry: { maxAttempts: 3, backoffMs: 0 } }),
        ErrorCode.VersionConflict,
      );
      expect(attempts).toBe(3);
      attempts = 0;
      await expectCode(
        repo.handle(id, counted, { retry: { maxAttempts: 5, retryOn: () => false } }),
        ErrorCode.VersionConflict,
      );
      expect(attempts).toBe(1);
      expect((await t.storedNumbers(repo, id)).includes(0)).toBe(false);
      await expectCode(repo.handle(id, add(1), { retry: { maxAttempts: 0 } }), ErrorCode.Configuration);
    });

    it("concurrent commands on one aggregate: every one is applied exactly once", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      const results = await Promise.all(
        range(8).map((n) => repo.handle(id, () => added(n), { retry: { maxAttempts: 50, backoffMs: 1 } })),
      );
      const stored = await t.storedNumbers(repo, id);
      expect([...stored].sort((a, b) => a - b)).toEqual(range(8));
      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(range(8));
      expect((await repo.load(id)).state.items).toEqual(stored);
    });

    it("a decide that throws surfaces its error and appends nothing", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1));
      const refusal = new Error("order already shipped");
      await expect(
        repo.handle(id, () => {
          throw refusal;
        }),
      ).rejects.toBe(refusal);
      await expect(repo.handle(id, async () => Promise.reject(refusal))).rejects.toBe(refusal);
      expect(await t.storedNumbers(repo, id)).toEqual([1]);
    });

    it("an evolve that throws on a decided event appends nothing", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1));
      await expect(repo.handle(id, () => [...added(2), { type: "poison", data: {} }])).rejects.toThrow(/poison/);
      expect(await t.storedNumbers(repo, id)).toEqual([1]);
    });

    it("an abort appends nothing that was not appended already", async () => {
      const t = fresh();
      const repo = await t.repo();
      const id = uniqueName("t");
      await repo.save(id, added(1));
      const early = new AbortController();
      early.abort();
      await expectCode(repo.handle(id, add(2), { signal: early.signal }), ErrorCode.Aborted);
      await expectCode(repo.load(id, { signal: early.signal }), ErrorCode.Aborted);
      await expectCode(repo.save(id, added(2), { signal: early.signal }), ErrorCode.Aborted);
      // Aborted while deciding: the decided events are not appended.
      const during = new AbortController();
      await expectCode(
        repo.handle(
          id,
          () => {
            during.abort();
            return added(3);
          },
          { signal: during.signal },
        ),
        ErrorCode.Aborted,
      );
      // Aborted in the backoff after a conflict: the other writer's event stays, this command's is not appended.
      const backoff = new AbortController();
      await expectCode(
        repo.handle(
          id,
          async (_s, ctx) => {
            if (ctx.attempt === 1) await repo.save(id, added(4));
            return added(5);
          },
          {
            signal: backoff.signal,
            retry: {
              backoffMs: 10_000,
              maxBackoffMs: 10_000,
              retryOn: (error) => {
                backoff.abort(); // aborted as the backoff starts
                return isVersionConflictError(error);
              },
            },
          },
        ),
        ErrorCode.Aborted,
      );
      expect(await t.storedNumbers(repo, id)).toEqual([1, 4]);
    });
  });
}
