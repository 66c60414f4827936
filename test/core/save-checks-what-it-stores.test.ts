/**
 * A save checks the registered entity types on the very values it
 * stores: an input whose getters answer differently when read again
 * cannot get an unregistered type (under "reject") or an entity its
 * schema refuses into the store.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { FileStore } from "../../src/file/index.js";
import type { BaseStoreOptions, ChangeInput, Store } from "../../src/index.js";
import { MemoryStore } from "../../src/memory/index.js";
import { tempDir } from "../helpers/temp.js";

/** An object whose `key` is `first` when read the first time, `later` after. */
function changing<T>(base: object, key: string, first: T, later: T): ChangeInput {
  let reads = 0;
  return Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get: () => (++reads === 1 ? first : later),
  }) as ChangeInput;
}

describe.each([
  ["MemoryStore", (options: BaseStoreOptions) => MemoryStore.open(options)],
  ["FileStore", (options: BaseStoreOptions) => FileStore.open({ directory: tempDir("statelog-checks-"), ...options })],
] as [string, (options: BaseStoreOptions) => Promise<Store>][])("%s.save", (_name, open) => {
  it("refuses an unregistered entity type under reject, whatever its getter answers later", async () => {
    await using store = await open({ entityTypes: ["ok"], unknownEntityTypes: "reject" });
    const base = { namespace: "ns", changeType: "set", entityId: "1", entity: { v: 1 } };
    const error = await store.save([changing(base, "entityType", "other", "ok")]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STATELOG_UNKNOWN_ENTITY_TYPE", entityType: "other" });
    expect(await store.load("ns")).toEqual([]);
  });

  it("runs the schema on the entity it stores, whatever its getter answers later", async () => {
    const schema = z.object({ n: z.number() });
    await using store = await open({ entityTypes: [{ name: "p", schema }] });
    const base = { namespace: "ns", changeType: "set", entityType: "p", entityId: "1" };
    const error = await store.save([changing(base, "entity", { n: "bad" }, { n: 1 })]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STATELOG_VALIDATION" });
    expect(await store.load("ns")).toEqual([]);
    await store.save([changing(base, "entity", { n: 2 }, { n: "bad" })]);
    expect((await store.load("ns")).map((c) => c.entity)).toEqual([{ n: 2 }]);
  });
});
