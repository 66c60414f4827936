/**
 * Options of the file event store, with their defaults and their checks.
 */
import {
  EVENT_STORE_DEFAULTS,
  EVENT_STORE_OPTION_NAMES,
  EVENT_STORE_RENAMED_OPTIONS,
  type EventStoreOptions,
} from "../../events/index.js";
import { OptionChecker } from "../../index.js";
import { FsyncOn, SyncPolicy } from "../options.js";

/** Defaults of {@link FileEventStoreOptions} (with those of every event store). */
export const FILE_EVENT_STORE_DEFAULTS = {
  ...EVENT_STORE_DEFAULTS,
  /**
   * fsync every append before it resolves.
   * @default "fsync"
   */
  sync: SyncPolicy.Fsync,
  /**
   * Where the fsync of each group write runs.
   * @default "thread-pool"
   */
  fsyncOn: FsyncOn.ThreadPool,
  /**
   * Size after which the log rolls to a new segment: 64 MiB.
   * @default 67108864
   */
  segmentBytes: 64 * 1024 * 1024,
  /**
   * Estimated size of the decoded events kept in memory: 32 MiB.
   * @default 33554432
   */
  cacheBytes: 32 * 1024 * 1024,
  /**
   * Instance name passed to the metrics.
   * @default "file-event-store"
   */
  name: "file-event-store",
} as const;

/** Options of {@link FileEventStore.open}: those of every event store, plus where and how it writes. */
export interface FileEventStoreOptions extends EventStoreOptions {
  /**
   * Directory of the store; created when missing. One open store at a time
   * may use it (an OS lock on its `LOCK` file); a second open fails with a
   * `LockedError`.
   */
  directory: string;
  /**
   * When an append resolves. `"fsync"`: after its lines are written and
   * fsynced (concurrent appends share one write and one fsync), so it
   * survives a crash of the machine. `"none"`: after `write(2)`, so it
   * survives a crash of the process, not of the machine. The same table as
   * the FileStore's, see {@link SyncPolicy}.
   * @default "fsync"
   */
  sync?: SyncPolicy;
  /**
   * Where the fsync of each group write runs (with `sync: "fsync"`): in
   * the thread pool, or on the event loop's thread, which saves the
   * hand-off to a pool thread but blocks the event loop while the disk
   * syncs. The same table as the FileStore's, see {@link FsyncOn}.
   * @default "thread-pool"
   */
  fsyncOn?: FsyncOn;
  /**
   * Size of the active segment, in bytes, after which the log rolls to a
   * new one. Retention deletes whole segments.
   * @default 67108864 (64 MiB)
   */
  segmentBytes?: number;
  /**
   * Estimated size, in bytes, of the decoded events kept in memory (the
   * estimate of `stats().memoryUsageBytes`: about 120 bytes per event plus
   * two per byte of its line). The events are on disk; this cache keeps the
   * events appended since the open and those read lately, so live
   * subscribers and repeated reads do not go to the disk (a sixteenth of
   * it for events read in global order, as by `subscribeAll`). It holds at
   * most 32,768 events (and 2,048 read in global order) whatever their
   * size. `0`: no cache, every read decodes its events from the segments.
   * @default 33554432 (32 MiB)
   */
  cacheBytes?: number;
}

/** The file event store's own options, checked. */
export interface CheckedFileEventStoreOptions {
  readonly directory: string;
  readonly sync: SyncPolicy;
  readonly fsyncOn: FsyncOn;
  readonly segmentBytes: number;
  readonly cacheBytes: number;
}

/**
 * Checks the options of a file event store (before anything touches the disk).
 * @throws ConfigurationError naming the option, what it accepts and what it got
 */
export function checkFileEventStoreOptions(options: FileEventStoreOptions): CheckedFileEventStoreOptions {
  const check = new OptionChecker("FileEventStore", options, FILE_EVENT_STORE_DEFAULTS).known(
    [...EVENT_STORE_OPTION_NAMES, "directory", "sync", "fsyncOn", "segmentBytes", "cacheBytes"],
    { ...EVENT_STORE_RENAMED_OPTIONS, dir: "directory", fsync: "sync" },
  );
  return {
    directory: check.string("directory"),
    sync: check.oneOf("sync", SyncPolicy),
    fsyncOn: check.oneOf("fsyncOn", FsyncOn),
    segmentBytes: check.integer("segmentBytes", { min: 1 }),
    cacheBytes: check.integer("cacheBytes", { min: 0 }),
  };
}
