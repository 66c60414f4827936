/**
 * Followers in several processes on one directory: two processes follow
 * a namespace while three others write to it (compacting all the time);
 * after each writer finishes, the followers wait for the cursor it
 * reported (read-your-writes) and must then hold exactly the stored state.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import { FileStore } from "../../src/file/index.js";
import { runFollowerScenario } from "../helpers/follower-scenario.js";
import { tempDir } from "./helpers.js";
import { spawnChild } from "./spawn.js";

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "follower-child.ts");

describe("Follower with several processes on a file store", () => {
  it("two followers in other processes reach every writer's cursor with the stored state", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    await runFollowerScenario({
      spawn: (role, args) => spawnChild(role, { ...args, dir }, {}, fixture),
      load: async () => {
        const store = await FileStore.open({ directory: dir });
        try {
          return await store.load("ws");
        } finally {
          await store.close();
        }
      },
    });
  });
});
