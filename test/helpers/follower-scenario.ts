/**
 * The follower test of a store, with processes (children playing the roles
 * of follower-roles.ts): two followers follow namespace `ws` while three
 * writers write to it; after each writer finishes, every follower waits for
 * the cursor it reported (read-your-writes) and must then hold its last
 * save, and finally exactly the stored state.
 */
import { expect } from "vitest";
import type { Change } from "../../src/index.js";
import type { Child } from "../file/spawn.js";

export interface FollowerScenario {
  /** Starts a child in `role` with `args` (`writer`, `saves` for writers). */
  spawn(role: "follower" | "writer", args: object): Child | Promise<Child>;
  /** What the store holds in `ws` once the writers are done. */
  load(): Promise<Change[]>;
  /**
   * The cursor at which every follower holds the stored state, from the
   * writers' cursors. Without it, the followers are asked for the last
   * writer's cursor until they hold the stored state (positions that a
   * compaction renumbers cannot be compared).
   */
  latest?(cursors: readonly string[]): string;
}

/** Asks a follower to wait for `cursor`; its state (JSON) once it got there. */
async function ask(f: Child, cursor: string): Promise<string> {
  const states = (): string[] => f.lines.filter((l) => l.startsWith("state "));
  const before = states().length;
  f.process.stdin?.write(`wait ${cursor}\n`);
  await f.waitFor(() => states().length > before);
  return (states().at(-1) as string).slice("state ".length);
}

export async function runFollowerScenario(scenario: FollowerScenario): Promise<void> {
  const followers = await Promise.all([0, 1].map(() => scenario.spawn("follower", {})));
  await Promise.all(followers.map((f) => f.waitFor((l) => l === "ready")));
  const writers = await Promise.all([0, 1, 2].map((writer) => scenario.spawn("writer", { writer, saves: 40 })));
  const cursors = (await Promise.all(writers.map((w) => w.waitFor((l) => l.startsWith("cursor "))))).map((l) =>
    l.slice("cursor ".length),
  );
  for (const w of writers) expect((await w.exited).code, w.stderr()).toBe(0);
  const stored = (await scenario.load())
    .map((c) => [c.entityId, (c as { entity: unknown }).entity])
    .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1));
  expect(stored).toHaveLength(4);
  // Read-your-writes: once a follower reaches a writer's cursor, it holds that writer's last save.
  for (const [i, cursor] of cursors.entries()) {
    for (const f of followers) {
      const entities = JSON.parse(await ask(f, cursor)) as [string, unknown][];
      expect(entities.find(([id]) => id === `w${i}`)?.[1]).toEqual({ i: 39 });
    }
  }
  // Every writer is done: each follower settles on the stored state.
  for (const f of followers) {
    if (scenario.latest) {
      expect(JSON.parse(await ask(f, scenario.latest(cursors)))).toEqual(stored);
    } else {
      let state: unknown;
      for (let attempt = 0; attempt < 100; attempt++) {
        state = JSON.parse(await ask(f, cursors[2] as string));
        if (JSON.stringify(state) === JSON.stringify(stored)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(state).toEqual(stored);
    }
    f.process.stdin?.write("stop\n");
    expect((await f.exited).code, f.stderr()).toBe(0);
  }
}
