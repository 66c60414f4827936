/**
 * The two roles of a follower test's child processes, on any store:
 * - `follower`: follows namespace `ws` into a map; prints `ready`; for each
 *   stdin line `wait <cursor JSON>` it waits for that cursor and prints
 *   `state <entities JSON>` (sorted by id); `stop` ends it.
 * - `writer`: `saves` saves of two changes each (one shared key, one of its
 *   own); then prints `cursor <JSON>`: the barrier of a feed started after
 *   its last save.
 */
import { createInterface } from "node:readline";
import { type FollowOptions, ManagerBuilder, type Store } from "../../src/index.js";
import { MapEntityRepository } from "../../src/memory/index.js";

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Plays `role` on `store` (the caller opens and closes it). */
export async function playFollowerRole(
  role: string | undefined,
  store: Store,
  args: { writer?: number; saves?: number; follow?: FollowOptions },
): Promise<void> {
  if (role === "follower") {
    const items = new MapEntityRepository();
    const manager = new ManagerBuilder().withStore(store).registerRepository("item", items).build();
    const follower = await manager.follow("ws", args.follow);
    say("ready");
    for await (const line of createInterface({ input: process.stdin })) {
      if (line === "stop") break;
      if (!line.startsWith("wait ")) continue;
      await follower.waitFor(JSON.parse(line.slice(5)));
      say(`state ${JSON.stringify([...items.entities.entries()].sort(([a], [b]) => (a < b ? -1 : 1)))}`);
    }
    await follower.close();
  } else if (role === "writer") {
    const writer = args.writer as number;
    for (let i = 0; i < (args.saves as number); i++) {
      await store.save([
        { namespace: "ws", changeType: "set", entityType: "item", entityId: "shared", entity: { writer, i } },
        { namespace: "ws", changeType: "set", entityType: "item", entityId: `w${writer}`, entity: { i } },
      ]);
    }
    const feed = (store.watch as NonNullable<Store["watch"]>).call(store, "ws");
    const cursor = await (async () => {
      for await (const event of feed) if (event.type === "caught-up") return event;
      throw new Error("feed ended");
    })();
    feed.close();
    say(`cursor ${JSON.stringify({ position: cursor.position, epoch: cursor.epoch })}`);
  } else {
    throw new Error(`unknown role ${role}`);
  }
}

/** Runs `main` as a child's whole life: exit 0 when it resolves, 1 with the stack on stderr when it fails. */
export function runChild(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
