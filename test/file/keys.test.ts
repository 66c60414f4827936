/** KeyTable (src/file/keys.ts): byte ranges of buffers mapped to slots. */
import { describe, expect, it } from "vitest";
import { KeyTable } from "../../src/file/keys.js";

describe("KeyTable", () => {
  it.each([0, 10, 5000])("gives each key one slot, in order of first sight (room made for %i keys)", (expected) => {
    const keys = Array.from({ length: 3000 }, (_, k) => `"type-${k % 7}","entityID":"k${k}${"x".repeat(k % 40)}"`);
    const buf = Buffer.from(keys.join("\n"));
    const table = new KeyTable([buf], expected);
    const ranges: [number, number][] = [];
    for (let at = 0, k = 0; k < keys.length; k++) {
      const end = at + Buffer.byteLength(keys[k] as string);
      ranges.push([at, end]);
      at = end + 1;
    }
    expect(ranges.map(([from, to]) => table.slot(0, from, to))).toEqual(keys.map((_, k) => k));
    // Seen again (as text or as bytes): the same slots.
    expect(ranges.map(([from, to]) => table.slot(0, from, to))).toEqual(keys.map((_, k) => k));
    expect(keys.map((key) => table.slotOfText(key))).toEqual(keys.map((_, k) => k));
    expect(table.size).toBe(keys.length);
    expect(table.slotOfText("new")).toBe(keys.length);
  });
});
