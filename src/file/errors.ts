/** Errors of the file backend (`statelog/file`), beyond those of `statelog`. */
import { isStatelogError, StatelogError, type StatelogErrorOptions } from "../index.js";

/** Codes of the file backend's own errors. */
export const FileErrorCode = {
  /** A directory is locked by another open store (of this or another process). */
  Locked: "STATELOG_LOCKED",
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
