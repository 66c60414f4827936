/**
 * The lifecycle areas of the Store conformance suite: cancellation and
 * concurrency, the closed store, the optional capabilities (compact,
 * listNamespaces, restart) shown as skipped when a backend lacks them, and
 * the property-based test against a model.
 */
import { ChangesBuilder, ErrorCode } from "../index.js";
import { expectCode } from "./assert.js";
import { set, summary, uniqueName, unset } from "./fixtures.js";
import { loadFastCheck } from "./peers.js";
import type { StoreSuite } from "./store-contract.js";
import { describe, expect, it } from "./vitest.js";

/** Cancellation through an AbortSignal, concurrent saves, and loads racing saves. */
export function describeConcurrency(suite: StoreSuite): void {
  const { fresh, loadAfter } = suite;
  describe("cancellation and concurrency", () => {
    it("an aborted signal rejects the save and writes nothing", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const controller = new AbortController();
      controller.abort(new Error("stop"));
      await expectCode(store.save([set(ns, "item", "a", 1)], { signal: controller.signal }), ErrorCode.Aborted);
      await expectCode(store.load(ns, { signal: controller.signal }), ErrorCode.Aborted);
      const { changes } = await loadAfter(store, ns);
      expect(changes).toEqual([]);
    });

    it("a signal that is not an AbortSignal is a ValidationError and writes nothing", async () => {
      const store = await fresh();
      const ns = uniqueName();
      for (const signal of [{ aborted: true }, "stop", null] as unknown as AbortSignal[]) {
        await expectCode(store.save([set(ns, "item", "a", 1)], { signal }), ErrorCode.Validation);
        await expectCode(store.load(ns, { signal }), ErrorCode.Validation);
      }
      const { changes } = await loadAfter(store, ns);
      expect(changes).toEqual([]);
    });

    it("concurrent saves all land, each save's changes in its order", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await Promise.all(
        Array.from({ length: 20 }, (_, w) =>
          store.save(Array.from({ length: 10 }, (_, i) => set(ns, "item", `w${w}-${i}`, { w, i }))),
        ),
      );
      const { changes } = await loadAfter(store, ns);
      expect(changes).toHaveLength(200);
      for (let w = 0; w < 20; w++) {
        const mine = changes.filter((c) => c.entityId.startsWith(`w${w}-`)).map((c) => c.entityId);
        expect(mine).toEqual(Array.from({ length: 10 }, (_, i) => `w${w}-${i}`));
      }
    });

    it("a load racing saves to the same keys returns each key once, never older than before the load", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const keys = 400;
      const batch = (v: number) => Array.from({ length: 40 }, (_, j) => (j * 10 + v) % keys);
      await store.save(Array.from({ length: keys }, (_, i) => set(ns, "item", `k${i}`, { v: 0 })));
      let acknowledged = 0;
      let stop = false;
      const writer = (async () => {
        for (let v = 1; !stop; v++) {
          await store.save(batch(v).map((i) => set(ns, "item", `k${i}`, { v })));
          acknowledged = v;
          await new Promise((r) => setImmediate(r)); // let loads interleave with a synchronous store
        }
      })();
      try {
        for (let round = 0; round < 6; round++) {
          const before = acknowledged;
          const loaded = await store.load(ns);
          const ids = loaded.map((c) => c.entityId);
          expect(new Set(ids).size, "one change per key").toBe(ids.length);
          expect(ids).toHaveLength(keys);
          const written = new Set(before > 0 ? batch(before).map((i) => `k${i}`) : []);
          for (const c of loaded) {
            if (written.has(c.entityId)) expect((c.entity as { v: number }).v).toBeGreaterThanOrEqual(before);
          }
        }
      } finally {
        stop = true;
        await writer;
      }
    });
  });
}

/** The closed store: every call fails with a `ClosedError`; `close` is idempotent. */
export function describeClose(suite: StoreSuite): void {
  const { fresh } = suite;
  describe("closed store", () => {
    it("every call after close fails with a ClosedError; close is idempotent", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.close();
      await store.close();
      await expectCode(store.save([set(ns, "item", "a", 1)]), ErrorCode.Closed);
      await expectCode(store.load(ns), ErrorCode.Closed);
      if (store.listNamespaces) await expectCode(store.listNamespaces(), ErrorCode.Closed);
      if (store.compact) await expectCode(store.compact(ns), ErrorCode.Closed);
    });

    it("supports await using", async () => {
      const store = await fresh();
      {
        await using s = store;
        void s;
      }
      await expectCode(store.load(uniqueName()), ErrorCode.Closed);
    });
  });
}

/** What a backend may declare: compact, listNamespaces, and restart (with `options.reopen`); skipped visibly otherwise. */
export function describeCapabilities(suite: StoreSuite): void {
  const { name, options, open, fresh, settle, loadAfter } = suite;
  describe("compact", () => {
    it("keeps the loaded state exactly, tombstones included", async (ctx) => {
      const store = await fresh();
      if (!store.capabilities.compact || !store.compact) {
        ctx.skip(`${name} does not declare compact`);
        return;
      }
      const ns = uniqueName();
      for (let round = 0; round < 5; round++) {
        await store.save(Array.from({ length: 30 }, (_, i) => set(ns, "item", `e${i}`, { round, i })));
      }
      await store.save([unset(ns, "item", "e3"), unset(ns, "item", "e7")]);
      const before = await store.load(ns);
      await store.compact(ns);
      const after = await store.load(ns);
      expect(summary(after)).toEqual(summary(before));
      expect(after.map((c) => c.timestamp.getTime())).toEqual(before.map((c) => c.timestamp.getTime()));
      await store.save([set(ns, "item", "e3", { back: true })]);
      const { changes } = await loadAfter(store, ns);
      expect(changes.at(-1)?.entity).toEqual({ back: true });
      expect(changes).toHaveLength(30);
    });

    it("compacting a missing namespace is not an error", async (ctx) => {
      const store = await fresh();
      if (!store.capabilities.compact || !store.compact) {
        ctx.skip(`${name} does not declare compact`);
        return;
      }
      const ns = uniqueName("missing");
      await store.compact(ns);
      expect(await store.load(ns)).toEqual([]);
    });
  });

  describe("listNamespaces", () => {
    it("lists namespaces that were written, not others", async (ctx) => {
      const store = await fresh();
      if (!store.capabilities.listNamespaces || !store.listNamespaces) {
        ctx.skip(`${name} does not declare listNamespaces`);
        return;
      }
      const a = uniqueName("la");
      const b = uniqueName("lb");
      const never = uniqueName("lnever");
      await store.save([set(a, "item", "x", 1)]);
      await store.save([unset(b, "item", "y")]);
      const s = await settle(store, [a, b]);
      const listed = await s.listNamespaces!();
      expect(listed).toContain(a);
      expect(listed).toContain(b);
      expect(listed).not.toContain(never);
      expect(new Set(listed).size).toBe(listed.length);
    });
  });

  describe("restart", () => {
    it("a reopened store holds every saved change", async (ctx) => {
      if (!options.reopen) {
        ctx.skip(`${name} is not durable (no reopen option)`);
        return;
      }
      const store = await fresh();
      const ns = uniqueName();
      const b = new ChangesBuilder(ns);
      for (let i = 0; i < 50; i++) b.set("item", `e${i}`, { i }, { timestamp: new Date(1_700_000_000_000 + i) });
      await store.save(b.build());
      await store.save([unset(ns, "item", "e10"), set(ns, "item", "e11", { i: 11, v: 2 })]);
      const before = await store.load(ns);
      const reopened = await options.reopen(store);
      open.push(reopened);
      const after = await reopened.load(ns);
      expect(summary(after)).toEqual(summary(before));
      expect(after.map((c) => c.timestamp.getTime())).toEqual(before.map((c) => c.timestamp.getTime()));
      await reopened.save([set(ns, "item", "new", { fresh: true })]);
      expect((await reopened.load(ns)).at(-1)?.entityId).toBe("new");
    });
  });
}

/** The property-based test: any sequence of saves loads to the state a simple model predicts. */
export function describeModel(suite: StoreSuite): void {
  const { options, fresh, settle } = suite;
  it("property: any sequence of saves loads to the state the model predicts", async () => {
    const fc = await loadFastCheck();
    let store = await fresh();
    const op = fc.record({
      unset: fc.boolean(),
      type: fc.constantFrom("a", "b"),
      id: fc.constantFrom("1", "2", "3", "x/y", "Z"),
      v: fc.integer(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { maxLength: 6 }), { maxLength: 8 }), async (batches) => {
        const ns = uniqueName("prop");
        const model = new Map<string, unknown[]>();
        for (const batch of batches) {
          const changes = batch.map((o) => (o.unset ? unset(ns, o.type, o.id) : set(ns, o.type, o.id, { v: o.v })));
          await store.save(changes);
          for (const o of batch) {
            const key = `${o.type}/${o.id}`;
            model.delete(key);
            model.set(key, o.unset ? [o.type, o.id, "unset"] : [o.type, o.id, "set", { v: o.v }]);
          }
        }
        store = await settle(store, [ns]);
        expect(summary(await store.load(ns))).toEqual([...model.values()]);
      }),
      { numRuns: options.propertyRuns ?? 60 },
    );
  });
}
