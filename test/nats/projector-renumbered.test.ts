/**
 * A projection over a NatsEventStore whose messages `max_age` removed
 * while no process ran: a store opened afterwards numbers global positions
 * anew from what is left, so the projection's stored checkpoint can be
 * past every event. The projection fails with a `CorruptionError` that
 * says so (it used to wait, silently passing over the new events, until
 * they reached its old checkpoint), and a rebuild folds what is stored.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createEvent } from "../../src/events/index.js";
import { FileReadModelStore } from "../../src/file/index.js";
import { isCorruptionError } from "../../src/index.js";
import { NatsEventStore } from "../../src/nats/index.js";
import { type Projection, Projector } from "../../src/read-models/index.js";
import { connectTest, deleteTestStreams, uniqueBucket } from "./env.js";

let nc: NatsConnection;
let dir: string;
beforeAll(async () => {
  nc = await connectTest("projector-renumbered");
  dir = await mkdtemp(path.join(tmpdir(), "statelog-projector-renumbered-"));
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
  await rm(dir, { recursive: true, force: true });
});

const seen: Projection<{ seen: number[] }, { n: number }> = {
  name: "seen",
  modelType: "Seen",
  handles: ["hit"],
  id: () => "all",
  evolve: (m, e) => ({ seen: [...(m?.seen ?? []), e.data.n] }),
};

it("a projection whose checkpoint is past the renumbered events fails loudly; a rebuild folds what is stored", async () => {
  const stream = uniqueBucket("RENUMBERED");
  const directory = path.join(dir, "models");
  {
    await using events = await NatsEventStore.open({ client: nc, stream, retentionDurationMs: 1000 });
    await using readModels = await FileReadModelStore.open({ directory });
    await using projector = await Projector.open({ eventStore: events, readModels, projections: [seen] });
    for (let n = 1; n <= 5; n++) await events.append("s", [createEvent("hit", { n })]);
    await projector.waitForCatchUp({ timeoutMs: 5000 });
  }
  // The server removes the five messages (max_age) while no store is open.
  const jsm = await jetstreamManager(nc);
  await vi.waitFor(async () => expect((await jsm.streams.info(stream)).state.messages).toBe(0), {
    timeout: 20_000,
    interval: 100,
  });
  await using events = await NatsEventStore.open({ client: nc, stream, retentionDurationMs: 1000 });
  for (let n = 6; n <= 8; n++) await events.append("s", [createEvent("hit", { n })]);
  expect(events.stats().globalPosition).toBe(3);
  await using readModels = await FileReadModelStore.open({ directory });
  await using projector = await Projector.open({ eventStore: events, readModels, projections: [seen] });
  const error = await projector.waitForCatchUp({ timeoutMs: 5000 }).catch((e: unknown) => e);
  expect(isCorruptionError(error)).toBe(true);
  expect(String(error)).toContain("checkpoint is global position 5, past the event store's last one (3)");
  expect(projector.status("seen")).toMatchObject({ status: "failed", checkpoint: 5 });
  await projector.rebuild("seen");
  await projector.waitForCatchUp({ timeoutMs: 5000 });
  expect((await projector.models.load<{ seen: number[] }>("Seen", "all"))?.model).toEqual({ seen: [6, 7, 8] });
});
