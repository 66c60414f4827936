/**
 * LineDecoder (src/file/decoder.ts): a line's key from its prefix, and a
 * line's change, for statelog's own lines and lines of other shapes.
 */
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { EntityBatchError, KeyShape, LineDecoder } from "../../src/file/decoder.js";
import { NameJsonCache } from "../../src/file/encode.js";
import { checkLineCrc, keyOf, linePrefix } from "../../src/file/format.js";
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

/** Decodes every line of `bounds` with a batching decoder as a read does, flushing when due and at the end. */
function decodeBatched(buf: Buffer, bounds: [number, number][]): { decoded: Change[]; deferred: number } {
  const decoder = new LineDecoder(NS, linePrefix(NS), true);
  const decoded: Change[] = [];
  let deferred = 0;
  bounds.forEach(([start, end], line) => {
    const c = decoder.decode(buf, start, end, true, line);
    if (c.changeType === ChangeType.Set && c.entity === undefined) deferred++;
    decoded.push(c);
    if (decoder.entitiesDue()) decoder.flushEntities();
  });
  decoder.flushEntities();
  return { decoded, deferred };
}

/** `line` (statelog's own, with `crc`) with its entity text replaced by `text` and its checksum recomputed. */
function withEntityText(line: string, text: string): string {
  const from = line.indexOf(',"entity":') + ',"entity":'.length;
  const to = line.lastIndexOf(',"timestamp":"');
  const body = `${line.slice(0, from)}${text}${line.slice(to, line.lastIndexOf(',"crc":"'))}`;
  return `${body},"crc":"${crc32(Buffer.from(body)).toString(16).padStart(8, "0")}"}`;
}

describe("LineDecoder with batchEntities", () => {
  it("parses the entities of checksummed lines in batches and returns what a parse per line returns", () => {
    const big = { blob: "x".repeat(100 * 1024), nested: { list: [1, 2, { deep: "é\u2028" }] } };
    const entities: unknown[] = [
      big,
      { half: "h".repeat(40 * 1024) }, // more than half a batch: parsed alone too
      [1, 2],
      "text",
      42,
      null,
      true,
      {},
      { 'q"uote': "\\", u: "\u{1f600}" },
    ];
    const changes: Change[] = Array.from({ length: 1500 }, (_, k) => {
      const c = change(`t${k % 3}`, `e${k}`, k);
      return c.changeType === ChangeType.Set && k % 97 < entities.length ? { ...c, entity: entities[k % 97] } : c;
    });
    const { buf, bounds } = linesOf(changes);
    const { decoded, deferred } = decodeBatched(buf, bounds);
    expect(decoded).toEqual(changes);
    // Object entities were batched, but those larger than half a batch; the others (arrays, strings…) parsed at once.
    const batched = changes.filter(
      (c) =>
        c.changeType === ChangeType.Set &&
        c.entity !== null &&
        typeof c.entity === "object" &&
        !Array.isArray(c.entity) &&
        JSON.stringify(c.entity).length <= 32 * 1024,
    ).length;
    expect(batched).toBeGreaterThan(500);
    expect(deferred).toBe(batched);
    // Lines without checksums are not batched.
    const plain = linesOf(changes.slice(0, 50))
      .buf.toString()
      .replace(/,"crc":"[0-9a-f]{8}"/g, "");
    const plainBuf = Buffer.from(plain);
    const plainBounds: [number, number][] = [];
    for (let at = 0; at < plainBuf.length; ) {
      const nl = plainBuf.indexOf(10, at);
      plainBounds.push([at, nl]);
      at = nl + 1;
    }
    const fromPlain = decodeBatched(plainBuf, plainBounds);
    expect(fromPlain.decoded).toEqual(changes.slice(0, 50));
    expect(fromPlain.deferred).toBe(0);
  });

  /** Decodes 20 set lines with the entity texts of `damaged` (line → text, checksums recomputed) in one batch. */
  function flushDamaged(damaged: Record<number, string>): { error: unknown; decoded: Change[]; changes: Change[] } {
    const changes = Array.from({ length: 20 }, (_, k) => change("t", `e${k}`, k * 7 + 1)); // all set changes
    const lines = linesOf(changes).buf.toString().split("\n").slice(0, -1);
    for (const [i, text] of Object.entries(damaged))
      lines[Number(i)] = withEntityText(lines[Number(i)] as string, text);
    const buf = Buffer.from(`${lines.join("\n")}\n`);
    const bounds: [number, number][] = [];
    for (let at = 0; at < buf.length; ) {
      const nl = buf.indexOf(10, at);
      bounds.push([at, nl]);
      at = nl + 1;
    }
    for (const [start, end] of bounds) checkLineCrc(buf, start, end, NS); // the checksums hold
    const decoder = new LineDecoder(NS, linePrefix(NS), true);
    const decoded = bounds.map(([start, end], line) => decoder.decode(buf, start, end, true, line));
    try {
      decoder.flushEntities();
      return { error: undefined, decoded, changes };
    } catch (error) {
      return { error, decoded, changes };
    }
  }

  it("names every line whose entity is not valid JSON alone: a string left open cannot run into the next text", () => {
    // Joined by commas alone, the first two would parse as one object and the third as two: 20 values.
    const { error, decoded, changes } = flushDamaged({ 3: '{"a":"}', 4: '{","b":{}}', 12: '{"c":1},{"d":2}' });
    expect(error).toBeInstanceOf(EntityBatchError);
    expect((error as EntityBatchError).lines).toEqual([3, 4, 12]);
    // The other lines of the batch got their entities.
    for (const i of [0, 2, 5, 11, 13, 19]) expect(decoded[i]).toEqual(changes[i]);
  });

  it("names every line whose entity is not valid JSON alone: texts whose brackets complement each other", () => {
    // One value for two texts: the batch parses, to 19 values for 20 texts.
    const { error, decoded, changes } = flushDamaged({ 10: '{"a":[{}', 11: '{"x":1}]}' });
    expect(error).toBeInstanceOf(EntityBatchError);
    expect((error as EntityBatchError).lines).toEqual([10, 11]);
    for (const i of [0, 9, 12, 19]) expect(decoded[i]).toEqual(changes[i]);
  });

  it("names every line whose entity is not valid JSON alone: as many values as texts, but not one per text", () => {
    // Two texts make one value (swallowing the zero between them), a third makes three: 40 values for 20
    // texts, as many as a batch expects, but not a zero at every other place.
    const { error, decoded, changes } = flushDamaged({
      10: '{"a":[{}',
      11: '{"x":1}]}',
      12: '{"c":1},{"d":2},{"e":3}',
    });
    expect(error).toBeInstanceOf(EntityBatchError);
    expect((error as EntityBatchError).lines).toEqual([10, 11, 12]);
    for (const i of [0, 9, 13, 19]) expect(decoded[i]).toEqual(changes[i]);
  });
});
