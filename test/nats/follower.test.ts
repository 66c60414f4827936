/**
 * Followers in several processes on one NATS KV bucket: two processes
 * follow a namespace while three others write to it; after each writer
 * finishes, the followers wait for the cursor it reported (read-your-writes)
 * and must then hold its last save, and finally exactly the stored state.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, it } from "vitest";
import { NatsKvStore } from "../../src/nats/index.js";
import { runFollowerScenario } from "../helpers/follower-scenario.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { spawnFixture } from "./spawn.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("follower-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "follower-child.ts");

describe("Follower with several processes on a NATS KV bucket", () => {
  it("two followers in other processes reach every writer's cursor with the stored state", {
    timeout: 120_000,
  }, async () => {
    const bucket = { url: natsUrl(), bucket: uniqueBucket("follow") };
    // The bucket exists before the processes race to create it.
    await (await NatsKvStore.open({ client: nc, bucket: bucket.bucket })).close();
    await runFollowerScenario({
      spawn: (role, args) => spawnFixture(fixture, role, { ...args, ...bucket }),
      load: async () => {
        const store = await NatsKvStore.open({ client: nc, bucket: bucket.bucket });
        try {
          return await store.load("ws");
        } finally {
          await store.close();
        }
      },
      // Stream sequences: the largest writer's cursor is the latest.
      latest: (cursors) =>
        JSON.stringify(
          cursors
            .map((c) => JSON.parse(c) as { position: number; epoch: string })
            .reduce((a, b) => (b.position > a.position ? b : a)),
        ),
    });
  });
});
