/**
 * Errors of `statelog/nats`: the code table, the errors this backend
 * defines and their guards, and how NATS client failures become statelog
 * errors. Guards check the code, so they work across duplicate installs of
 * statelog.
 */
import {
  isPartialWriteError,
  isStatelogError,
  messageOf,
  PartialWriteError,
  type PartialWriteReport,
  type StatelogError,
  UnavailableError,
} from "../index.js";

/**
 * Stable error codes of the NATS backend. Empty for now: its failures are
 * core errors (`UnavailableError`, `ConfigurationError`, `PeerMissingError`
 * for missing client packages…) and {@link NatsSaveError} is a
 * `PartialWriteError` with core's code.
 */
export const NatsErrorCode = {} as const;
export type NatsErrorCode = (typeof NatsErrorCode)[keyof typeof NatsErrorCode];

/** What a {@link NatsSaveError} reports: the partial write, and the namespaces whose marker is unconfirmed. */
export interface NatsSaveReport extends PartialWriteReport {
  /**
   * Namespaces whose marker key (what `listNamespaces` reads) this save
   * sent without a confirmation. @default []
   */
  readonly unmarkedNamespaces?: readonly string[];
}

/**
 * A `NatsKvStore.save` that failed part-way (aborted, connection lost, a
 * publish refused): a {@link PartialWriteError} (`targets: "changes"`, code
 * `STATELOG_PARTIAL_WRITE`) whose indexes point into the `changes` passed to
 * `save`. `written`: acknowledged by the server; `uncertain`: sent without
 * an answer (time-out, connection lost), they may or may not be stored;
 * `failed`: never sent or refused by the server, each with its error. The
 * failure that stopped the save is the `cause`. Saving all the changes
 * again is safe: the later save wins.
 */
export class NatsSaveError extends PartialWriteError {
  /**
   * Namespaces whose marker key this save sent without a confirmation:
   * until a later save of the namespace succeeds, `listNamespaces` may not
   * list them.
   */
  readonly unmarkedNamespaces: readonly string[];

  constructor(report: NatsSaveReport) {
    const unmarked = report.unmarkedNamespaces ?? [];
    super(
      report,
      unmarked.length > 0
        ? `; the namespace marker of ${unmarked.map((n) => JSON.stringify(n)).join(", ")} is unconfirmed`
        : "",
    );
    this.name = "NatsSaveError";
    this.unmarkedNamespaces = unmarked;
  }
}

/** True for a {@link NatsSaveError}: a partial write that also reports `unmarkedNamespaces`. */
export const isNatsSaveError = (e: unknown): e is NatsSaveError =>
  isPartialWriteError(e) && Array.isArray((e as { unmarkedNamespaces?: unknown }).unmarkedNamespaces);

/** JetStream's code for "wrong last sequence" (a lost compare-and-set). */
export const WRONG_LAST_SEQUENCE = 10071;

/**
 * True for an error JetStream's API replied with (the client's
 * `JetStreamApiError`, recognised by shape: the client module is loaded
 * lazily, see client.ts).
 */
export function isJetStreamApiError(error: unknown): error is Error & { code: number } {
  return (
    error instanceof Error &&
    typeof (error as { code?: unknown }).code === "number" &&
    typeof (error as { apiError?: unknown }).apiError === "function"
  );
}

/** True when `error` is JetStream's reply to a failed `Nats-Expected-Last-Subject-Sequence`. */
export function isWrongLastSequence(error: unknown): boolean {
  if (isJetStreamApiError(error)) return error.code === WRONG_LAST_SEQUENCE;
  return /wrong last sequence/i.test(messageOf(error));
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
