import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { copyJsonData, copyJsonWithin, InvalidValueError, TooLargeError, toJsonWithin } from "../../src/index.js";

/** What a store that serializes would hand back. */
const viaText = (v: unknown) => JSON.parse(JSON.stringify(v));

describe("copyJsonWithin", () => {
  it("gives what JSON.parse of the text gives, for any JSON value, sharing no object with its input", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const copy = copyJsonWithin(value, 1 << 20, "value");
        expect(copy).toStrictEqual(viaText(value));
        if (typeof value === "object" && value !== null) expect(copy).not.toBe(value);
        expect(copyJsonData(copy)).toStrictEqual(copy);
      }),
      { numRuns: 300 },
    );
  });

  it("turns -0 into 0, keeps an own __proto__ key a key, copies null-prototype objects and class instances as plain data", () => {
    const nullProto = Object.assign(Object.create(null), { a: 1 });
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const input = { z: -0, nested: [nullProto, new Point(1, 2)], ...JSON.parse('{"__proto__": {"polluted": true}}') };
    const copy = copyJsonWithin(input, 1 << 20, "value") as Record<string, unknown>;
    expect(Object.is((copy as { z: number }).z, 0)).toBe(true);
    expect(Object.keys(copy)).toContain("__proto__");
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(copy).toStrictEqual(viaText(input));
    const data = copyJsonData(copy);
    expect(data).toStrictEqual(copy);
    expect(data).not.toBe(copy);
    expect((data as { nested: unknown[] }).nested[0]).not.toBe((copy as { nested: unknown[] }).nested[0]);
  });

  it("copies own keys only, in Object.keys order, even when Object.prototype has an enumerable key", () => {
    const input = { b: 1, 2: "two", a: { c: [1] }, 1: "one" };
    const proto = Object.prototype as Record<string, unknown>;
    proto.inheritedForTest = "not data";
    let copy: unknown;
    let data: unknown;
    try {
      copy = copyJsonWithin(input, 1 << 20, "value");
      data = copyJsonData(copy);
    } finally {
      delete proto.inheritedForTest;
    }
    for (const c of [copy, data]) {
      expect(Object.keys(c as object)).toEqual(["1", "2", "b", "a"]);
      expect(Object.hasOwn(c as object, "inheritedForTest")).toBe(false);
      expect(JSON.stringify(c)).toBe(JSON.stringify(input));
    }
  });

  it("refuses what toJsonWithin refuses, with the same error", () => {
    const bad: unknown[] = [
      { a: undefined },
      { a: 1n },
      { a: Number.NaN },
      { d: new Date(0) },
      { m: new Map() },
      (() => {
        const holes = [1, 2, 3];
        delete holes[1];
        return holes;
      })(),
      { f: () => 1 },
    ];
    for (const value of bad) {
      let expected: unknown;
      try {
        toJsonWithin(value, 1 << 20, "value", "entity");
      } catch (error) {
        expected = error;
      }
      expect(expected).toBeInstanceOf(InvalidValueError);
      expect(() => copyJsonWithin(value, 1 << 20, "value", "entity")).toThrow((expected as Error).message);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => copyJsonWithin(cyclic, 1 << 20, "value")).toThrow(InvalidValueError);
  });

  it("enforces the size limit on the UTF-8 JSON text exactly", () => {
    const value = { s: "é".repeat(10) }; // {"s":"éééééééééé"} = 8 + 20 bytes
    const size = Buffer.byteLength(JSON.stringify(value));
    expect(copyJsonWithin(value, size, "value")).toStrictEqual(value);
    expect(() => copyJsonWithin(value, size - 1, "value")).toThrow(TooLargeError);
    const deep = { a: [[[[["x".repeat(100)]]]]] };
    expect(() => copyJsonWithin(deep, 50, "value")).toThrow(TooLargeError);
  });

  it("copies values deeper than its fast path through the JSON text", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const copy = copyJsonWithin(deep, 1 << 20, "value");
    expect(copy).toStrictEqual(deep);
    expect(copyJsonData(copy)).toStrictEqual(deep);
  });
});
