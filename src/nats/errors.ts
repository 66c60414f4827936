/**
 * NATS failures as statelog errors. JetStream API errors keep their
 * numeric code; a wrong-last-sequence reply (the per-subject
 * compare-and-set lost) is recognised by {@link isWrongLastSequence}.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { isStatelogError, messageOf, type StatelogError, UnavailableError } from "../core/errors.js";

/** JetStream's code for "wrong last sequence" (a lost compare-and-set). */
export const WRONG_LAST_SEQUENCE = 10071;

/** True when `error` is JetStream's reply to a failed `Nats-Expected-Last-Subject-Sequence`. */
export function isWrongLastSequence(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === WRONG_LAST_SEQUENCE;
  return /wrong last sequence/i.test(messageOf(error));
}

/** The actual last sequence a wrong-last-sequence error reports, when it says. */
export function actualLastSequence(error: unknown): number | undefined {
  const m = /wrong last sequence: (\d+)/i.exec(messageOf(error));
  return m ? Number(m[1]) : undefined;
}

/**
 * Wraps a NATS client error: statelog errors pass through, anything else
 * becomes an {@link UnavailableError} that says what was being done, with
 * the original as `cause`.
 */
export function natsError(error: unknown, what: string): StatelogError {
  if (isStatelogError(error)) return error as StatelogError;
  return new UnavailableError(`NATS ${what} failed: ${messageOf(error)}`, { cause: error });
}
