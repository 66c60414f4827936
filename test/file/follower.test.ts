/**
 * Followers in several processes on one directory: two processes follow
 * a namespace while three others write to it (compacting all the time);
 * after each writer finishes, the followers wait for the cursor it
 * reported (read-your-writes) and must then hold exactly the stored state.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FileStore } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";
import { type Child, spawnChild } from "./spawn.js";

/** Asks a follower to wait for `cursor`; its state (JSON) once it got there. */
async function ask(f: Child, cursor: string): Promise<string> {
  const states = (): string[] => f.lines.filter((l) => l.startsWith("state "));
  const before = states().length;
  f.process.stdin?.write(`wait ${cursor}\n`);
  await f.waitFor(() => states().length > before);
  return (states().at(-1) as string).slice("state ".length);
}

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "follower-child.ts");

describe("Follower with several processes on a file store", () => {
  it("two followers in other processes reach every writer's cursor with the stored state", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    const followers = await Promise.all([0, 1].map(() => spawnChild("follower", { dir }, {}, fixture)));
    await Promise.all(followers.map((f) => f.waitFor((l) => l === "ready")));
    const writers = await Promise.all(
      [0, 1, 2].map((writer) => spawnChild("writer", { dir, writer, saves: 40 }, {}, fixture)),
    );
    const cursors = await Promise.all(writers.map((w) => w.waitFor((l) => l.startsWith("cursor "))));
    for (const w of writers) expect((await w.exited).code, w.stderr()).toBe(0);
    const store = await FileStore.open({ directory: dir });
    const stored = (await store.load("ws"))
      .map((c) => [c.entityId, (c as { entity: unknown }).entity])
      .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1));
    await store.close();
    expect(stored).toHaveLength(4);
    // Read-your-writes: once a follower reaches a writer's cursor, it holds that writer's last save.
    for (const [i, line] of cursors.entries()) {
      for (const f of followers) {
        const entities = JSON.parse(await ask(f, line.slice("cursor ".length))) as [string, unknown][];
        expect(entities.find(([id]) => id === `w${i}`)?.[1]).toEqual({ i: 39 });
      }
    }
    // Every writer is done: each follower settles on the stored state.
    for (const f of followers) {
      let state: unknown;
      for (let attempt = 0; attempt < 100; attempt++) {
        state = JSON.parse(await ask(f, (cursors[2] as string).slice("cursor ".length)));
        if (JSON.stringify(state) === JSON.stringify(stored)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(state).toEqual(stored);
      f.process.stdin?.write("stop\n");
      expect((await f.exited).code, f.stderr()).toBe(0);
    }
  });
});
