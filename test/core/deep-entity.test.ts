/**
 * An entity nested too deeply for `JSON.stringify` (and the checks that
 * walk it) is bad input like any other: an `InvalidValueError` naming
 * the change, and nothing of the save written. The same for an event's
 * data (the check is the one every JSON value goes through).
 */
import { describe, expect, it } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { FileStore } from "../../src/file/index.js";
import { type ChangeInput, isInvalidValueError, type Store } from "../../src/index.js";
import { MemoryEventStore, MemoryStore } from "../../src/memory/index.js";
import { tempDir } from "../helpers/temp.js";

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

const set = (entityId: string, entity: unknown): ChangeInput => ({
  namespace: "ns",
  changeType: "set",
  entityType: "item",
  entityId,
  entity,
});

describe.each([
  ["MemoryStore", () => MemoryStore.open()],
  ["FileStore", () => FileStore.open({ directory: tempDir("statelog-deep-") })],
] as [string, () => Promise<Store>][])("%s.save of a deeply nested entity", (_name, open) => {
  it("is an InvalidValueError naming the change, and writes nothing", async () => {
    await using store = await open();
    for (const depth of [20_000, 200_000]) {
      const error = await store.save([set("a", { ok: true }), set("b", nested(depth))]).catch((e: unknown) => e);
      expect(isInvalidValueError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ path: "changes[1].entity" });
    }
    expect(await store.load("ns")).toEqual([]);
    await store.save([set("c", nested(100))]);
    expect((await store.load("ns")).map((c) => c.entityId)).toEqual(["c"]);
  });
});

it("an event whose data is nested too deeply is an InvalidValueError naming it, and is not appended", async () => {
  await using store = await MemoryEventStore.open();
  const error = await store.append("s", [createEvent("t", nested(50_000))]).catch((e: unknown) => e);
  expect(isInvalidValueError(error), String(error)).toBe(true);
  expect(error).toMatchObject({ path: "events[0].data" });
  expect(store.stats().totalEvents).toBe(0);
});
