/**
 * Worker thread of a compaction's first step ({@link writeWinners}) for
 * large files: the scan runs on another core while the main thread keeps
 * serving saves. For each catch-up round it posts `{ sizeRequest: true }`
 * and waits for `{ size }` (the main thread takes it under the shared
 * lock). Posts `{ result }` or `{ error }` (see {@link serializeError})
 * and ends.
 */
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { CorruptionError } from "../index.js";
import { CompactionAbandoned, type NextSize, type WinnersInput, writeWinners } from "./winners.js";

/** An error as it crosses from the worker: enough to rebuild a `CorruptionError`. */
export interface WorkerError {
  readonly message: string;
  readonly corruption?: { readonly file: string; readonly line: number | undefined; readonly cause: string };
  /** The compaction was abandoned (see `WinnersInput.stop`). */
  readonly abandoned?: true;
  /** A system error's code (`ENOSPC`, `EIO`…) and call, to rebuild it as one. */
  readonly system?: { readonly code: string; readonly syscall: string | undefined };
}

function serializeError(error: unknown): WorkerError {
  if (error instanceof CompactionAbandoned) return { message: error.message, abandoned: true };
  if (error instanceof CorruptionError) {
    const cause = error.cause instanceof Error ? error.cause.message : String(error.cause);
    return { message: error.message, corruption: { file: error.file, line: error.line, cause } };
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (typeof code === "string") {
    return { message, system: { code, syscall: (error as NodeJS.ErrnoException).syscall } };
  }
  return { message };
}

/** What the worker is given: the scan's input and the nice value to run at. */
export interface WorkerInput extends WinnersInput {
  /** The nice value this thread takes (see {@link lowerPriority}); 0: the process's. */
  readonly nice: number;
}

/**
 * Lowers this thread's CPU priority to the nice value `nice` (background
 * work: the CPU scheduler then gives the thread that serves saves, and
 * other processes, precedence over the scan whenever they compete for a
 * core; on an idle core the scan runs at full speed all the same). On
 * Linux a thread has its own nice value, set through its thread id (read
 * from `/proc/thread-self`); elsewhere (no such file), or when not
 * allowed, the thread keeps the process's priority.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0) return;
  try {
    const tid = Number(path.basename(readlinkSync("/proc/thread-self")));
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // not Linux, or not allowed: the scan runs at the process's priority
  }
}

if (parentPort) {
  const port = parentPort;
  const input = workerData as WorkerInput;
  lowerPriority(input.nice);
  const nextSize: NextSize = () =>
    new Promise((resolve) => {
      port.once("message", (message: { size: number }) => resolve(message.size));
      port.postMessage({ sizeRequest: true });
    });
  writeWinners(input, nextSize).then(
    (result) => port.postMessage({ result }),
    (error: unknown) => port.postMessage({ error: serializeError(error) }),
  );
}
