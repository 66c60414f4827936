/**
 * Followers in several processes on one NATS KV bucket: two processes
 * follow a namespace while three others write to it; after each writer
 * finishes, the followers wait for the cursor it reported (read-your-writes)
 * and must then hold its last save, and finally exactly the stored state.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsKvStore } from "../../src/nats/index.js";
import { connectTest, deleteTestStreams, natsUrl, uniqueBucket } from "./env.js";
import { type Child, spawnFixture } from "./spawn.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest("follower-test");
});
afterAll(async () => {
  if (nc) await deleteTestStreams(nc);
  await nc?.close();
});

/** Asks a follower to wait for `cursor`; its state (JSON) once it got there. */
async function ask(f: Child, cursor: string): Promise<string> {
  const states = (): string[] => f.lines.filter((l) => l.startsWith("state "));
  const before = states().length;
  f.process.stdin?.write(`wait ${cursor}\n`);
  await f.waitFor(() => states().length > before);
  return (states().at(-1) as string).slice("state ".length);
}

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "follower-child.ts");

describe("Follower with several processes on a NATS KV bucket", () => {
  it("two followers in other processes reach every writer's cursor with the stored state", {
    timeout: 120_000,
  }, async () => {
    const args = { url: natsUrl(), bucket: uniqueBucket("follow") };
    // The bucket exists before the processes race to create it.
    await (await NatsKvStore.open({ client: nc, bucket: args.bucket })).close();
    const followers = [0, 1].map(() => spawnFixture(fixture, "follower", args));
    await Promise.all(followers.map((f) => f.waitFor((l) => l === "ready")));
    const writers = [0, 1, 2].map((writer) => spawnFixture(fixture, "writer", { ...args, writer, saves: 40 }));
    const cursors = await Promise.all(writers.map((w) => w.waitFor((l) => l.startsWith("cursor "))));
    for (const w of writers) expect((await w.exited).code, w.stderr()).toBe(0);
    const store = await NatsKvStore.open({ client: nc, bucket: args.bucket });
    const stored = (await store.load("ws"))
      .map((c) => [c.entityId, (c as { entity: unknown }).entity])
      .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1));
    await store.close();
    expect(stored).toHaveLength(4);
    for (const [i, line] of cursors.entries()) {
      for (const f of followers) {
        const entities = JSON.parse(await ask(f, line.slice("cursor ".length))) as [string, unknown][];
        expect(entities.find(([id]) => id === `w${i}`)?.[1]).toEqual({ i: 39 });
      }
    }
    // Every writer is done: at the last position, each follower holds the stored state.
    const latest = cursors
      .map((l) => JSON.parse(l.slice("cursor ".length)) as { position: number; epoch: string })
      .reduce((a, b) => (b.position > a.position ? b : a));
    for (const f of followers) {
      expect(JSON.parse(await ask(f, JSON.stringify(latest)))).toEqual(stored);
      f.process.stdin?.write("stop\n");
      expect((await f.exited).code, f.stderr()).toBe(0);
    }
  });
});
