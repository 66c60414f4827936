/**
 * Starting a child fixture (fixtures/child.ts unless told otherwise)
 * cheaply: bundled once (test/helpers/child-command.ts), so each child
 * starts as plain `node`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { childCommand } from "../helpers/child-command.js";
import { tempDir } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const childFixture = path.join(here, "fixtures", "child.ts");
const nodeModules = path.resolve(here, "../../node_modules");

/** The `node` arguments of each fixture, bundled once. */
const commands = new Map<string, Promise<string[]>>();

/** Children still running: a failed test must not leave a writer behind. */
const live = new Set<ChildProcess>();
afterAll(async () => {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    ),
  );
});

/** A running child with its stdout lines. */
export interface Child {
  readonly process: ChildProcess;
  /** Complete stdout lines so far. */
  readonly lines: string[];
  /** Resolves with the exit code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once a stdout line satisfies `test`. */
  waitFor(test: (line: string) => boolean): Promise<string>;
  stderr(): string;
}

/** Spawns `fixture` (by default fixtures/child.ts) in `role` with `args` (and extra environment). */
export async function spawnChild(
  role: string,
  args: object,
  env: Record<string, string> = {},
  fixture = childFixture,
): Promise<Child> {
  let command = commands.get(fixture);
  if (!command) {
    command = childCommand(fixture, tempDir("statelog-fixture-"));
    commands.set(fixture, command);
  }
  const argv = await command;
  return track(
    spawn(process.execPath, [...argv, role, JSON.stringify(args)], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NODE_PATH: nodeModules, ...env },
      cwd: path.resolve(here, "../.."),
    }),
  );
}

/**
 * Tracks a child started with piped stdio (killed after the test file if
 * still running) and collects its stdout lines.
 */
export function track(child: ChildProcess): Child {
  live.add(child);
  child.once("exit", () => live.delete(child));
  const lines: string[] = [];
  let partial = "";
  let err = "";
  const waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  child.stdout?.setEncoding("utf8").on("data", (data: string) => {
    partial += data;
    let nl = partial.indexOf("\n");
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.test(line)) w.resolve(line);
        else waiters.push(w);
      }
      nl = partial.indexOf("\n");
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (data: string) => {
    err += data;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    process: child,
    lines,
    exited,
    stderr: () => err,
    waitFor(test) {
      const found = lines.find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise<string>((resolve, reject) => {
        waiters.push({ test, resolve });
        exited.then(({ code, signal }) =>
          reject(new Error(`child exited (${code ?? signal}) before the expected line; stderr: ${err}`)),
        );
      });
    },
  };
}
