/**
 * How the `statelog` command reports errors: every failure is a typed
 * statelog error with a stable code, printed as `statelog: <message> [<code>]`
 * (raw system errors are turned into typed ones first).
 */
import {
  ConfigurationError,
  CorruptionError,
  isCorruptionError,
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
  if (!isCorruptionError(error)) return error;
  const where = `${error.file}${error.line === undefined ? "" : `:${error.line}`}: `;
  const reason = (error.message.startsWith(where) ? error.message.slice(where.length) : error.message).replace(
    /\s*\([^()]*onCorruption[^()]*\)\s*$/,
    "",
  );
  return new CorruptionError(error.file, error.line, `${reason} (${hint})`, { cause: error.cause ?? error });
}

/** The text the command prints for `error` (after `statelog: `): the message, then the code in brackets. */
export function formatError(error: unknown): string {
  const typed = toStatelogError(error);
  return isStatelogError(typed) ? `${typed.message} [${typed.code}]` : messageOf(typed);
}
