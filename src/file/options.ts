/**
 * Options of the file store, with their defaults (docs/file-store.md).
 */
import {
  BASE_STORE_OPTION_NAMES,
  type BaseStoreOptions,
  ConfigurationError,
  OptionChecker,
  STORE_DEFAULTS,
} from "../index.js";
import {
  ABANDON_COMPACTION_MIN_BYTES,
  type FileStoreInternals,
  HINT_MIN_LINES,
  internalsOf,
  READ_CHUNK_BYTES,
} from "./internal.js";

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

/**
 * Where the `fdatasync` after each write runs (with `sync: "fsync"`). The
 * data is as durable either way: a write resolves after its fsync.
 */
export const FsyncOn = {
  /**
   * In libuv's thread pool: the event loop serves other work while the disk
   * syncs. Each fsync pays a hand-off to a pool thread and back (about
   * 0.1–0.2 ms on the machine of docs/performance.md).
   */
  ThreadPool: "thread-pool",
  /**
   * On the event loop's own thread, synchronously: no hand-off, so durable
   * writes go faster, but the event loop does nothing else while the disk
   * syncs, for as long as each fsync takes (a fraction of a millisecond
   * on a local SSD, milliseconds on spinning or network disks, far longer
   * while the kernel flushes much other data); the event loop takes a turn
   * after each fsync, before the writes resolve. For processes whose event
   * loop serves nothing that must answer quickly while they write:
   * importers, queue consumers, batch jobs.
   */
  EventLoop: "event-loop",
} as const;
export type FsyncOn = (typeof FsyncOn)[keyof typeof FsyncOn];

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
  /** Never compact a file of at most this many lines. @default 10000 */
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
  /** The store's directory; created, with its parents, if missing. Required. */
  directory: string;
  /** When `save` resolves; see {@link SyncPolicy}. @default "fsync" */
  sync?: SyncPolicy;
  /**
   * Where the fsync of each group write runs (with `sync: "fsync"`); see
   * {@link FsyncOn}. Compactions always fsync in the thread pool.
   * @default "thread-pool"
   */
  fsyncOn?: FsyncOn;
  /** Damaged lines mid-file; see {@link OnCorruption}. A torn last line is always dropped. @default "throw" */
  onCorruption?: OnCorruption;
  /** Called with the damaged lines skipped by a `load` or `compact` (with `onCorruption: "skip"`). @default none */
  onSkippedLines?: (report: SkippedLinesReport) => void;
  /**
   * Automatic compaction: after a save or load, a namespace whose file has
   * more than `max(minLines, ratio × keys)` lines (keys: entities and
   * tombstones, as the last scan counted them, or as estimated from the
   * keys saved since when clearly more; lines: not counting those the
   * last compaction copied as they were, saved while it ran) is compacted
   * in the background: the file stays within about `ratio` lines per key
   * (plus those copied lines), and compactions read about
   * `ratio / (ratio − 1)` times the bytes saved (see docs/file-store.md,
   * "Compaction"). `false` turns it off, `true` uses the defaults.
   * @default { minLines: 10000, ratio: 4 }
   */
  autoCompact?: boolean | AutoCompactOptions;
  /**
   * Compaction drops tombstones (`unset` changes) older than this many
   * milliseconds (by their timestamp). @default Infinity: tombstones are kept forever
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
   * @default 16777216 (16 MiB)
   */
  compactionWorkerMinBytes?: number;
}

/** Defaults of {@link FileStoreOptions}. */
export const FILE_STORE_DEFAULTS = {
  /** @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /** @default "accept" */
  unknownEntityTypes: STORE_DEFAULTS.unknownEntityTypes,
  /** @default "fsync" */
  sync: SyncPolicy.Fsync,
  /** @default "thread-pool" */
  fsyncOn: FsyncOn.ThreadPool,
  /** @default "throw" */
  onCorruption: OnCorruption.Throw,
  /** @default { minLines: 10000, ratio: 4 } */
  autoCompact: { minLines: 10_000, ratio: 4 },
  /** @default Infinity (tombstones are kept forever) */
  tombstoneRetentionMs: Number.POSITIVE_INFINITY,
  /** @default true */
  integrity: true,
  /** @default 256 */
  maxOpenNamespaces: 256,
  /** @default 16777216 (16 MiB) */
  compactionWorkerMinBytes: 16 * 1024 * 1024,
} as const;

/** The option names of {@link FileStoreOptions}. */
const OPTION_NAMES: readonly string[] = [
  ...BASE_STORE_OPTION_NAMES,
  "directory",
  "sync",
  "fsyncOn",
  "onCorruption",
  "onSkippedLines",
  "autoCompact",
  "tombstoneRetentionMs",
  "integrity",
  "onBackgroundError",
  "maxOpenNamespaces",
  "compactionWorkerMinBytes",
];

/** Earlier spellings of options, for the error that names the current one. */
const RENAMED: Readonly<Record<string, string>> = {
  dir: "directory",
  fsync: "sync",
  maxChangeBytes: "maxValueBytes",
};

/** Thresholds of automatic compaction (see {@link AutoCompactOptions}). */
export interface AutoCompactThresholds {
  readonly minLines: number;
  readonly ratio: number;
}

/** The file store's own options, checked, with defaults applied (the common ones are `BaseStore`'s). */
export interface ResolvedOptions {
  readonly directory: string;
  /** fdatasync after every group write. */
  readonly sync: boolean;
  /** That fdatasync runs on the event loop's thread (else in the thread pool). */
  readonly fsyncOnEventLoop: boolean;
  /** Skip damaged lines (else throw). */
  readonly skip: boolean;
  readonly onSkippedLines: ((report: SkippedLinesReport) => void) | undefined;
  /** `undefined`: no automatic compaction. */
  readonly autoCompact: AutoCompactThresholds | undefined;
  readonly tombstoneRetentionMs: number;
  readonly integrity: boolean;
  readonly onBackgroundError: (error: unknown) => void;
  readonly maxOpenNamespaces: number;
  readonly compactionWorkerMinBytes: number;
  /** Internal options (tests), with their defaults. */
  readonly internals: FileStoreInternals & {
    readonly readChunkBytes: number;
    readonly hintMinLines: number;
    readonly abandonCompactionMinBytes: number;
  };
}

const ignore = (): void => undefined;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function resolveAutoCompact(check: OptionChecker<FileStoreOptions>): AutoCompactThresholds | undefined {
  const given = check.custom<"autoCompact", boolean | AutoCompactOptions>("autoCompact", (v) =>
    typeof v === "boolean" || isPlainObject(v) ? undefined : "true, false or { minLines, ratio }",
  );
  if (given === false) return undefined;
  const fields = given === true ? {} : given;
  new OptionChecker("FileStore autoCompact", fields).known(["minLines", "ratio"]);
  // Named `autoCompact.<field>` in messages.
  const defaults = FILE_STORE_DEFAULTS.autoCompact;
  const nested = new OptionChecker<{ "autoCompact.minLines"?: number; "autoCompact.ratio"?: number }>(
    "FileStore",
    { "autoCompact.minLines": fields.minLines, "autoCompact.ratio": fields.ratio },
    { "autoCompact.minLines": defaults.minLines, "autoCompact.ratio": defaults.ratio },
  );
  return {
    minLines: nested.integer("autoCompact.minLines", { min: 0 }),
    ratio: nested.number("autoCompact.ratio", { min: 1 }),
  };
}

function resolveInternals(options: FileStoreOptions): ResolvedOptions["internals"] {
  const internals = internalsOf(options);
  const readChunkBytes = internals.readChunkBytes ?? READ_CHUNK_BYTES;
  if (!Number.isInteger(readChunkBytes) || readChunkBytes < 1) {
    throw new ConfigurationError(`FileStore internal option readChunkBytes must be a positive integer`);
  }
  const hintMinLines = internals.hintMinLines ?? HINT_MIN_LINES;
  if (!Number.isInteger(hintMinLines) || hintMinLines < 0) {
    throw new ConfigurationError(`FileStore internal option hintMinLines must be a non-negative integer`);
  }
  const abandonCompactionMinBytes = internals.abandonCompactionMinBytes ?? ABANDON_COMPACTION_MIN_BYTES;
  return { ...internals, readChunkBytes, hintMinLines, abandonCompactionMinBytes };
}

/**
 * Checks the file store's own options and applies their defaults (the
 * common options are checked by `BaseStore`).
 * @throws ConfigurationError naming the option, what it accepts and what it got
 */
export function resolveOptions(options: FileStoreOptions): ResolvedOptions {
  const check = new OptionChecker<FileStoreOptions>("FileStore", options, FILE_STORE_DEFAULTS);
  check.known(OPTION_NAMES, RENAMED);
  return {
    directory: check.string("directory"),
    sync: check.oneOf("sync", SyncPolicy) === SyncPolicy.Fsync,
    fsyncOnEventLoop: check.oneOf("fsyncOn", FsyncOn) === FsyncOn.EventLoop,
    skip: check.oneOf("onCorruption", OnCorruption) === OnCorruption.Skip,
    onSkippedLines: check.optionalFunction("onSkippedLines"),
    autoCompact: resolveAutoCompact(check),
    tombstoneRetentionMs: check.number("tombstoneRetentionMs", { min: 0, infinity: true }),
    integrity: check.boolean("integrity"),
    onBackgroundError: check.optionalFunction("onBackgroundError") ?? ignore,
    maxOpenNamespaces: check.integer("maxOpenNamespaces", { min: 1, infinity: true }),
    compactionWorkerMinBytes: check.number("compactionWorkerMinBytes", { min: 0, infinity: true }),
    internals: resolveInternals(options),
  };
}
