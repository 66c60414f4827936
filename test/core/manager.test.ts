import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  applyChanges,
  type Change,
  type ChangeInput,
  ChangesBuilder,
  ConfigurationError,
  dedupeChanges,
  defineEntityType,
  type EntityRepository,
  type EntityType,
  ErrorCode,
  isApplyError,
  isStatelogError,
  ManagerBuilder,
  type Store,
} from "../../src/index.js";
import { MapEntityRepository, MemoryStore } from "../../src/memory/index.js";

const t = (ms: number) => new Date(Date.UTC(2025, 0, 1) + ms);
const change = (id: string, v: number | null, at: Date, type = "item"): Change =>
  v === null
    ? { namespace: "ws", changeType: "unset", entityType: type, entityId: id, timestamp: at }
    : { namespace: "ws", changeType: "set", entityType: type, entityId: id, entity: { v }, timestamp: at };

describe("dedupeChanges (Apply's de-duplication)", () => {
  it("keeps the later timestamp per key; on equal timestamps the later one in the input; input order kept", () => {
    const input = [
      change("a", 1, t(5)),
      change("b", 1, t(1)),
      change("a", 2, t(3)),
      change("b", 2, t(1)),
      change("c", null, t(0)),
    ];
    expect(dedupeChanges(input).map((c) => [c.entityId, c.entity])).toEqual([
      ["a", { v: 1 }],
      ["b", { v: 2 }],
      ["c", undefined],
    ]);
  });

  it("keeps namespaces apart", () => {
    const other = { ...change("a", 9, t(9)), namespace: "other" };
    expect(dedupeChanges([change("a", 1, t(1)), other])).toHaveLength(2);
  });
});

describe("applyChanges", () => {
  const registry = (repo: MapEntityRepository) =>
    new Map([["item", { type: { name: "item", schema: undefined }, repository: repo as EntityRepository }]]);

  it("de-duplicates its input by default: per key, only the winner is applied", async () => {
    const repo = new MapEntityRepository();
    const result = await applyChanges(
      [change("a", 1, t(5)), change("a", 2, t(3)), change("b", 1, t(1)), change("b", null, t(2))],
      registry(repo),
    );
    expect(result).toEqual({ applied: 2, set: 1, unset: 1 });
    expect([...repo.entities]).toEqual([["a", { v: 1 }]]);
  });

  it("with { unique: true } skips the de-duplication: the caller guarantees one change per key", async () => {
    const repo = new MapEntityRepository();
    const unique = [change("a", 1, t(1)), change("b", null, t(1)), change("c", 3, t(1))];
    expect(await applyChanges(unique, registry(repo), { unique: true })).toEqual({ applied: 3, set: 2, unset: 1 });
    expect([...repo.entities]).toEqual([
      ["a", { v: 1 }],
      ["c", { v: 3 }],
    ]);
    // Duplicates despite the promise are applied as given, in input order (no de-duplication step ran).
    const duplicated = [change("a", 9, t(5)), change("a", 8, t(3))];
    expect(await applyChanges(duplicated, registry(repo), { unique: true })).toEqual({ applied: 2, set: 2, unset: 0 });
    expect(repo.get("a")).toEqual({ v: 8 });
  });
});

describe("Manager", () => {
  it("restore applies what the store loaded as it is: one change per key, no second de-duplication", async () => {
    const items = new MapEntityRepository();
    // A store that breaks the one-change-per-key promise shows that restore does not de-duplicate again.
    const loaded = [change("a", 1, t(5)), change("a", 2, t(3)), change("b", null, t(1))];
    const store = { load: async () => loaded, save: async () => [] } as never;
    const manager = new ManagerBuilder().withStore(store).registerRepository("item", items).build();
    const result = await manager.restore("ws");
    expect(result).toMatchObject({ namespace: "ws", loaded: 3, applied: 3, set: 2, unset: 1 });
    expect(items.get("a")).toEqual({ v: 2 });
  });

  it("restores the latest state, applying deletes, and restoring twice gives the same state", async () => {
    const store = new MemoryStore();
    const deployments = new MapEntityRepository<{ id: string; name: string }>();
    const environments = new MapEntityRepository();
    const Deployment = defineEntityType<{ id: string; name: string }>("deployment");
    const manager = new ManagerBuilder()
      .withStore(store)
      .registerRepository(Deployment, deployments)
      .registerRepository("environment", environments)
      .build();
    await manager.persist(
      new ChangesBuilder("workspace-1")
        .create(Deployment, { id: "d1", name: "API" })
        .update(Deployment, { id: "d1", name: "API v2" })
        .create(Deployment, { id: "d2", name: "Worker" })
        .set("environment", "e1", { id: "e1", name: "Prod" })
        .build(),
    );
    await manager.persist(new ChangesBuilder("workspace-1").delete(Deployment, "d2").build());
    deployments.entities.set("d2", { id: "d2", name: "stale" }); // state from before: the tombstone must delete it
    const result = await manager.restore("workspace-1");
    expect(result).toMatchObject({ namespace: "workspace-1", loaded: 3, applied: 3, set: 2, unset: 1 });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect([...deployments.entities]).toEqual([["d1", { id: "d1", name: "API v2" }]]);
    expect(environments.get("e1")).toEqual({ id: "e1", name: "Prod" });
    await manager.restore("workspace-1");
    expect([...deployments.entities]).toEqual([["d1", { id: "d1", name: "API v2" }]]);
    expect(environments.size).toBe(1);
    expect(manager.entityTypes).toEqual(["deployment", "environment"]);
  });

  it("fails at build time without a store, and on a repository registered twice", () => {
    expect(() => new ManagerBuilder().build()).toThrow(/no store/);
    expect(() =>
      new ManagerBuilder()
        .registerRepository("a", new MapEntityRepository())
        .registerRepository("a", new MapEntityRepository()),
    ).toThrow(/already registered/);
  });

  it("refuses at registration what is not a store, a repository or a schema, so that a restore never applies part of a state", async () => {
    const refused = (f: () => unknown, message: RegExp) => {
      expect(f).toThrow(ConfigurationError);
      expect(f).toThrow(message);
    };
    refused(() => new ManagerBuilder().withStore({} as Store), /not a store \(no load or save method\)/);
    refused(() => new ManagerBuilder().withStore(undefined as unknown as Store), /not a store \(got undefined\)/);
    refused(
      () => new ManagerBuilder().registerRepository("b", {} as EntityRepository),
      /entity type "b" is not one \(no set or unset method\)/,
    );
    refused(
      () => new ManagerBuilder().registerRepository("b", { set: () => undefined } as unknown as EntityRepository),
      /no unset method/,
    );
    const notASchema = { name: "c", id: () => "", schema: { parse: () => 1 } } as unknown as EntityType<unknown>;
    refused(
      () => new ManagerBuilder().registerRepository(notASchema, new MapEntityRepository()),
      /not a Standard Schema/,
    );

    // The builder is left as it was: the good registration restores alone.
    const store = new MemoryStore();
    await store.save([{ namespace: "ws", changeType: "set", entityType: "a", entityId: "1", entity: 1 }]);
    const a = new MapEntityRepository();
    const builder = new ManagerBuilder().withStore(store).registerRepository("a", a);
    refused(() => builder.registerRepository("b", {} as EntityRepository), /not one/);
    await builder.build().restore("ws");
    expect(a.size).toBe(1);
  });

  it("checks every entity type before applying anything", async () => {
    const store = new MemoryStore();
    await store.save([
      { namespace: "ws", changeType: "set", entityType: "known", entityId: "1", entity: 1 },
      { namespace: "ws", changeType: "set", entityType: "mystery", entityId: "2", entity: 2 },
    ]);
    const known = new MapEntityRepository();
    const manager = new ManagerBuilder().withStore(store).registerRepository("known", known).build();
    const error = await manager.restore("ws").catch((e: unknown) => e);
    expect(isStatelogError(error, ErrorCode.UnknownEntityType)).toBe(true);
    expect((error as Error).message).toContain('"mystery"');
    expect(known.size).toBe(0);
  });

  it("validates restored entities with the type's schema before applying anything", async () => {
    const store = new MemoryStore();
    const changes: ChangeInput[] = [
      { namespace: "ws", changeType: "set", entityType: "env", entityId: "1", entity: { id: "1", name: "ok" } },
      { namespace: "ws", changeType: "set", entityType: "env", entityId: "2", entity: { id: "2", name: 5 } },
    ];
    await store.save(changes);
    const Env = defineEntityType("env", { schema: z.object({ id: z.string(), name: z.string() }) });
    const repo = new MapEntityRepository();
    const manager = new ManagerBuilder().withStore(store).registerRepository(Env, repo).build();
    await expect(manager.restore("ws")).rejects.toMatchObject({ code: ErrorCode.Validation });
    expect(repo.size).toBe(0);
  });

  it("a repository that throws stops the apply with the type, id and cause", async () => {
    const store = new MemoryStore();
    await store.save(new ChangesBuilder("ws").set("item", "1", 1).set("item", "2", 2).set("item", "3", 3).build());
    const seen: string[] = [];
    const boom = new Error("repository full");
    const repo: EntityRepository<number> = {
      set(_entity, change) {
        if (change.entityId === "2") throw boom;
        seen.push(change.entityId);
      },
      unset() {},
    };
    const manager = new ManagerBuilder().withStore(store).registerRepository("item", repo).build();
    const error = await manager.restore("ws").catch((e: unknown) => e);
    expect(isApplyError(error)).toBe(true);
    expect(error).toMatchObject({ entityType: "item", entityId: "2" });
    expect((error as Error).cause).toBe(boom);
    expect((error as Error).message).toBe('applying item "2" failed: repository full');
    expect(seen).toEqual(["1"]);
  });

  it("awaits async repositories in order", async () => {
    const store = new MemoryStore();
    await store.save(new ChangesBuilder("ws").set("item", "1", 1).unset("item", "2").set("item", "3", 3).build());
    const log: string[] = [];
    const repo: EntityRepository<number> = {
      async set(entity, change) {
        await new Promise((r) => setTimeout(r, 3 - entity));
        log.push(`set ${change.entityId}`);
      },
      async unset(id) {
        log.push(`unset ${id}`);
      },
    };
    await new ManagerBuilder().withStore(store).registerRepository("item", repo).build().restore("ws");
    expect(log).toEqual(["set 1", "unset 2", "set 3"]);
  });

  it("restore honours an aborted signal", async () => {
    const store = new MemoryStore();
    const manager = new ManagerBuilder().withStore(store).build();
    await expect(manager.restore("ws", { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: ErrorCode.Aborted,
    });
  });
});
