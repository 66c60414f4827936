/**
 * NATS failures as statelog errors. JetStream API errors keep their
 * numeric code; a wrong-last-sequence reply (the per-subject
 * compare-and-set lost) is recognised by {@link isWrongLastSequence}.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { isStatelogError, messageOf, StatelogError, UnavailableError } from "../core/errors.js";

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

/**
 * A `NatsKvStore.save` that failed part-way (aborted, connection lost, a
 * publish refused): which of the changes are stored. A save is not atomic
 * on NATS KV (one message per change). The `code` is the failure's own
 * (`STATELOG_ABORTED`, `STATELOG_UNAVAILABLE`, …), so the usual guards
 * still apply; the original error is the `cause`.
 */
export class NatsSaveError extends StatelogError {
  constructor(
    /** Indexes (into the `changes` passed to `save`) of changes the server acknowledged: stored. */
    readonly stored: readonly number[],
    /** Indexes of changes sent without an answer (time-out, connection lost): they may or may not be stored. */
    readonly uncertain: readonly number[],
    /** Indexes of changes not stored: never sent, or refused by the server. */
    readonly notStored: readonly number[],
    cause: StatelogError,
    /**
     * Namespaces whose marker key (what `listNamespaces` reads) this save
     * sent without a confirmation: until a later save of the namespace
     * succeeds, `listNamespaces` may not list them.
     */
    readonly unmarkedNamespaces: readonly string[] = [],
  ) {
    const total = stored.length + uncertain.length + notStored.length;
    super(
      cause.code,
      `${cause.message} — ${stored.length} of ${total} changes are stored` +
        (uncertain.length > 0 ? `, ${uncertain.length} may be (sent, unanswered)` : "") +
        `, ${notStored.length} are not (see the error's stored, uncertain and notStored indexes)` +
        (unmarkedNamespaces.length > 0
          ? `; the namespace marker of ${unmarkedNamespaces.map((n) => JSON.stringify(n)).join(", ")} is unconfirmed`
          : "") +
        "; saving all of them again is safe: the later save wins",
      { cause },
    );
    this.name = "NatsSaveError";
  }
}
