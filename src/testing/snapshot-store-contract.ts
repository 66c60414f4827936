/**
 * The snapshot-store conformance suite (docs/aggregates.md): what every
 * `SnapshotStore` (memory, file, NATS KV, and yours) does.
 */
import { ErrorCode } from "../index.js";
import type { AggregateSnapshot, SnapshotStore } from "../repository/index.js";
import { expectCode } from "./assert.js";
import { HOSTILE_NAMES, uniqueName } from "./fixtures.js";
import { afterEach, describe, expect, it } from "./vitest.js";

/** Options of {@link describeSnapshotStoreContract}. */
export interface SnapshotStoreContractOptions {
  /** Closes `store` and opens it again on the same data; given for durable stores, enables the restart test. */
  reopen?: (store: SnapshotStore) => Promise<SnapshotStore>;
  /** `maxSnapshotsPerStream` the factory's stores were opened with. @default 8 */
  maxSnapshotsPerStream?: number;
  /** Per-test timeout in ms. @default 30000 */
  timeoutMs?: number;
}

const snap = (
  streamId: string,
  version: number,
  snapshotVersion = 1,
  state: unknown = { v: version },
): AggregateSnapshot => ({
  streamId,
  version,
  snapshotVersion,
  state,
  createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, version)),
});

/**
 * Registers the snapshot-store tests for one backend.
 * @param factory opens a fresh store
 */
export function describeSnapshotStoreContract(
  name: string,
  factory: () => Promise<SnapshotStore>,
  options: SnapshotStoreContractOptions = {},
): void {
  const open: SnapshotStore[] = [];
  const fresh = async () => {
    const store = await factory();
    open.push(store);
    return store;
  };
  const max = options.maxSnapshotsPerStream ?? 8;

  describe(`SnapshotStore contract: ${name}`, { timeout: options.timeoutMs ?? 30_000 }, () => {
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });

    it("load returns the newest snapshot saved, with its fields; undefined for an unknown stream", async () => {
      const store = await fresh();
      const s = uniqueName("order");
      expect(await store.load(s)).toBeUndefined();
      await store.save(snap(s, 3, 1, { items: ["a", "b"], total: 30, nested: { ok: true } }));
      await store.save(snap(s, 7));
      expect(await store.load(s)).toEqual(snap(s, 7));
      expect((await store.load(s, { maxVersion: 6 }))?.state).toEqual({
        items: ["a", "b"],
        total: 30,
        nested: { ok: true },
      });
      expect(await store.load(s, { maxVersion: 2 })).toBeUndefined();
      expect(await store.load(uniqueName("other"))).toBeUndefined();
    });

    it("maxVersion picks the highest version at or below it; snapshotVersion filters", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      for (const v of [2, 4, 6]) await store.save(snap(s, v));
      expect((await store.load(s, { maxVersion: 5 }))?.version).toBe(4);
      expect((await store.load(s, { maxVersion: 6 }))?.version).toBe(6);
      expect((await store.load(s, { maxVersion: 100 }))?.version).toBe(6);
      expect(await store.load(s, { snapshotVersion: 2 })).toBeUndefined();
      await store.save(snap(s, 8, 2));
      expect(await store.load(s, { snapshotVersion: 2 })).toEqual(snap(s, 8, 2));
      expect((await store.load(s, { snapshotVersion: 2, maxVersion: 7 }))?.version).toBeUndefined();
    });

    it(`keeps at most maxSnapshotsPerStream (${max}) snapshots per stream, the newest`, async () => {
      const store = await fresh();
      const s = uniqueName("s");
      for (let v = 1; v <= max + 2; v++) await store.save(snap(s, v));
      expect((await store.load(s))?.version).toBe(max + 2);
      expect((await store.load(s, { maxVersion: 3 }))?.version).toBe(3);
      expect(await store.load(s, { maxVersion: 2 })).toBeUndefined();
    });

    it("the newest by version wins, whatever the order of the saves; one snapshot per version", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await store.save(snap(s, 10));
      await store.save(snap(s, 5)); // a snapshot written late (a fold that took long)
      expect((await store.load(s))?.version).toBe(10);
      for (let i = 0; i < max + 2; i++) await store.save(snap(s, 10)); // the same version again and again
      await store.save(snap(s, 12));
      // The repeated version did not push the older ones out.
      expect((await store.load(s, { maxVersion: 11 }))?.version).toBe(10);
      expect((await store.load(s))?.version).toBe(12);
    });

    it("saves of one stream at once: the newest version wins, whatever order they land in", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const versions = [7, 3, 12, 1, 9, 20, 15, 4, 18, 11];
      await Promise.all(versions.map((v) => store.save(snap(s, v))));
      expect((await store.load(s))?.version).toBe(20);
    });

    it("a save of another snapshotVersion makes the earlier ones stale: no load returns them", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await store.save(snap(s, 10, 1));
      await store.save(snap(s, 12, 2));
      expect((await store.load(s))?.snapshotVersion).toBe(2);
      expect(await store.load(s, { maxVersion: 11 })).toBeUndefined();
      expect(await store.load(s, { snapshotVersion: 1 })).toBeUndefined();
      expect((await store.load(s, { snapshotVersion: 2 }))?.version).toBe(12);
    });

    it("streams are independent, whatever their names", async () => {
      const store = await fresh();
      const names = HOSTILE_NAMES.filter((n) => n.length < 200);
      for (const [i, n] of names.entries()) await store.save(snap(n, i + 1));
      for (const [i, n] of names.entries()) expect((await store.load(n))?.version).toBe(i + 1);
    });

    it("a stored snapshot is a copy: changing the saved or loaded state changes nothing", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const state = { items: [1] };
      const saving = store.save(snap(s, 1, 1, state));
      state.items.push(2);
      await saving;
      const loaded = await store.load(s);
      (loaded?.state as { items: number[] } | undefined)?.items.push(3);
      expect((await store.load(s))?.state).toEqual({ items: [1] });
    });

    it('keeps every key of a state, "__proto__" included (a map keyed by user input)', async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const state = JSON.parse('{"names":{"__proto__":{"x":1},"a":2}}') as { names: Record<string, unknown> };
      await store.save(snap(s, 1, 1, state));
      const loaded = (await store.load(s))?.state as { names: Record<string, unknown> };
      expect(Object.keys(loaded.names)).toEqual(["__proto__", "a"]);
      expect(Object.getPrototypeOf(loaded.names)).toBe(Object.prototype);
      expect(JSON.stringify(loaded)).toBe('{"names":{"__proto__":{"x":1},"a":2}}');
    });

    it("delete removes every snapshot of a stream", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      expect(await store.delete(s)).toBe(false);
      await store.save(snap(s, 1));
      await store.save(snap(s, 2));
      expect(await store.delete(s)).toBe(true);
      expect(await store.load(s)).toBeUndefined();
      expect(await store.load(s, { maxVersion: 1 })).toBeUndefined();
    });

    it("bad input is refused with a typed error and stores nothing", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      await expectCode(store.save(snap("", 1)), ErrorCode.InvalidName);
      await expectCode(store.save(snap(s, 0)), ErrorCode.Validation);
      await expectCode(store.save(snap(s, 1.5)), ErrorCode.Validation);
      await expectCode(store.save({ ...snap(s, 1), snapshotVersion: -1 }), ErrorCode.Validation);
      await expectCode(store.save({ ...snap(s, 1), createdAt: new Date(Number.NaN) }), ErrorCode.Validation);
      await expectCode(store.load(s, { maxVersion: -1 }), ErrorCode.Validation);
      expect(await store.load(s)).toBeUndefined();
    });

    it("after close every call is a ClosedError; close is idempotent; an aborted signal is an AbortError", async () => {
      const store = await fresh();
      const s = uniqueName("s");
      const aborted = AbortSignal.abort();
      await expectCode(store.save(snap(s, 1), { signal: aborted }), ErrorCode.Aborted);
      await expectCode(store.load(s, { signal: aborted }), ErrorCode.Aborted);
      const notSignal = "stop" as unknown as AbortSignal;
      await expectCode(store.save(snap(s, 1), { signal: notSignal }), ErrorCode.Validation);
      await expectCode(store.load(s, { signal: notSignal }), ErrorCode.Validation);
      expect(await store.load(s)).toBeUndefined();
      await store.close();
      await store.close();
      await expectCode(store.save(snap(s, 1)), ErrorCode.Closed);
      await expectCode(store.load(s), ErrorCode.Closed);
      await expectCode(store.delete(s), ErrorCode.Closed);
    });

    const reopen = options.reopen;
    if (reopen !== undefined) {
      it("snapshots survive a reopen (durable stores)", async () => {
        const store = await fresh();
        const s = uniqueName("s");
        await store.save(snap(s, 4, 3, { kept: true }));
        const reopened = await reopen(store);
        open.push(reopened);
        expect(await reopened.load(s)).toEqual(snap(s, 4, 3, { kept: true }));
      });
    }
  });
}
