/**
 * LineDecoder (src/file/decoder.ts): a line's key from its prefix, and a
 * line's change, for statelog's own lines and lines of other shapes.
 */
import { describe, expect, it } from "vitest";
import { KeyShape, LineDecoder } from "../../src/file/decoder.js";
import { NameJsonCache } from "../../src/file/encode.js";
import { keyOf, linePrefix } from "../../src/file/format.js";
import { type Change, ChangeType } from "../../src/index.js";
import { encodeLines } from "./helpers.js";

const NS = "ws-1";

/** Lines statelog writes for `changes`, with the bounds of each (without `\n`). */
function linesOf(changes: Change[]): { buf: Buffer; bounds: [number, number][] } {
  const buf = encodeLines(
    changes.map((c) => ({
      ...c,
      json: c.changeType === ChangeType.Set ? JSON.stringify(c.entity) : undefined,
    })),
    new NameJsonCache(),
    true,
  );
  const bounds: [number, number][] = [];
  for (let at = 0; at < buf.length; ) {
    const nl = buf.indexOf(10, at);
    bounds.push([at, nl]);
    at = nl + 1;
  }
  return { buf, bounds };
}

const change = (entityType: string, entityId: string, k: number): Change =>
  k % 7 === 3
    ? {
        namespace: NS,
        changeType: ChangeType.Unset,
        entityType,
        entityId,
        timestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, k)),
      }
    : {
        namespace: NS,
        changeType: ChangeType.Set,
        entityType,
        entityId,
        entity: { k, name: `n${k}` },
        timestamp: new Date(Date.UTC(2025, 0, 1, 0, k % 3, k, k)),
      };

describe("LineDecoder", () => {
  it("decodes lines of many entity types mixed (more than it keeps the strings of)", () => {
    const types = Array.from({ length: 40 }, (_, t) => (t % 5 === 0 ? `typé-${t}` : `type-${t}`));
    const changes = Array.from({ length: 400 }, (_, k) => change(types[(k * 17) % types.length] as string, `e${k}`, k));
    const { buf, bounds } = linesOf(changes);
    const decoder = new LineDecoder(NS, linePrefix(NS));
    const decoded = bounds.map(([start, end]) => decoder.decode(buf, start, end, true));
    expect(decoded).toEqual(changes);
  });

  it("decodeScanned decodes the line its key was found in, and any other line as decode does", () => {
    const changes = ['q"uote', "plain", "caf\u00e9", "back\\slash"].map((id, k) =>
      change(k % 2 ? "a" : "b\u2028", id, k),
    );
    const { buf, bounds } = linesOf(changes);
    const decoder = new LineDecoder(NS, linePrefix(NS));
    for (let i = 0; i < bounds.length; i++) {
      const [start, end] = bounds[i] as [number, number];
      const shape = decoder.key(buf, start, end);
      const c = changes[i] as Change;
      if (shape === KeyShape.Raw) {
        expect(buf.toString("utf8", decoder.keyStart, decoder.keyEnd)).toBe(keyOf(c.entityType, c.entityId));
      } else {
        expect(shape).toBe(KeyShape.Escaped);
        expect(decoder.escapedKey).toBe(keyOf(c.entityType, c.entityId));
      }
      expect(decoder.decodeScanned(buf, start, end, true)).toEqual(c);
    }
    // Not the line of the last key() call: decoded from scratch.
    const [start, end] = bounds[0] as [number, number];
    expect(decoder.decodeScanned(buf, start, end, true)).toEqual(changes[0]);
    // The same bounds in another buffer (another line of the same length): decoded from its own bytes.
    const one = linesOf([change("a", "e1", 1)]);
    const two = linesOf([change("a", "e2", 1)]);
    const [s1, e1] = one.bounds[0] as [number, number];
    expect(two.bounds[0]).toEqual([s1, e1]);
    expect(decoder.key(one.buf, s1, e1)).toBe(KeyShape.Raw);
    expect(decoder.decodeScanned(two.buf, s1, e1, true)).toEqual(change("a", "e2", 1));
  });

  it("decodes a line of another field order through a full parse, in decode and in decodeScanned", () => {
    const line = Buffer.from(
      `{"entityID":"x","namespace":"${NS}","entityType":"t","changeType":"set","timestamp":"2025-01-01T00:00:00.000Z","entity":{"a":1}}`,
    );
    const decoder = new LineDecoder(NS, linePrefix(NS));
    expect(decoder.key(line, 0, line.length)).toBe(KeyShape.Other);
    const expected = {
      namespace: NS,
      changeType: ChangeType.Set,
      entityType: "t",
      entityId: "x",
      entity: { a: 1 },
      timestamp: new Date("2025-01-01T00:00:00.000Z"),
    };
    expect(decoder.decodeScanned(line, 0, line.length, true)).toEqual(expected);
    expect(decoder.decode(line, 0, line.length, true)).toEqual(expected);
  });
});
