import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ChangesBuilder, defineEntityType, ErrorCode, isStatelogError, liveChanges } from "../../src/index.js";

interface Deployment {
  id: string;
  name: string;
}

describe("ChangesBuilder", () => {
  it("builds set and unset changes in order, with create/update/delete as aliases", () => {
    const Deployment = defineEntityType<Deployment>("deployment");
    const at = new Date("2025-10-25T12:00:00Z");
    const changes = new ChangesBuilder("workspace-1")
      .create(Deployment, { id: "d1", name: "API" })
      .update(Deployment, { id: "d1", name: "API v2" }, { timestamp: at })
      .set("environment", "e1", { id: "e1", name: "Prod" })
      .delete(Deployment, "d0")
      .unset("environment", "e0")
      .build();
    expect(changes).toEqual([
      {
        namespace: "workspace-1",
        changeType: "set",
        entityType: "deployment",
        entityId: "d1",
        entity: { id: "d1", name: "API" },
        timestamp: undefined,
      },
      {
        namespace: "workspace-1",
        changeType: "set",
        entityType: "deployment",
        entityId: "d1",
        entity: { id: "d1", name: "API v2" },
        timestamp: at,
      },
      {
        namespace: "workspace-1",
        changeType: "set",
        entityType: "environment",
        entityId: "e1",
        entity: { id: "e1", name: "Prod" },
        timestamp: undefined,
      },
      { namespace: "workspace-1", changeType: "unset", entityType: "deployment", entityId: "d0", timestamp: undefined },
      {
        namespace: "workspace-1",
        changeType: "unset",
        entityType: "environment",
        entityId: "e0",
        timestamp: undefined,
      },
    ]);
  });

  it("rejects invalid names at once", () => {
    expect(() => new ChangesBuilder("a/b")).toThrow(/namespace/);
    expect(() => new ChangesBuilder("ws").set("", "1", {})).toThrow(/entityType/);
    expect(() => new ChangesBuilder("ws").unset("t", "")).toThrow(/entityId/);
  });

  it("takes ids from a custom id function and rejects entities without one", () => {
    const Env = defineEntityType<{ key: string }>("environment", { id: (e) => e.key });
    expect(new ChangesBuilder("ws").set(Env, { key: "k1" }).build()[0]?.entityId).toBe("k1");
    const NoId = defineEntityType("thing");
    expect(() => new ChangesBuilder("ws").set(NoId, { name: "x" })).toThrow(/has no string `id`/);
  });

  it("validates (and transforms) entities through a Standard Schema such as zod", () => {
    const Env = defineEntityType("environment", {
      schema: z.object({ id: z.string(), name: z.string().trim().min(1) }),
    });
    expect(new ChangesBuilder("ws").set(Env, { id: "e1", name: "  Prod " }).build()[0]).toMatchObject({
      entity: { id: "e1", name: "Prod" },
    });
    let error: unknown;
    try {
      new ChangesBuilder("ws").set(Env, { id: "e1", name: "" });
    } catch (e) {
      error = e;
    }
    expect(isStatelogError(error, ErrorCode.Validation)).toBe(true);
    expect((error as Error).message).toMatch(/^environment: entity failed its schema: name: /);
  });

  it("build returns a copy", () => {
    const b = new ChangesBuilder("ws").set("t", "1", 1);
    const first = b.build();
    b.set("t", "2", 2);
    expect(first).toHaveLength(1);
    expect(b.build()).toHaveLength(2);
  });
});

describe("liveChanges", () => {
  it("drops tombstones", () => {
    const changes = [
      { namespace: "n", changeType: "set" as const, entityType: "t", entityId: "1", entity: 1, timestamp: new Date() },
      { namespace: "n", changeType: "unset" as const, entityType: "t", entityId: "2", timestamp: new Date() },
    ];
    expect(liveChanges(changes).map((c) => c.entityId)).toEqual(["1"]);
  });
});
