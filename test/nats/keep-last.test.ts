/**
 * keepLastPerKey: after a read restarted on another peer ("last per
 * subject" mode), a key can arrive twice, older version first. The later
 * delivery must win, and the result keeps the order of the winners.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keepLastPerKey } from "../../src/nats/reader.js";

describe("keepLastPerKey", () => {
  it("keeps the later delivery of a key, at its position", () => {
    const items = [
      { k: "a", v: 1 },
      { k: "b", v: 1 },
      { k: "a", v: 2 },
      { k: "c", v: 1 },
      { k: "b", v: 2 },
    ];
    expect(keepLastPerKey(items, (i) => i.k)).toEqual([
      { k: "a", v: 2 },
      { k: "c", v: 1 },
      { k: "b", v: 2 },
    ]);
    expect(keepLastPerKey([], (i: { k: string }) => i.k)).toEqual([]);
  });

  it("equals a model: the last item per key, ordered by where it last occurs", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "d"), fc.nat())), (pairs) => {
        const items = pairs.map(([k, v], seq) => ({ k, v, seq }));
        const last = new Map<string, (typeof items)[number]>();
        for (const item of items) last.set(item.k, item);
        const expected = [...last.values()].sort((x, y) => x.seq - y.seq);
        expect(keepLastPerKey(items, (i) => i.k)).toEqual(expected);
      }),
    );
  });
});
