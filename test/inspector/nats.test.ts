/**
 * The inspector over NATS stores (the test run's nats-server): a KV store's
 * namespaces and entities, and the projection statuses a NATS read-model
 * store lists (`listProjectionStatuses`).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Inspector } from "../../src/inspector/index.js";
import { NatsKvStore, NatsReadModelStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "../nats/env.js";

let nc: NatsConnection;

beforeAll(async () => {
  nc = await connectTest("inspector-test");
});

afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

describe("inspector over NATS", () => {
  it("NatsReadModelStore lists its projection statuses by name", async () => {
    const models = await NatsReadModelStore.open({ client: nc, bucket: uniqueBucket("insp") });
    try {
      expect(await models.listProjectionStatuses()).toEqual([]);
      const updatedAt = new Date("2026-01-01T00:00:00Z");
      await models.updateProjectionStatus({
        name: "zeta",
        status: "failed",
        checkpoint: 3,
        updatedAt,
        lastError: "boom",
      });
      await models.updateProjectionStatus({
        name: "alpha",
        status: "catching_up",
        checkpoint: 1,
        updatedAt,
        lagEvents: 5,
      });
      await models.updateProjectionStatus({
        name: "alpha",
        status: "up_to_date",
        checkpoint: 6,
        updatedAt,
        lagEvents: 0,
      });
      await models.save(
        { n: 1 },
        {
          id: "m1",
          modelType: "Totals",
          schemaVersion: 1,
          lastUpdated: updatedAt,
          lastEventPosition: 1,
          metadata: {},
        },
      );
      const list = await models.listProjectionStatuses();
      expect(list).toEqual([
        { name: "alpha", status: "up_to_date", checkpoint: 6, updatedAt, lagEvents: 0 },
        { name: "zeta", status: "failed", checkpoint: 3, updatedAt, lastError: "boom" },
      ]);
    } finally {
      await models.close();
    }
  });

  it("shows a KV store's entities and a NATS read-model store's projections", async () => {
    const store = await NatsKvStore.open({ client: nc, bucket: uniqueBucket("insp") });
    const models = await NatsReadModelStore.open({ client: nc, bucket: uniqueBucket("insp") });
    await store.save([
      { namespace: "tenant-1", changeType: "set", entityType: "user", entityId: "u1", entity: { name: "Ann" } },
    ]);
    await models.updateProjectionStatus({ name: "users", status: "up_to_date", checkpoint: 1, updatedAt: new Date() });
    const inspector = await Inspector.open({ targets: [{ name: "nats", store, readModels: models }] });
    const get = async (path: string) =>
      (
        await fetch(`http://127.0.0.1:${inspector.port}${path}`, {
          headers: { Authorization: `Bearer ${inspector.token}` },
        })
      ).json();
    try {
      expect(await get("/api/namespaces?target=0")).toEqual({ namespaces: ["tenant-1"] });
      const entities = (await get("/api/entities?target=0&namespace=tenant-1")) as { items: { entity: unknown }[] };
      expect(entities.items.map((i) => i.entity)).toEqual([{ name: "Ann" }]);
      const projections = (await get("/api/projections?target=0")) as {
        projections: { name: string; status: { status: string } }[];
      };
      expect(projections.projections.map((p) => [p.name, p.status.status])).toEqual([["users", "up_to_date"]]);
    } finally {
      await inspector.close();
      await Promise.all([store.close(), models.close()]);
    }
  });
});
