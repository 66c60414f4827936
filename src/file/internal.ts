/**
 * Internal options of the file store and the file event store, for
 * statelog's own tests and benchmarks: crash points in compaction, the
 * read chunk sizes, and the module a compaction worker runs. They are not
 * part of `FileStoreOptions` (nor of the event store's options) and
 * `statelog/file` does not export this module: a test imports it by path
 * and passes them with {@link withInternals}.
 *
 * @example
 * const store = await FileStore.open(withInternals({ directory }, { readChunkBytes: 7 }));
 */

/**
 * The key of the internal options in the options object given to `FileStore.open`: a symbol of this
 * module alone (not of the global registry), so that only code that imports this module can pass them.
 */
export const INTERNAL: unique symbol = Symbol("statelog.internal");

/** The steps of a compaction at which {@link FileStoreInternals.crashAt} can stop the process. */
export const CompactionStep = {
  BeforeTempWrite: "before-temp-write",
  AfterTempWrite: "after-temp-write",
  AfterTempFsync: "after-temp-fsync",
  AfterRename: "after-rename",
  AfterDirFsync: "after-dir-fsync",
} as const;
export type CompactionStep = (typeof CompactionStep)[keyof typeof CompactionStep];

/** The internal options. */
export interface FileStoreInternals {
  /** Every compaction kills the process (SIGKILL) when it reaches this step (the crash tests). @default never */
  readonly crashAt?: CompactionStep | undefined;
  /** Bytes read from a file at once; small values exercise lines across chunk ends. @default 33554432 (32 MiB) */
  readonly readChunkBytes?: number | undefined;
  /**
   * A load writes a hint file when it read at least this many lines in
   * full and the file holds at least this many superseded lines (and one
   * per 8 winners). Tests lower it to exercise hints on small files.
   * @default 1024
   */
  readonly hintMinLines?: number | undefined;
  /**
   * `close()` abandons a running automatic compaction of a file of at
   * least this many bytes (before its exclusive step); it waits for one
   * of a smaller file. Tests lower it. @default 16777216 (16 MiB)
   */
  readonly abandonCompactionMinBytes?: number | undefined;
  /**
   * The module a compaction worker thread runs. Tests run the TypeScript
   * sources, which a worker cannot load by itself: they give a small
   * JavaScript module that registers a TypeScript loader, then imports
   * compact-worker.ts. @default compact-worker.js next to compaction.js
   */
  readonly compactionWorkerUrl?: URL | undefined;
}

/** Bytes read from a file at once (see {@link FileStoreInternals.readChunkBytes}). */
export const READ_CHUNK_BYTES = 32 * 1024 * 1024;

/** See {@link FileStoreInternals.abandonCompactionMinBytes}. */
export const ABANDON_COMPACTION_MIN_BYTES = 16 * 1024 * 1024;

/** See {@link FileStoreInternals.hintMinLines}. */
export const HINT_MIN_LINES = 1024;

/** The internal options of a `FileEventStore`. */
export interface FileEventStoreInternals {
  /**
   * Bytes of a segment that no index file covers read at once when the
   * store opens; small values exercise batches across reads.
   * @default 1048576 (1 MiB)
   */
  readonly rebuildReadBytes?: number | undefined;
}

/** `options` (of a `FileStore` or a `FileEventStore`) with internal options added. */
export function withInternals<T extends object>(
  options: T,
  internals: FileStoreInternals & FileEventStoreInternals,
): T {
  return Object.assign({ ...options }, { [INTERNAL]: internals });
}

/** The internal options given with `options` (none: `{}`). */
export function internalsOf(options: object | undefined): FileStoreInternals & FileEventStoreInternals {
  const internals = (options as { [INTERNAL]?: FileStoreInternals } | undefined)?.[INTERNAL];
  return typeof internals === "object" && internals !== null ? internals : {};
}

const noCrash = (_step: CompactionStep): void => undefined;

/** The crash points of one compaction: a function that kills the process at step `at` (a no-op without `at`). */
export function crashPoints(at: CompactionStep | undefined): (step: CompactionStep) => void {
  if (at === undefined) return noCrash;
  return (step) => {
    if (step === at) process.kill(process.pid, "SIGKILL");
  };
}
