/**
 * The I/O error shim (eio-shim.c, an LD_PRELOAD library), compiled once
 * with gcc into `.test-tools/`, and the environment that makes a child
 * process fail the N-th call of one kind on chosen paths.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.join(here, "eio-shim.c");
const tools = path.resolve(here, "../../.test-tools");

/** The compiled shim's path (rebuilt when the source is newer). */
export function buildShim(): string {
  const out = path.join(tools, "eio-shim.so");
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(tools, { recursive: true });
    const temp = `${out}.${process.pid}`;
    execFileSync("gcc", ["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", temp, source, "-ldl"]);
    execFileSync("mv", [temp, out]);
  }
  return out;
}

/** Which calls fail. */
export interface Fault {
  /** A substring of the paths whose calls are counted (and may fail). */
  readonly path: string;
  readonly op: "write" | "fsync" | "rename" | "open";
  /** Fail from the N-th matching call (1-based). */
  readonly nth: number;
  /** How many calls fail from there (0: all). @default 1 */
  readonly count?: number;
  readonly errno?: "EIO" | "ENOSPC";
  /** Where the shim writes its counters. */
  readonly report: string;
}

/** The shim's counters. */
export interface ShimCounters {
  readonly write: number;
  readonly fsync: number;
  readonly rename: number;
  readonly open: number;
  readonly injected: number;
  /** fsync/fdatasync calls on a descriptor whose fsync the shim failed, not closed since. */
  readonly fsyncs_on_failed_fd: number;
  readonly pid: number;
}

/** The environment of a child run under the shim. */
export function shimEnv(fault: Fault): Record<string, string> {
  return {
    LD_PRELOAD: buildShim(),
    // libuv's io_uring file operations would bypass libc: keep them off (Node 20's default, made explicit).
    UV_USE_IO_URING: "0",
    FAULT_PATH: fault.path,
    FAULT_OP: fault.op,
    FAULT_NTH: String(fault.nth),
    FAULT_COUNT: String(fault.count ?? 1),
    FAULT_ERRNO: fault.errno ?? "EIO",
    FAULT_REPORT: fault.report,
  };
}

export function readCounters(report: string): ShimCounters {
  return JSON.parse(readFileSync(report, "utf8")) as ShimCounters;
}
