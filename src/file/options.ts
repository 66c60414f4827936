/**
 * Options of the file store, with their defaults (docs/file-store.md).
 */
import { ConfigurationError } from "../core/errors.js";
import { type BaseStoreOptions, UnknownEntityTypes } from "../core/store.js";

/** When a `save` resolves. */
export const SyncPolicy = {
  /** After the lines are written and `fdatasync`ed: a resolved save survives a crash of the process, the OS or the machine. */
  Fsync: "fsync",
  /**
   * After `write(2)` returned, without an fsync: a resolved save survives a
   * crash of the process (the data is in the OS page cache), but an OS crash
   * or power loss can lose the saves of the last seconds (up to the kernel's
   * write-back delay, typically 30 s) and leave a torn or zero-filled tail.
   */
  None: "none",
} as const;
export type SyncPolicy = (typeof SyncPolicy)[keyof typeof SyncPolicy];

/** What happens with a damaged line in the middle of a file. */
export const OnCorruption = {
  /** `load` and `compact` fail with a `CorruptionError` naming the file and the 1-based line. */
  Throw: "throw",
  /** The line is left out (its key falls back to its previous valid line) and reported via `onSkippedLines`. */
  Skip: "skip",
} as const;
export type OnCorruption = (typeof OnCorruption)[keyof typeof OnCorruption];

/** When a namespace is compacted automatically. */
export interface AutoCompactOptions {
  /** Never compact a file of at most this many lines. @default 10_000 */
  minLines?: number;
  /** Compact when the file has more than `ratio` lines per key (entities and tombstones: what compaction keeps). @default 4 */
  ratio?: number;
}

/** Damaged lines that were skipped (with `onCorruption: "skip"`). */
export interface SkippedLinesReport {
  readonly namespace: string;
  /** The data file. */
  readonly file: string;
  /** 1-based line numbers. */
  readonly lines: number[];
}

/** Options of {@link FileStore.open}. */
export interface FileStoreOptions extends BaseStoreOptions {
  /** When `save` resolves; see {@link SyncPolicy}. @default "fsync" */
  sync?: SyncPolicy;
  /** Damaged lines mid-file; see {@link OnCorruption}. A torn last line is always dropped. @default "throw" */
  onCorruption?: OnCorruption;
  /** Called with the damaged lines skipped by a `load` or `compact` (with `onCorruption: "skip"`). */
  onSkippedLines?: (report: SkippedLinesReport) => void;
  /**
   * Automatic compaction: after a save or load, a namespace whose file has
   * more than `max(minLines, ratio × keys)` lines (keys: entities and tombstones) is compacted in the
   * background. `false` turns it off, `true` uses the defaults.
   * @default { minLines: 10_000, ratio: 4 }
   */
  autoCompact?: boolean | AutoCompactOptions;
  /**
   * Compaction drops tombstones (`unset` changes) older than this many
   * milliseconds (by their timestamp). @default undefined: keep them forever
   */
  tombstoneRetentionMs?: number;
  /** Write a CRC-32 per line (`"crc"`) and check it on load. @default true */
  integrity?: boolean;
  /** Called with errors of background work (automatic compaction, closing idle namespaces). @default ignore them */
  onBackgroundError?: (error: unknown) => void;
  /**
   * How many namespaces keep their files open between operations (each
   * holds two descriptors: the data file and its lock file). When more
   * have been used, the least recently used idle ones are closed, and
   * reopened on their next use. Namespaces in use at the moment (a save
   * being written, a load, a compaction) are never closed, so the bound
   * is exceeded while more than this many are in use at once. A positive
   * integer, or `Infinity` to keep every namespace open until `close()`.
   * @default 256
   */
  maxOpenNamespaces?: number;
  /**
   * File size in bytes from which a compaction's scan (finding the latest
   * line per key) runs in a worker thread rather than on the main thread
   * (a worker costs a few tens of ms to start). `0`: always in a worker;
   * `Infinity`: never. {@link FileStore.stats} counts the scans of each kind.
   * @default 16_777_216 (16 MiB)
   */
  compactionWorkerMinBytes?: number;
}

/** Default of {@link FileStoreOptions.maxOpenNamespaces}. */
export const DEFAULT_MAX_OPEN_NAMESPACES = 256;

/** Default of {@link FileStoreOptions.compactionWorkerMinBytes}: 16 MiB. */
export const DEFAULT_COMPACTION_WORKER_MIN_BYTES = 16 * 1024 * 1024;

/** Default thresholds of automatic compaction. */
export const DEFAULT_AUTO_COMPACT: Required<AutoCompactOptions> = { minLines: 10_000, ratio: 4 };

/** Options with defaults applied. */
export interface ResolvedOptions {
  readonly base: BaseStoreOptions;
  readonly sync: boolean;
  readonly passthrough: boolean;
  readonly skip: boolean;
  readonly onSkippedLines: ((report: SkippedLinesReport) => void) | undefined;
  readonly autoCompact: Required<AutoCompactOptions> | undefined;
  readonly tombstoneRetentionMs: number | undefined;
  readonly integrity: boolean;
  readonly onBackgroundError: (error: unknown) => void;
  readonly maxOpenNamespaces: number;
  readonly compactionWorkerMinBytes: number;
}

function oneOf<T extends string>(name: string, value: T | undefined, allowed: Record<string, T>, fallback: T): T {
  if (value === undefined) return fallback;
  if (!Object.values(allowed).includes(value)) {
    throw new ConfigurationError(
      `FileStore option ${name} must be one of ${Object.values(allowed)
        .map((v) => JSON.stringify(v))
        .join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function nonNegative(name: string, value: number | undefined, min = 0): void {
  if (value !== undefined && !(typeof value === "number" && value >= min && Number.isFinite(value))) {
    throw new ConfigurationError(`FileStore option ${name} must be a finite number >= ${min}, got ${String(value)}`);
  }
}

function atLeast(name: string, value: number | undefined, min: number, integer: boolean): void {
  if (value === undefined) return;
  const ok =
    typeof value === "number" &&
    value >= min &&
    (value === Number.POSITIVE_INFINITY || !integer || Number.isInteger(value));
  if (!ok) {
    throw new ConfigurationError(
      `FileStore option ${name} must be ${integer ? "an integer" : "a number"} >= ${min} (or Infinity), got ${String(value)}`,
    );
  }
}

/** Checks options and applies defaults. @throws ConfigurationError */
export function resolveOptions(options: FileStoreOptions): ResolvedOptions {
  nonNegative("maxValueBytes", options.maxValueBytes, 1);
  nonNegative("tombstoneRetentionMs", options.tombstoneRetentionMs);
  atLeast("maxOpenNamespaces", options.maxOpenNamespaces, 1, true);
  atLeast("compactionWorkerMinBytes", options.compactionWorkerMinBytes, 0, false);
  let autoCompact: Required<AutoCompactOptions> | undefined;
  if (options.autoCompact !== false) {
    const given = typeof options.autoCompact === "object" ? options.autoCompact : {};
    nonNegative("autoCompact.minLines", given.minLines);
    nonNegative("autoCompact.ratio", given.ratio, 1);
    autoCompact = {
      minLines: given.minLines ?? DEFAULT_AUTO_COMPACT.minLines,
      ratio: given.ratio ?? DEFAULT_AUTO_COMPACT.ratio,
    };
  }
  return {
    base: { maxValueBytes: options.maxValueBytes, clock: options.clock } as BaseStoreOptions,
    sync: oneOf("sync", options.sync, SyncPolicy, SyncPolicy.Fsync) === SyncPolicy.Fsync,
    passthrough:
      oneOf("unknownEntityTypes", options.unknownEntityTypes, UnknownEntityTypes, UnknownEntityTypes.Accept) ===
      UnknownEntityTypes.Accept,
    skip: oneOf("onCorruption", options.onCorruption, OnCorruption, OnCorruption.Throw) === OnCorruption.Skip,
    onSkippedLines: options.onSkippedLines,
    autoCompact,
    tombstoneRetentionMs: options.tombstoneRetentionMs,
    integrity: options.integrity ?? true,
    onBackgroundError: options.onBackgroundError ?? (() => undefined),
    maxOpenNamespaces: options.maxOpenNamespaces ?? DEFAULT_MAX_OPEN_NAMESPACES,
    compactionWorkerMinBytes: options.compactionWorkerMinBytes ?? DEFAULT_COMPACTION_WORKER_MIN_BYTES,
  };
}
