/**
 * Starts a TypeScript fixture of the NATS tests as a child process with
 * `node --import tsx` (the NATS client packages do not survive the bundling
 * test/file/spawn.ts uses), and collects its stdout lines.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const live = new Set<ChildProcess>();
afterAll(() => {
  for (const child of live) child.kill("SIGKILL");
});

/** A running child with its stdout lines. */
export interface Child {
  readonly process: ChildProcess;
  /** Complete stdout lines so far. */
  readonly lines: string[];
  /** Resolves with the exit code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once a stdout line satisfies `test`; rejects if the child exits first. */
  waitFor(test: (line: string) => boolean): Promise<string>;
  stderr(): string;
}

/** Runs `fixture` with `role` and `args` (as JSON) as its arguments. */
export function spawnFixture(fixture: string, role: string, args: object): Child {
  const child = spawn(process.execPath, ["--import", "tsx", fixture, role, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "pipe"],
    cwd: root,
  });
  live.add(child);
  const lines: string[] = [];
  const waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let partial = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (data: string) => {
    partial += data;
    for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.test(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (data: string) => {
    err += data;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
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
