/** Runs the `statelog` command from the sources as a child process, for the CLI's end-to-end tests. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";

export const root = join(import.meta.dirname, "..", "..");

/** What a run of the command did. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the command to its end, whatever its exit code. */
export function outcome(...args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/index.ts", ...args],
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The JSON lines of a run's stdout. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A command that keeps running (`tail -f`, `subscribe`): its output so far, and a way to wait for some. */
export interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves once `test` holds on (stdout, stderr); rejects after `timeoutMs` or when the command exits first. */
  until(test: (stdout: string, stderr: string) => boolean, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function start(...args: string[]): Running {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], { cwd: root });
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      exited = code;
      resolve(code);
    }),
  );
  const waiters = new Set<() => void>();
  const running: Running = {
    child,
    stdout: "",
    stderr: "",
    until(test, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (test(running.stdout, running.stderr)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          } else if (exited !== undefined) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`the command exited (${exited}) first: ${running.stderr}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; stdout: ${running.stdout}\nstderr: ${running.stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM") {
      if (exited === undefined) child.kill(signal);
      return exit;
    },
  };
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout.on("data", (d: Buffer) => {
    running.stdout += d.toString();
    wake();
  });
  child.stderr.on("data", (d: Buffer) => {
    running.stderr += d.toString();
    wake();
  });
  exit.then(wake);
  return running;
}
