/**
 * How the `statelog` command reports errors: every failure is a typed
 * statelog error with a stable code, printed as `statelog: <message> [<code>]`
 * (raw system errors are turned into typed ones first).
 */
import {
  AbortError,
  ConfigurationError,
  CorruptionError,
  isAbortError,
  isCorruptionError,
  isPartialWriteError,
  isStatelogError,
  messageOf,
  NotFoundError,
  UnavailableError,
} from "../index.js";

/** A system error as Node reports it (`fs` calls): `code` like `ENOENT`, with `syscall` and `path`. */
interface SystemError extends Error {
  code: string;
  syscall?: string;
  path?: string;
}

function isSystemError(error: unknown): error is SystemError {
  return (
    error instanceof Error &&
    typeof (error as { code?: unknown }).code === "string" &&
    /^E[A-Z]+$/.test((error as SystemError).code)
  );
}

/**
 * A raw system error (`ENOENT`, `ENOTDIR`, `EEXIST`, `EACCES`…) as a typed
 * statelog error that says what went wrong in plain words; `what` names
 * the thing the command was working on (`store directory "/x"`). Other
 * errors are returned as they are.
 */
export function toStatelogError(error: unknown, what?: string): unknown {
  if (isStatelogError(error) || !isSystemError(error)) return error;
  const on = what ?? (error.path === undefined ? "the store" : JSON.stringify(error.path));
  const detail = `(${error.message})`;
  switch (error.code) {
    case "ENOENT":
      return Object.assign(new NotFoundError("path", error.path ?? on), { cause: error });
    case "ENOTDIR":
      return new ConfigurationError(`cannot use ${on}: a folder on its path is a file ${detail}`, { cause: error });
    case "EEXIST":
      return new ConfigurationError(
        `cannot use ${on}: ${error.path === undefined ? "it" : JSON.stringify(error.path)} exists and is not a directory ${detail}`,
        { cause: error },
      );
    case "EISDIR":
      return new ConfigurationError(`cannot use ${on}: a directory is where a file was expected ${detail}`, {
        cause: error,
      });
    case "EACCES":
    case "EPERM":
      return new ConfigurationError(`cannot use ${on}: permission denied ${detail}`, { cause: error });
    case "EROFS":
      return new ConfigurationError(`cannot write to ${on}: the file system is read-only ${detail}`, { cause: error });
    default:
      return new UnavailableError(`cannot use ${on}: ${error.message}`, { cause: error });
  }
}

/**
 * A damaged line's error with the hint at its end (which names the library
 * option `onCorruption`) replaced by `hint`: what the command at hand can
 * offer (its `--skip-damaged` flag, or another command). Other errors are
 * returned as they are.
 */
export function withCorruptionHint(error: unknown, hint: string): unknown {
  // Once is enough: a command may add it where it adds more to the message, and again where it ends.
  if (!isCorruptionError(error) || error.message.includes(`(${hint})`)) return error;
  const where = `${error.file}${error.line === undefined ? "" : `:${error.line}`}: `;
  const reason = (error.message.startsWith(where) ? error.message.slice(where.length) : error.message).replace(
    /\s*\([^()]*onCorruption[^()]*\)\s*$/,
    "",
  );
  return new CorruptionError(error.file, error.line, `${reason} (${hint})`, { cause: error.cause ?? error });
}

/**
 * What a command stopped by Ctrl-C or SIGTERM reports, whatever its work
 * failed with: an `AbortError` (exit code 130). A backend may report the
 * abort as another failure (a NATS save stopped midway rejects with a
 * partial write); what it says was written is kept in the message.
 */
export function interruptedError(error: unknown, detail: string, advice = ""): AbortError {
  const aborted = new AbortError(error);
  let stopped = "";
  if (isPartialWriteError(error)) {
    const total = error.written.length + error.uncertain.length + error.failed.length;
    stopped =
      `, and of the save under way ${error.written.length} of ${total} ${error.targets} were written` +
      (error.uncertain.length > 0 ? `, ${error.uncertain.length} uncertain (sent, unanswered)` : "") +
      `, ${error.failed.length} not written`;
  } else if (!isAbortError(error)) stopped = `, and the work under way stopped with: ${messageOf(error)}`;
  aborted.message = `${aborted.message} (interrupted): ${detail}${stopped}${advice === "" ? "" : `; ${advice}`}`;
  return aborted;
}

/**
 * What a command that stopped with a failure (not an interruption) reports:
 * the failure, typed (its code decides the exit code), with `detail` after
 * its message (what the command had done, what is left on disk).
 */
export function failedWith(error: unknown, detail: string): unknown {
  const typed = toStatelogError(error);
  if (typed instanceof Error) {
    typed.message = `${typed.message}; ${detail}`;
    return typed;
  }
  return new Error(`${messageOf(typed)}; ${detail}`, { cause: typed });
}

/** The text the command prints for `error` (after `statelog: `): the message, then the code in brackets. */
export function formatError(error: unknown): string {
  const typed = toStatelogError(error);
  return isStatelogError(typed) ? `${typed.message} [${typed.code}]` : messageOf(typed);
}

/**
 * The exit codes of the `statelog` command, by outcome (docs/cli.md,
 * "Exit codes"). An error's code decides its exit code
 * ({@link exitCodeOf}); `verify` and `namespaces` exit with
 * {@link ExitCode.Damaged} when they found damaged data.
 */
export const ExitCode = {
  /** Done. */
  Ok: 0,
  /** Any other failure (a write that failed, an unexpected error). */
  Failure: 1,
  /** Bad usage: an unknown command or option, a bad target URL, an invalid name or option value. */
  Usage: 2,
  /** What was named does not exist: a directory, bucket, stream, namespace, projection. */
  NotFound: 3,
  /** The backend cannot do what was asked (no history, no live feed, no compaction…). */
  Unsupported: 4,
  /** An optional client package (NATS, Kafka) is not installed. */
  PeerMissing: 5,
  /** A server could not be reached or failed to answer, or another process holds the store. */
  Unavailable: 6,
  /** Stored data is damaged (a checksum, a line, an order that is wrong). */
  Damaged: 7,
  /** A live feed cannot continue from the position asked for (compacted or purged since). */
  FeedBehind: 8,
  /** Interrupted (Ctrl-C) before the work was done. */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Exit codes of statelog error codes (every other statelog code, and any other error, is {@link ExitCode.Failure}). */
const EXIT_BY_CODE: Readonly<Record<string, ExitCode>> = {
  STATELOG_CONFIGURATION: ExitCode.Usage,
  STATELOG_VALIDATION: ExitCode.Usage,
  STATELOG_INVALID_NAME: ExitCode.Usage,
  STATELOG_INVALID_VALUE: ExitCode.Usage,
  STATELOG_NOT_FOUND: ExitCode.NotFound,
  STATELOG_KAFKA_TOPIC: ExitCode.NotFound,
  STATELOG_UNSUPPORTED: ExitCode.Unsupported,
  STATELOG_KAFKA_ADMIN_UNSUPPORTED: ExitCode.Unsupported,
  STATELOG_PEER_MISSING: ExitCode.PeerMissing,
  STATELOG_UNAVAILABLE: ExitCode.Unavailable,
  STATELOG_KAFKA_READ: ExitCode.Unavailable,
  STATELOG_LOCKED: ExitCode.Unavailable,
  STATELOG_CORRUPTION: ExitCode.Damaged,
  STATELOG_FEED_BEHIND: ExitCode.FeedBehind,
  STATELOG_BEHIND_RETENTION: ExitCode.FeedBehind,
  STATELOG_ABORTED: ExitCode.Interrupted,
};

/** The exit code of a failure (raw system errors are typed first, see {@link toStatelogError}). */
export function exitCodeOf(error: unknown): ExitCode {
  const typed = toStatelogError(error);
  return isStatelogError(typed) ? (EXIT_BY_CODE[typed.code] ?? ExitCode.Failure) : ExitCode.Failure;
}

/** What `--json` says of an error: its code (a statelog error's), its message and the exit code it gives. */
export function errorFields(error: unknown): { code: string | undefined; message: string; exitCode: ExitCode } {
  const typed = toStatelogError(error);
  return {
    code: isStatelogError(typed) ? typed.code : undefined,
    message: isStatelogError(typed) ? typed.message : messageOf(typed),
    exitCode: exitCodeOf(error),
  };
}

/** An error as `--json` prints it on stderr: `{"error":{"code","message","exitCode"}}`. */
export function errorJson(error: unknown): string {
  return JSON.stringify({ error: errorFields(error) });
}

/**
 * The `--json` error line of a failure found rather than thrown (damaged
 * namespaces that `namespaces` listed): the shape of {@link errorJson},
 * with the exit code of `code`.
 */
export function failureJson(code: string, message: string): string {
  return JSON.stringify({ error: { code, message, exitCode: EXIT_BY_CODE[code] ?? ExitCode.Failure } });
}
