/**
 * Errors of `statelog/nats`: the code table, the errors this backend
 * defines and their guards, and how NATS client failures become statelog
 * errors. Guards check the code, so they work across duplicate installs of
 * statelog.
 */
import {
  ConfigurationError,
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

/** JetStream's codes for a stream create that the stream's configuration made the server refuse. */
export const JetStreamRefusal = {
  /** "subjects overlap with an existing stream". */
  SubjectsOverlap: 10065,
  /** "replicas > 1 not supported in non-clustered mode". */
  ReplicasNotClustered: 10074,
  /** A configuration the server finds invalid ("subjects overlap with jetstream api", "invalid subject", …). */
  InvalidConfig: 10052,
} as const;

/** A bucket or stream an `open` creates, and the options its configuration comes from. */
export interface CreatedFrom {
  /** The class, for the message: `"NatsEventStore"`. */
  readonly owner: string;
  /** The bucket or stream: `JetStream stream "ORDERS"`, `KV bucket "orders"`. */
  readonly what: string;
  /** Its subjects: `app.events.>`, `$KV.orders.>`. */
  readonly subjects: string;
  /** The option they come from (`subjectPrefix`, `bucket`) and its value (the default when not given). */
  readonly subjectsOption: string;
  readonly subjectsValue: string;
  /** The `replicas` option. */
  readonly replicas: number;
}

/** A KV bucket an `open` creates ({@link CreatedFrom}): its subjects come from the `bucket` option. */
export function bucketCreation(owner: string, bucket: string, replicas: number): CreatedFrom {
  return {
    owner,
    what: `KV bucket ${JSON.stringify(bucket)}`,
    subjects: `$KV.${bucket}.>`,
    subjectsOption: "bucket",
    subjectsValue: bucket,
    replicas,
  };
}

/**
 * The server's refusal to create a bucket or stream when the options made
 * it refuse (its subjects overlap another stream's or the JetStream API,
 * more than one replica on a server that is not clustered, another
 * configuration it finds invalid): a `ConfigurationError` naming the option,
 * with the server's text and the original error as `cause`. Any other error
 * is returned as it is.
 */
export function creationRefusal(error: unknown, from: CreatedFrom): unknown {
  if (!isJetStreamApiError(error)) return error;
  const text = messageOf(error);
  let option: string;
  let remedy: string;
  if (error.code === JetStreamRefusal.ReplicasNotClustered) {
    option = `option replicas (${from.replicas})`;
    remedy = "use replicas 1 on a server that is not clustered";
  } else if (
    error.code === JetStreamRefusal.SubjectsOverlap ||
    (error.code === JetStreamRefusal.InvalidConfig && /subject/i.test(text))
  ) {
    option = `option ${from.subjectsOption} ${JSON.stringify(from.subjectsValue)}`;
    remedy =
      `its subjects ${from.subjects} must not overlap those of another stream or the server's own: ` +
      `use another ${from.subjectsOption}`;
  } else if (error.code === JetStreamRefusal.InvalidConfig) {
    option = "its options";
    remedy = "the server finds its configuration invalid";
  } else {
    return error;
  }
  return new ConfigurationError(
    `${from.owner}: the server refused to create ${from.what} for ${option}: "${text}" (${remedy})`,
    { cause: error },
  );
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
