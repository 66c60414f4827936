/**
 * Errors of statelog. Every error is a {@link StatelogError} with a stable
 * `code` from {@link ErrorCode}; specific subclasses carry the data that a
 * caller needs to react (the offending field, file and line, expected and
 * actual version…). Type guards check `code`, not `instanceof`, so they
 * also work when two copies of the package are installed.
 */

/** Stable error codes. Backends add their own codes in their own folder. */
export const ErrorCode = {
  /** A namespace, entity type or entity id is not a valid name. */
  InvalidName: "STATELOG_INVALID_NAME",
  /** An entity or event payload is not JSON data that round-trips. */
  InvalidValue: "STATELOG_INVALID_VALUE",
  /** A change or event is larger than the configured size limit. */
  TooLarge: "STATELOG_TOO_LARGE",
  /** An input failed validation (a missing field, a schema that rejected it). */
  Validation: "STATELOG_VALIDATION",
  /** The store (or client) was closed; the call was not carried out. */
  Closed: "STATELOG_CLOSED",
  /** Stored data is damaged: a line or record that cannot be read. */
  Corruption: "STATELOG_CORRUPTION",
  /** An entity type that has no registration (file store) or repository (apply). */
  UnknownEntityType: "STATELOG_UNKNOWN_ENTITY_TYPE",
  /** A repository threw while a change was applied to it. */
  ApplyFailed: "STATELOG_APPLY_FAILED",
  /**
   * A write reached some of its targets but not all: some stores of a
   * union, some changes of a save that is not atomic on its backend.
   */
  PartialWrite: "STATELOG_PARTIAL_WRITE",
  /** A backend could not be reached or failed to answer. */
  Unavailable: "STATELOG_UNAVAILABLE",
  /** An expected version did not match the actual one. */
  VersionConflict: "STATELOG_VERSION_CONFLICT",
  /** A stream, aggregate or other named thing does not exist. */
  NotFound: "STATELOG_NOT_FOUND",
  /** A configured limit (streams, events per stream…) would be crossed. */
  LimitExceeded: "STATELOG_LIMIT_EXCEEDED",
  /** The operation was aborted through its AbortSignal. */
  Aborted: "STATELOG_ABORTED",
  /** The backend, server or configuration cannot do what was asked. */
  Unsupported: "STATELOG_UNSUPPORTED",
  /** Options are invalid or incomplete (a builder without a client…). */
  Configuration: "STATELOG_CONFIGURATION",
  /**
   * An optional peer package that a module needs (the Kafka or NATS client,
   * vitest or fast-check for `statelog/testing`) is not installed or cannot
   * be loaded.
   */
  PeerMissing: "STATELOG_PEER_MISSING",
  /**
   * A change feed was asked to continue from a position the backend no
   * longer holds (compacted, purged, cleared, or renumbered by a file
   * compaction): continuing would skip changes silently.
   */
  FeedBehind: "STATELOG_FEED_BEHIND",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const STATELOG_ERROR = Symbol.for("statelog.error");

/** Options every statelog error accepts. */
export interface StatelogErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
}

/** Base class of every error statelog throws. */
export class StatelogError extends Error {
  /** Stable, machine-readable code; see {@link ErrorCode}. */
  readonly code: string;
  readonly [STATELOG_ERROR] = true;

  constructor(code: string, message: string, options?: StatelogErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = "StatelogError";
  }
}

/** True for any statelog error, from this or another copy of the package. */
export function isStatelogError(error: unknown, code?: string): error is StatelogError {
  if (typeof error !== "object" || error === null) return false;
  const e = error as { code?: unknown; [STATELOG_ERROR]?: unknown };
  if (e[STATELOG_ERROR] !== true && !(typeof e.code === "string" && e.code.startsWith("STATELOG_"))) {
    return false;
  }
  return code === undefined || e.code === code;
}

/** Which name of a change or event was invalid. */
export type NameKind = "namespace" | "entityType" | "entityId" | "streamId" | (string & {});

/** A namespace, entity type, entity id or stream id is not valid. */
export class InvalidNameError extends StatelogError {
  constructor(
    readonly kind: NameKind,
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(ErrorCode.InvalidName, `invalid ${kind} ${describe(value)}: ${reason}`);
    this.name = "InvalidNameError";
  }
}

/** A value is not JSON data that round-trips; `path` points at the offending part. */
export class InvalidValueError extends StatelogError {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: StatelogErrorOptions,
  ) {
    super(ErrorCode.InvalidValue, `value at ${path} cannot be stored: ${reason}`, options);
    this.name = "InvalidValueError";
  }
}

/** A change or event is over the size limit. */
export class TooLargeError extends StatelogError {
  constructor(
    readonly size: number,
    readonly limit: number,
    readonly what: string,
  ) {
    super(
      ErrorCode.TooLarge,
      `${what} is ${size} bytes, over the limit of ${limit} bytes (raise maxValueBytes or store less)`,
    );
    this.name = "TooLargeError";
  }
}

/** An input failed validation; `field` names what was wrong. */
export class ValidationError extends StatelogError {
  constructor(
    readonly field: string,
    message: string,
    options?: StatelogErrorOptions & { issues?: readonly unknown[] },
  ) {
    super(ErrorCode.Validation, `${field}: ${message}`, options);
    this.name = "ValidationError";
    this.issues = options?.issues ?? [];
  }
  /** Issues reported by a schema, when a schema rejected the value. */
  readonly issues: readonly unknown[];
}

/** The store was closed before or during the call. */
export class ClosedError extends StatelogError {
  constructor(what = "store") {
    super(ErrorCode.Closed, `${what} is closed`);
    this.name = "ClosedError";
  }
}

/** Stored data is damaged. `file` and `line` (1-based) say where, when known. */
export class CorruptionError extends StatelogError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    reason: string,
    options?: StatelogErrorOptions,
  ) {
    super(ErrorCode.Corruption, `${file}${line === undefined ? "" : `:${line}`}: ${reason}`, options);
    this.name = "CorruptionError";
  }
}

/** An entity type without a registration or repository. */
export class UnknownEntityTypeError extends StatelogError {
  constructor(
    readonly entityType: string,
    hint: string,
  ) {
    super(ErrorCode.UnknownEntityType, `unknown entity type ${JSON.stringify(entityType)}: ${hint}`);
    this.name = "UnknownEntityTypeError";
  }
}

/** A repository threw while applying a change; `cause` is what it threw. */
export class ApplyError extends StatelogError {
  constructor(
    readonly entityType: string,
    readonly entityId: string,
    options: StatelogErrorOptions,
  ) {
    super(
      ErrorCode.ApplyFailed,
      `applying ${entityType} ${JSON.stringify(entityId)} failed: ${messageOf(options.cause)}`,
      options,
    );
    this.name = "ApplyError";
  }
}

/** An expected version did not match. */
export class VersionConflictError extends StatelogError {
  constructor(
    readonly expected: number | string,
    readonly actual: number | string,
    what = "version",
    options?: StatelogErrorOptions,
  ) {
    super(
      ErrorCode.VersionConflict,
      `${what} conflict: expected ${String(expected)}, actual ${String(actual)}`,
      options,
    );
    this.name = "VersionConflictError";
  }
}

/** Something that was asked for does not exist. */
export class NotFoundError extends StatelogError {
  constructor(
    readonly what: string,
    readonly id: string,
  ) {
    super(ErrorCode.NotFound, `${what} ${JSON.stringify(id)} not found`);
    this.name = "NotFoundError";
  }
}

/** A configured limit would be crossed; nothing was written. */
export class LimitExceededError extends StatelogError {
  constructor(
    readonly limit: string,
    readonly max: number,
    message: string,
  ) {
    super(ErrorCode.LimitExceeded, message);
    this.name = "LimitExceededError";
  }
}

/** The operation was aborted through its AbortSignal. */
export class AbortError extends StatelogError {
  constructor(reason?: unknown) {
    super(ErrorCode.Aborted, "operation aborted", { cause: reason });
    this.name = "AbortError";
  }
}

/** The backend cannot do what was asked (missing capability, too old a server). */
export class UnsupportedError extends StatelogError {
  constructor(message: string, options?: StatelogErrorOptions) {
    super(ErrorCode.Unsupported, message, options);
    this.name = "UnsupportedError";
  }
}

/** Options are invalid or incomplete. */
export class ConfigurationError extends StatelogError {
  constructor(message: string, options?: StatelogErrorOptions) {
    super(ErrorCode.Configuration, message, options);
    this.name = "ConfigurationError";
  }
}

/** A backend failed or could not be reached. */
export class UnavailableError extends StatelogError {
  constructor(message: string, options?: StatelogErrorOptions) {
    super(ErrorCode.Unavailable, message, options);
    this.name = "UnavailableError";
  }
}

/** Options of a {@link PeerMissingError}. */
export interface PeerMissingErrorOptions extends StatelogErrorOptions {
  /** What the packages are needed for, in the message after their names (e.g. `"for its property-based tests"`). */
  purpose?: string;
  /** The install line uses `npm install --save-dev` (a package needed by tests only). @default false */
  saveDev?: boolean;
  /** An extra hint after the install line (e.g. how to build a native binding offline). */
  hint?: string;
}

/**
 * An optional peer package that a statelog module needs is not installed
 * (or cannot be loaded: a native binding that is not built). The message
 * names the module, the packages and the exact `npm install …` line, then
 * the extra hint, then why loading failed; `cause` is the loader's error.
 * Every module with optional peers throws this one error
 * (`statelog/kafka`, `statelog/nats`, `statelog/testing`).
 */
export class PeerMissingError extends StatelogError {
  /** The line that installs the packages, e.g. `npm install @confluentinc/kafka-javascript`. */
  readonly install: string;

  constructor(
    /** The module that needs the packages, e.g. `"statelog/kafka"`. */
    readonly module: string,
    /** The packages to install. */
    readonly packages: readonly string[],
    options?: PeerMissingErrorOptions,
  ) {
    const install = `npm install ${options?.saveDev ? "--save-dev " : ""}${packages.join(" ")}`;
    const one = packages.length === 1;
    super(
      ErrorCode.PeerMissing,
      `${module} needs the package${one ? "" : "s"} ${packages.map((p) => JSON.stringify(p)).join(", ")}` +
        (options?.purpose ? ` ${options.purpose}` : "") +
        `, ${one ? "an optional peer dependency" : "optional peer dependencies"} of statelog, and ` +
        `${one ? "it is" : "they are"} not installed: run \`${install}\`` +
        (options?.hint ? ` (${options.hint})` : "") +
        (options?.cause === undefined
          ? ""
          : ` — ${one ? "it" : "they"} could not be loaded: ${messageOf(options.cause)}`),
      options,
    );
    this.name = "PeerMissingError";
    this.install = install;
  }
}

/** One target of a write that failed, with its error. */
export interface WriteFailure {
  /** Index of the target: into the `changes` of a save, or into a union's stores. */
  readonly index: number;
  readonly error: unknown;
}

/** What a {@link PartialWriteError} reports. */
export interface PartialWriteReport {
  /** What was written, for the message: `"union save"`, `"NATS KV save"`, `"Kafka store save"`, … */
  readonly operation: string;
  /**
   * What the indexes count: `"stores"` (a union's stores) or `"changes"`
   * (the changes passed to one `save`, e.g. on NATS KV or Kafka).
   */
  readonly targets: string;
  /** Indexes of the targets that took the write. */
  readonly written: readonly number[];
  /** Indexes of the targets sent without an answer: they may or may not hold the write. @default [] */
  readonly uncertain?: readonly number[];
  /** The targets that did not take the write, each with its error (`error` is the cause of those never tried). */
  readonly failed: readonly WriteFailure[];
  /** The error that stopped the write. @default the first failure's error */
  readonly cause?: unknown;
}

/**
 * A write that reached some of its targets but not all. The same shape on
 * every backend: `written`, `uncertain` and `failed` are indexes (into the
 * saved changes, or into a union's stores); together they cover every
 * target once. Saving the same changes again is safe: the later save wins.
 */
export class PartialWriteError extends StatelogError {
  readonly operation: string;
  readonly targets: string;
  readonly written: readonly number[];
  readonly uncertain: readonly number[];
  readonly failed: readonly WriteFailure[];

  constructor(report: PartialWriteReport, detail = "") {
    const uncertain = report.uncertain ?? [];
    const total = report.written.length + uncertain.length + report.failed.length;
    const reasons = [...new Set(report.failed.map((f) => messageOf(f.error)))].slice(0, 3).join("; ");
    super(
      ErrorCode.PartialWrite,
      `${report.operation}: ${report.written.length} of ${total} ${report.targets} written` +
        (uncertain.length > 0 ? `, ${uncertain.length} uncertain (sent, unanswered)` : "") +
        `, ${report.failed.length} not written${reasons ? ` (${reasons})` : ""}${detail}; ` +
        "see the error's written, uncertain and failed indexes; writing the same changes again is safe",
      { cause: report.cause ?? report.failed[0]?.error },
    );
    this.name = "PartialWriteError";
    this.operation = report.operation;
    this.targets = report.targets;
    this.written = report.written;
    this.uncertain = uncertain;
    this.failed = report.failed;
  }
}

/* Type guards for the specific errors: they check the code, so they work across package copies. */
/** True for an {@link InvalidNameError} (`ErrorCode.InvalidName`). */
export const isInvalidNameError = (e: unknown): e is InvalidNameError => isStatelogError(e, ErrorCode.InvalidName);
/** True for an {@link InvalidValueError} (`ErrorCode.InvalidValue`). */
export const isInvalidValueError = (e: unknown): e is InvalidValueError => isStatelogError(e, ErrorCode.InvalidValue);
/** True for a {@link TooLargeError} (`ErrorCode.TooLarge`). */
export const isTooLargeError = (e: unknown): e is TooLargeError => isStatelogError(e, ErrorCode.TooLarge);
/** True for a {@link ValidationError} (`ErrorCode.Validation`). */
export const isValidationError = (e: unknown): e is ValidationError => isStatelogError(e, ErrorCode.Validation);
/** True for a {@link ClosedError} (`ErrorCode.Closed`). */
export const isClosedError = (e: unknown): e is ClosedError => isStatelogError(e, ErrorCode.Closed);
/** True for a {@link CorruptionError} (`ErrorCode.Corruption`). */
export const isCorruptionError = (e: unknown): e is CorruptionError => isStatelogError(e, ErrorCode.Corruption);
/** True for an {@link UnknownEntityTypeError} (`ErrorCode.UnknownEntityType`). */
export const isUnknownEntityTypeError = (e: unknown): e is UnknownEntityTypeError =>
  isStatelogError(e, ErrorCode.UnknownEntityType);
/** True for an {@link ApplyError} (`ErrorCode.ApplyFailed`). */
export const isApplyError = (e: unknown): e is ApplyError => isStatelogError(e, ErrorCode.ApplyFailed);
/** True for a {@link VersionConflictError} (`ErrorCode.VersionConflict`). */
export const isVersionConflictError = (e: unknown): e is VersionConflictError =>
  isStatelogError(e, ErrorCode.VersionConflict);
/** True for a {@link NotFoundError} (`ErrorCode.NotFound`). */
export const isNotFoundError = (e: unknown): e is NotFoundError => isStatelogError(e, ErrorCode.NotFound);
/** True for a {@link LimitExceededError} (`ErrorCode.LimitExceeded`). */
export const isLimitExceededError = (e: unknown): e is LimitExceededError =>
  isStatelogError(e, ErrorCode.LimitExceeded);
/** True for an {@link AbortError} (`ErrorCode.Aborted`). */
export const isAbortError = (e: unknown): e is AbortError => isStatelogError(e, ErrorCode.Aborted);
/** True for an {@link UnsupportedError} (`ErrorCode.Unsupported`). */
export const isUnsupportedError = (e: unknown): e is UnsupportedError => isStatelogError(e, ErrorCode.Unsupported);
/** True for a {@link ConfigurationError} (`ErrorCode.Configuration`). */
export const isConfigurationError = (e: unknown): e is ConfigurationError =>
  isStatelogError(e, ErrorCode.Configuration);
/** True for an {@link UnavailableError} (`ErrorCode.Unavailable`). */
export const isUnavailableError = (e: unknown): e is UnavailableError => isStatelogError(e, ErrorCode.Unavailable);
/** True for a {@link PartialWriteError} (`ErrorCode.PartialWrite`). */
export const isPartialWriteError = (e: unknown): e is PartialWriteError => isStatelogError(e, ErrorCode.PartialWrite);
/** True for a {@link PeerMissingError} (`ErrorCode.PeerMissing`). */
export const isPeerMissingError = (e: unknown): e is PeerMissingError => isStatelogError(e, ErrorCode.PeerMissing);

/**
 * Throws an {@link AbortError} when the signal is aborted, and a
 * {@link ValidationError} (field `signal`) when a `signal` was given that is
 * not an `AbortSignal`.
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  checkSignal(signal);
  if (signal?.aborted) throw new AbortError(signal.reason);
}

/** Throws a {@link ValidationError} (field `signal`) unless `signal` is `undefined` or an `AbortSignal`. */
export function checkSignal(signal: unknown): asserts signal is AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return;
  throw new ValidationError("signal", `must be an AbortSignal, got ${describe(signal)}`);
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") {
    return value.length > 80 ? `${JSON.stringify(value.slice(0, 80))}…` : JSON.stringify(value);
  }
  return typeof value;
}

/**
 * A change feed cannot continue from `position`: the backend no longer
 * holds what came after it (see `ErrorCode.FeedBehind`). Start a new feed
 * without `from` (the current state, then live) and rebuild from it.
 */
export class FeedBehindError extends StatelogError {
  constructor(
    /** The namespace of the feed. */
    readonly namespace: string,
    /** The position the feed was to continue from. */
    readonly position: number,
    /** Why the backend no longer holds what follows it. */
    readonly reason: string,
    options?: StatelogErrorOptions,
  ) {
    super(
      ErrorCode.FeedBehind,
      `change feed of namespace ${JSON.stringify(namespace)} cannot continue after position ${position}: ${reason}; watch again without "from" to start from the current state`,
      options,
    );
    this.name = "FeedBehindError";
  }
}

/** True for a {@link FeedBehindError} (by its code, so it works across copies of the package). */
export const isFeedBehindError = (e: unknown): e is FeedBehindError => isStatelogError(e, ErrorCode.FeedBehind);
