/**
 * Starts a TypeScript fixture of the NATS tests as a child process with
 * `node --import tsx` (the NATS client packages do not survive the bundling
 * test/file/spawn.ts uses); its lines are collected by that module's
 * `track`.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Child, track } from "../file/spawn.js";

export type { Child };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Runs `fixture` with `role` and `args` (as JSON) as its arguments. */
export function spawnFixture(fixture: string, role: string, args: object): Child {
  return track(
    spawn(process.execPath, ["--import", "tsx", fixture, role, JSON.stringify(args)], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: root,
    }),
  );
}
