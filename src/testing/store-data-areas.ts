/**
 * The data areas of the Store conformance suite: basics (empty, missing
 * and isolated namespaces, copies), ordering (the later change of a key
 * wins; load order is write order; timestamps), deletes (tombstones),
 * values (JSON round trip, invalid values, the size limit) and names.
 */
import { type ChangeInput, ErrorCode, liveChanges, type Store } from "../index.js";
import { expectCode } from "./assert.js";
import { HOSTILE_IDS, HOSTILE_NAMES, set, summary, uniqueName, unset } from "./fixtures.js";
import type { StoreSuite } from "./store-contract.js";
import { describe, expect, it } from "./vitest.js";

/** Empty saves, missing and isolated namespaces, and inputs and outputs that are never shared. */
export function describeBasics(suite: StoreSuite): void {
  const { fresh, settle, loadAfter } = suite;
  describe("empty and missing", () => {
    it("save([]) succeeds and writes nothing", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([{ namespace: ns, changeType: "set", entityType: "item", entityId: "a", entity: 1 }]);
      const listed = async (s: Store) =>
        s.capabilities.listNamespaces && s.listNamespaces ? new Set(await s.listNamespaces()) : undefined;
      const before = await listed(store);
      await store.save([]);
      const s = await settle(store, [ns]);
      expect(await listed(s)).toEqual(before);
      expect(summary(await s.load(ns))).toEqual([["item", "a", "set", 1]]);
    });

    it("a namespace never written loads as []", async () => {
      const store = await fresh();
      const { changes } = await loadAfter(store, uniqueName("missing"));
      expect(changes).toEqual([]);
    });
  });

  it("namespaces are isolated", async () => {
    const store = await fresh();
    const a = uniqueName("a");
    const b = uniqueName("b");
    await store.save([set(a, "item", "x", { ns: "a" }), set(b, "item", "x", { ns: "b" }), unset(a, "item", "y")]);
    const s = await settle(store, [a, b]);
    expect(summary(await s.load(a))).toEqual([
      ["item", "x", "set", { ns: "a" }],
      ["item", "y", "unset"],
    ]);
    expect(summary(await s.load(b))).toEqual([["item", "x", "set", { ns: "b" }]]);
    for (const c of await s.load(a)) expect(c.namespace).toBe(a);
  });

  describe("inputs and outputs are not shared", () => {
    it("save does not mutate its input, nor keep a reference to it", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const entity = { name: "a", tags: ["x"], nested: { n: 1 } };
      const input = [set(ns, "item", "a", entity)];
      const snapshot = structuredClone(input);
      await store.save(input);
      expect(input).toEqual(snapshot);
      expect("timestamp" in (input[0] as object)).toBe(false);
      entity.tags.push("mutated");
      entity.nested.n = 2;
      const { changes } = await loadAfter(store, ns);
      expect(changes[0]?.entity).toEqual({ name: "a", tags: ["x"], nested: { n: 1 } });
    });

    it("mutating a loaded entity does not change the store", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([set(ns, "item", "a", { list: [1] })]);
      const { store: s, changes } = await loadAfter(store, ns);
      (changes[0]!.entity as { list: number[] }).list.push(2);
      expect((await s.load(ns))[0]?.entity).toEqual({ list: [1] });
    });

    it("saves frozen inputs", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const input = Object.freeze([Object.freeze(set(ns, "item", "a", Object.freeze({ v: 1 })))]);
      await store.save(input);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([["item", "a", "set", { v: 1 }]]);
    });
  });
}

/** The later change of a key wins, by log order; load order is the order the winners were written; timestamps. */
export function describeOrdering(suite: StoreSuite): void {
  const { fresh, loadAfter } = suite;
  describe("latest wins by log order", () => {
    it("a later save beats an earlier one", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([set(ns, "item", "a", { v: 1 })]);
      await store.save([set(ns, "item", "a", { v: 2 })]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([["item", "a", "set", { v: 2 }]]);
    });

    it("inside one save the later element wins", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([
        set(ns, "item", "a", { v: 1 }),
        set(ns, "item", "b", { v: 1 }),
        set(ns, "item", "a", { v: 3 }),
      ]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([
        ["item", "b", "set", { v: 1 }],
        ["item", "a", "set", { v: 3 }],
      ]);
    });

    it("timestamps never reorder the log", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([set(ns, "item", "a", { v: "new" }, new Date("2030-01-01T00:00:00Z"))]);
      await store.save([set(ns, "item", "a", { v: "old" }, new Date("2020-01-01T00:00:00Z"))]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([["item", "a", "set", { v: "old" }]]);
      expect(changes[0]?.timestamp.toISOString()).toBe("2020-01-01T00:00:00.000Z");
    });

    it("keys are (type, id): the same id under two types are two entities", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([set(ns, "deployment", "x", { t: "d" }), set(ns, "environment", "x", { t: "e" })]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([
        ["deployment", "x", "set", { t: "d" }],
        ["environment", "x", "set", { t: "e" }],
      ]);
    });
  });

  it("load order is the order the winning changes were written", async () => {
    const store = await fresh();
    const ns = uniqueName();
    const ids = Array.from({ length: 40 }, (_, i) => `e${(i * 7919) % 40}`);
    await store.save(ids.map((id) => set(ns, "item", id, { id })));
    // Update every third one, delete every fifth: those move to the end, in this order.
    const moved = ids.filter((_, i) => i % 3 === 0 || i % 5 === 0);
    await store.save(
      moved.map((id, i) => (i % 2 === 0 ? set(ns, "item", id, { id, updated: true }) : unset(ns, "item", id))),
    );
    const { store: s, changes } = await loadAfter(store, ns);
    const expected = [...ids.filter((id) => !moved.includes(id)), ...moved];
    expect(changes.map((c) => c.entityId)).toEqual(expected);
    expect((await s.load(ns)).map((c) => c.entityId)).toEqual(expected); // and again: deterministic
  });

  describe("timestamps", () => {
    it("a change without a timestamp gets the store's clock", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const before = Date.now();
      await store.save([set(ns, "item", "a", { v: 1 })]);
      const after = Date.now();
      const { changes } = await loadAfter(store, ns);
      const ts = changes[0]?.timestamp;
      expect(ts).toBeInstanceOf(Date);
      expect(ts?.getTime()).toBeGreaterThanOrEqual(before - 1);
      expect(ts?.getTime()).toBeLessThanOrEqual(after + 1);
    });

    it("given timestamps are preserved to the millisecond", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const t1 = new Date("2025-10-25T12:00:00.123Z");
      const t2 = new Date("1999-12-31T23:59:59.999Z");
      await store.save([set(ns, "item", "a", { v: 1 }, t1), unset(ns, "item", "b", t2)]);
      const { changes } = await loadAfter(store, ns);
      expect(changes.map((c) => c.timestamp.toISOString())).toEqual([t1.toISOString(), t2.toISOString()]);
    });
  });
}

/** Tombstones: an `unset` is the latest change of its key until a later `set`. */
export function describeDeletes(suite: StoreSuite): void {
  const { fresh, loadAfter } = suite;
  describe("tombstones", () => {
    it("an unset is loaded as the latest change of its key", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([set(ns, "item", "a", { v: 1 }), set(ns, "item", "b", { v: 1 })]);
      await store.save([unset(ns, "item", "a")]);
      const { store: s, changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([
        ["item", "b", "set", { v: 1 }],
        ["item", "a", "unset"],
      ]);
      expect(changes[1]?.entity).toBeUndefined();
      expect(summary(await s.load(ns, { liveOnly: true }))).toEqual([["item", "b", "set", { v: 1 }]]);
      expect(summary(liveChanges(changes))).toEqual([["item", "b", "set", { v: 1 }]]);
    });

    it("a set after an unset brings the entity back", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([set(ns, "item", "a", { v: 1 }), unset(ns, "item", "a")]);
      await store.save([set(ns, "item", "a", { v: 2 })]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([["item", "a", "set", { v: 2 }]]);
    });

    it("an unset of a key never set is kept as a tombstone", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await store.save([unset(ns, "item", "ghost")]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([["item", "ghost", "unset"]]);
    });
  });
}

/** Values: JSON round trip, invalid values and the size limit, each refused before anything is written. */
export function describeValues(suite: StoreSuite): void {
  const { fresh, loadAfter, maxBytes } = suite;
  describe("values", () => {
    it("round-trips JSON data: Unicode, nesting, numbers, null, empty containers", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const entity = {
        s: 'héllo 😀 \u2028 "quoted" \\ \n\t',
        n: [0, -1, 1.5, 1e21, -2.5e-7, Number.MAX_SAFE_INTEGER],
        b: [true, false],
        z: null,
        e: { a: {}, b: [] },
        deep: { a: { b: { c: { d: [1, [2, [3]]] } } } },
        "key with spaces/and slashes": "ok",
      };
      await store.save([set(ns, "item", "a", entity), set(ns, "item", "s", "just a string"), set(ns, "item", "n", 42)]);
      const { changes } = await loadAfter(store, ns);
      expect(summary(changes)).toEqual([
        ["item", "a", "set", entity],
        ["item", "s", "set", "just a string"],
        ["item", "n", "set", 42],
      ]);
    });

    it("loads an entity larger than 64 KiB (no fixed line or buffer limit)", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const big = { blob: "x".repeat(Math.min(200_000, maxBytes - 100)), id: "big" };
      await store.save([set(ns, "item", "big", big), set(ns, "item", "small", { v: 1 })]);
      const { changes } = await loadAfter(store, ns);
      expect(changes.map((c) => c.entityId)).toEqual(["big", "small"]);
      expect(changes[0]?.entity).toEqual(big);
    });

    const bad: [string, () => unknown][] = [
      ["BigInt", () => ({ n: 10n })],
      [
        "a cycle",
        () => {
          const o: Record<string, unknown> = {};
          o.self = o;
          return o;
        },
      ],
      ["a function", () => ({ f: () => 1 })],
      ["a symbol", () => ({ s: Symbol("x") })],
      ["undefined", () => ({ u: undefined })],
      ["NaN", () => ({ n: Number.NaN })],
      ["Infinity", () => [1, Number.POSITIVE_INFINITY]],
      ["a Date", () => ({ d: new Date() })],
      ["a Map", () => ({ m: new Map([[1, 2]]) })],
      ["a sparse array", () => ({ a: Object.assign(new Array(3), { 0: 1, 2: 3 }) })],
      ["undefined as the entity", () => undefined],
    ];
    for (const [what, make] of bad) {
      it(`rejects ${what} before writing anything`, async () => {
        const store = await fresh();
        const ns = uniqueName();
        await store.save([set(ns, "item", "keep", { v: 1 })]);
        await expectCode(
          store.save([set(ns, "item", "keep", { v: 2 }), set(ns, "item", "bad", make())]),
          ErrorCode.InvalidValue,
        );
        const { changes } = await loadAfter(store, ns);
        expect(summary(changes)).toEqual([["item", "keep", "set", { v: 1 }]]);
      });
    }

    it("rejects a change over the size limit before writing anything, and accepts one under it", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const tooBig = { blob: "x".repeat(maxBytes) };
      const error = await expectCode(
        store.save([set(ns, "item", "ok", { v: 1 }), set(ns, "item", "big", tooBig)]),
        ErrorCode.TooLarge,
      );
      expect((error as { limit?: number }).limit).toBe(maxBytes);
      // The largest change the limit allows (its JSON is exactly maxBytes long) must be accepted.
      const nearLimit = { blob: "y".repeat(maxBytes - 11) };
      await store.save([set(ns, "item", "near", nearLimit)]);
      const { changes } = await loadAfter(store, ns);
      expect(changes.map((c) => c.entityId)).toEqual(["near"]);
      expect(changes[0]?.entity).toEqual(nearLimit);
    });
  });
}

/** Names: hostile names round-trip; invalid ones are refused before anything is written. */
export function describeNames(suite: StoreSuite): void {
  const { fresh, settle, loadAfter } = suite;
  describe("names", () => {
    it("round-trips hostile namespace names, each isolated from the others", async () => {
      const store = await fresh();
      const run = uniqueName("h");
      // Prefix-free variants keep them unique on shared servers yet hostile; the bare ones go to a fresh store.
      const names = HOSTILE_NAMES.map((n, i) => (i % 2 === 0 ? n : `${run}${n}`.slice(0, 255)));
      const unique = [...new Set(names)].filter((n) => Buffer.byteLength(n) <= 255);
      await store.save(unique.map((n, i) => set(n, "item", "x", { i })));
      const s = await settle(store, unique);
      for (let i = 0; i < unique.length; i++) {
        const changes = await s.load(unique[i] as string);
        const expected = unique.map((n, j) => (n === unique[i] ? j : -1)).filter((j) => j >= 0);
        expect(
          changes.map((c) => (c.entity as { i: number }).i),
          `namespace ${JSON.stringify(unique[i])}`,
        ).toEqual(expected.slice(-1));
        expect(changes[0]?.namespace).toBe(unique[i]);
      }
      if (s.capabilities.listNamespaces && s.listNamespaces) {
        const listed = new Set(await s.listNamespaces());
        for (const n of unique) expect(listed.has(n), `listNamespaces has ${JSON.stringify(n)}`).toBe(true);
      }
    });

    it("round-trips hostile entity types and ids", async () => {
      const store = await fresh();
      const ns = uniqueName();
      const changes: ChangeInput[] = [];
      for (const t of HOSTILE_NAMES) changes.push(set(ns, t, "id", { t }));
      for (const id of HOSTILE_IDS) changes.push(set(ns, "item", id, { id }));
      await store.save(changes);
      const { changes: loaded } = await loadAfter(store, ns);
      expect(loaded.map((c) => [c.entityType, c.entityId])).toEqual(changes.map((c) => [c.entityType, c.entityId]));
      expect(loaded.map((c) => c.entity)).toEqual(changes.map((c) => (c as { entity: unknown }).entity));
    });

    const invalid: [string, () => ChangeInput][] = [
      ["an empty namespace", () => set("", "item", "a", 1)],
      ["a namespace with /", () => set("a/b", "item", "a", 1)],
      ["a namespace with NUL", () => set("a\u0000b", "item", "a", 1)],
      ["a namespace with a newline", () => set("a\nb", "item", "a", 1)],
      ["a namespace of 256 bytes", () => set("n".repeat(256), "item", "a", 1)],
      ["a namespace of 128 two-byte characters", () => set("é".repeat(128), "item", "a", 1)],
      ["an entity type with /", () => set("ns", "a/b", "a", 1)],
      ["an empty entity type", () => set("ns", "", "a", 1)],
      ["an empty entity id", () => set("ns", "item", "", 1)],
      ["an entity id with a control character", () => set("ns", "item", "a\u0007", 1)],
      ["an entity id of 256 bytes", () => set("ns", "item", "i".repeat(256), 1)],
      ["a non-string id", () => set("ns", "item", 42 as unknown as string, 1)],
      ["a lone surrogate", () => set("ns", "item", "\ud800", 1)],
    ];
    for (const [what, make] of invalid) {
      it(`rejects ${what} with an InvalidNameError and writes nothing`, async () => {
        const store = await fresh();
        const ns = uniqueName();
        const bad = make();
        const badNs = bad.namespace === "ns" ? ns : bad.namespace;
        await expectCode(
          store.save([set(ns, "item", "first", { v: 1 }), { ...bad, namespace: badNs } as ChangeInput]),
          ErrorCode.InvalidName,
        );
        const { changes } = await loadAfter(store, ns);
        expect(changes).toEqual([]);
      });
    }

    it("rejects an invalid namespace on load", async () => {
      const store = await fresh();
      await expectCode(store.load("a/b"), ErrorCode.InvalidName);
      await expectCode(store.load(""), ErrorCode.InvalidName);
    });

    it("rejects an unknown change type", async () => {
      const store = await fresh();
      const ns = uniqueName();
      await expectCode(
        store.save([
          { namespace: ns, changeType: "upsert", entityType: "item", entityId: "a" } as unknown as ChangeInput,
        ]),
        ErrorCode.Validation,
      );
    });
  });
}
