/**
 * Errors of the event stores, beyond the shared ones of `statelog`
 * (`ValidationError`, `VersionConflictError`, `LimitExceededError`,
 * `NotFoundError`, `ClosedError`…), with their codes in {@link EventErrorCode}.
 */
import { isStatelogError, StatelogError } from "../index.js";

/** Codes of the event-store errors. */
export const EventErrorCode = {
  /** A reader or subscriber asked for events that retention already removed. */
  BehindRetention: "STATELOG_BEHIND_RETENTION",
} as const;
export type EventErrorCode = (typeof EventErrorCode)[keyof typeof EventErrorCode];

/**
 * Events after `position` were removed by retention before they were
 * delivered: continuing would skip them silently. Restart from
 * `firstAvailable - 1` (accepting the loss) or from a snapshot of your own.
 */
export class BehindRetentionError extends StatelogError {
  constructor(
    /** The stream, or `undefined` for a subscription to all streams. */
    readonly streamId: string | undefined,
    /** The position that was read up to. */
    readonly position: number,
    /** The oldest position still stored. */
    readonly firstAvailable: number,
  ) {
    super(
      EventErrorCode.BehindRetention,
      `${streamId === undefined ? "global log" : `stream ${JSON.stringify(streamId)}`}: events after position ${position} were removed by retention (oldest stored: ${firstAvailable}); restart from position ${firstAvailable - 1} to accept the loss`,
    );
    this.name = "BehindRetentionError";
  }
}

/** True for a {@link BehindRetentionError} (by its code, so it works across copies of the package). */
export const isBehindRetentionError = (e: unknown): e is BehindRetentionError =>
  isStatelogError(e, EventErrorCode.BehindRetention);
