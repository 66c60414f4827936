import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ErrorCode,
  InvalidNameError,
  InvalidValueError,
  isInvalidNameError,
  isStatelogError,
  StatelogError,
  TooLargeError,
  toJson,
  toJsonWithin,
  validateEntityId,
  validateNamespace,
} from "../../src/index.js";
import { MemoryStore } from "../../src/memory/index.js";

describe("names", () => {
  it("accepts every string of 1..255 UTF-8 bytes without control characters (ids may hold /)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 60 }), (s) => {
        // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule under test
        const ok = !/[\u0000-\u001f\u007f-\u009f]/.test(s) && Buffer.byteLength(s) <= 255;
        if (ok) expect(() => validateEntityId(s)).not.toThrow();
        else expect(() => validateEntityId(s)).toThrow(InvalidNameError);
        if (ok && !s.includes("/")) expect(() => validateNamespace(s)).not.toThrow();
        else expect(() => validateNamespace(s)).toThrow(InvalidNameError);
      }),
      { numRuns: 500 },
    );
  });

  it("counts bytes, not characters", () => {
    expect(() => validateNamespace("é".repeat(127))).not.toThrow(); // 254 bytes
    expect(() => validateNamespace("é".repeat(128))).toThrow(/256 UTF-8 bytes/);
    expect(() => validateNamespace("😀".repeat(63))).not.toThrow(); // 252 bytes
    expect(() => validateNamespace("😀".repeat(64))).toThrow(/256 UTF-8 bytes/);
  });

  it("says what is wrong and with which value", () => {
    const error = (() => {
      try {
        validateNamespace("a/b");
      } catch (e) {
        return e;
      }
    })();
    expect(isInvalidNameError(error)).toBe(true);
    expect(error).toMatchObject({ kind: "namespace", value: "a/b", code: ErrorCode.InvalidName });
    expect((error as Error).message).toBe('invalid namespace "a/b": a namespace must not contain "/"');
  });
});

describe("values", () => {
  it("round-trips JSON data and returns its text", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const json = toJson(v);
        expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });

  it("names the path of the offending value", () => {
    expect(() => toJson({ a: [1, { b: 2n }] })).toThrow(/entity\.a\[1\]\.b cannot be stored: BigInt/);
    expect(() => toJson({ when: new Date() })).toThrow(/entity\.when .*Date does not round-trip/);
    expect(() => toJson({ s: new Set() })).toThrow(/Set does not round-trip/);
    expect(() => toJson([Number.NaN])).toThrow(/NaN is not a finite number/);
  });

  it("refuses values JSON would change: boxed primitives, arrays with a toJSON; every store the same way", async () => {
    const tagged = Object.assign(["a", "b"], { toJSON: () => "pwned" });
    for (const [entity, message] of [
      [{ n: Object(10n) }, /boxed BigInt/],
      [{ n: new Number(5) }, /boxed Number/],
      [{ s: new String("x") }, /boxed String/],
      [{ tags: tagged }, /array with a toJSON method/],
    ] as const) {
      expect(() => toJson(entity), String(message)).toThrow(message);
      const store = new MemoryStore();
      const saved = await store
        .save([{ namespace: "ns", changeType: "set", entityType: "t", entityId: "a", entity }])
        .catch((e: unknown) => e);
      expect(isStatelogError(saved, ErrorCode.InvalidValue), String(saved)).toBe(true);
      expect(await store.load("ns")).toEqual([]);
    }
  });

  it("allows the same object twice when it is not a cycle", () => {
    const shared = { x: 1 };
    expect(toJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it("accepts class instances whose own data is JSON (as JSON.stringify sees it)", () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    expect(toJson(new Point(1, 2))).toBe('{"x":1,"y":2}');
    expect(toJson(Object.create(null))).toBe("{}");
  });

  it("checks the size in UTF-8 bytes", () => {
    expect(toJsonWithin("é".repeat(10), 22, "x")).toBe(`"${"é".repeat(10)}"`);
    const error = (() => {
      try {
        toJsonWithin("é".repeat(11), 22, "item 1");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(TooLargeError);
    expect(error).toMatchObject({ size: 24, limit: 22, code: ErrorCode.TooLarge });
    expect((error as Error).message).toMatch(/^item 1 is 24 bytes, over the limit of 22 bytes/);
  });
});

describe("errors", () => {
  it("guards work across copies of the package (by code), not by instanceof", () => {
    const foreign = Object.assign(new Error("x"), { code: ErrorCode.InvalidValue });
    expect(isStatelogError(foreign, ErrorCode.InvalidValue)).toBe(true);
    expect(isStatelogError(new Error("x"))).toBe(false);
    expect(isStatelogError(Object.assign(new Error("x"), { code: "ENOENT" }))).toBe(false);
    const own = new InvalidValueError("entity", "bad", { cause: new Error("root") });
    expect(own).toBeInstanceOf(StatelogError);
    expect(own.name).toBe("InvalidValueError");
    expect((own.cause as Error).message).toBe("root");
  });
});
