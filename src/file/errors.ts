/** Errors of the file backend (`statelog/file`), beyond those of `statelog`. */
import { isStatelogError, StatelogError, type StatelogErrorOptions } from "../index.js";

/** Codes of the file backend's own errors. */
export const FileErrorCode = {
  /** A directory is locked by another open store (of this or another process). */
  Locked: "STATELOG_LOCKED",
  /**
   * A write to a data file failed (`write`, `fsync`, `open`, `rename`…:
   * disk full, I/O error, read-only storage): nothing of that save or
   * append was acknowledged.
   */
  WriteFailed: "STATELOG_WRITE_FAILED",
} as const;
export type FileErrorCode = (typeof FileErrorCode)[keyof typeof FileErrorCode];

/**
 * Another open store holds the directory's lock (`flock(2)` on its `LOCK`
 * file), in this or another process: close it there first. Nothing was
 * read or changed.
 */
export class LockedError extends StatelogError {
  constructor(
    /** The locked directory. */
    readonly directory: string,
    options?: StatelogErrorOptions,
  ) {
    super(
      FileErrorCode.Locked,
      `directory ${directory} is in use by another open store (in this or another process); close it there first`,
      options,
    );
    this.name = "LockedError";
  }
}

/** True for a {@link LockedError} (from this or another copy of the package). */
export const isLockedError = (e: unknown): e is LockedError => isStatelogError(e, FileErrorCode.Locked);

/** The file operation that failed under a {@link WriteFailedError}. */
export type FileOperation = "open" | "write" | "fsync" | "truncate" | "rename" | "mkdir" | "unlink";

/**
 * A save, append or compaction could not write its file: the system call
 * (`operation`) failed on `path` with `errno` (`ENOSPC`, `EIO`, `EROFS`,
 * `EMFILE`…; the system error is the `cause`). What it wrote was not
 * acknowledged (and is taken back out where the file allows); data
 * acknowledged before is intact. After a failed `write` or `fsync` the
 * descriptor is closed, never fsynced again: the next write reopens the
 * file and checks it from disk (docs/file-store.md, "Storage faults").
 */
export class WriteFailedError extends StatelogError {
  /** The system error's code (`ENOSPC`, `EIO`, `EROFS`…), or `"UNKNOWN"`. */
  readonly errno: string;

  constructor(
    /** What failed. */
    readonly operation: FileOperation,
    /** The file (or directory) it failed on. */
    readonly path: string,
    cause: unknown,
    detail?: string,
    /** What it means for the caller (by default that the write was not acknowledged). */
    outcome = "nothing of this write was acknowledged",
  ) {
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code ?? "UNKNOWN";
    super(
      FileErrorCode.WriteFailed,
      `${operation} failed on ${path} (${errno}${errno === "ENOSPC" ? ": disk full" : errno === "EROFS" ? ": read-only storage" : ""})` +
        `: ${outcome}${detail ? `; ${detail}` : ""}`,
      { cause },
    );
    this.name = "WriteFailedError";
    this.errno = errno;
  }
}

/** True for a {@link WriteFailedError} (from this or another copy of the package). */
export const isWriteFailedError = (e: unknown): e is WriteFailedError => isStatelogError(e, FileErrorCode.WriteFailed);

/**
 * `error` as thrown by a file operation: statelog errors pass through,
 * system errors become a {@link WriteFailedError} of `operation` on `path`.
 */
export function writeFailed(
  operation: FileOperation,
  path: string,
  error: unknown,
  detail?: string,
  outcome?: string,
): Error {
  if (isStatelogError(error)) return error as Error;
  return new WriteFailedError(operation, path, error, detail, outcome);
}

/** What a {@link WriteFailedError} of a store's open says instead of a write's outcome. */
export const NOT_OPENED = "the store was not opened";
