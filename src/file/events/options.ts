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
import { SyncPolicy } from "../options.js";

/** Defaults of {@link FileEventStoreOptions} (with those of every event store). */
export const FILE_EVENT_STORE_DEFAULTS = {
  ...EVENT_STORE_DEFAULTS,
  /**
   * fsync every append before it resolves.
   * @default "fsync"
   */
  sync: SyncPolicy.Fsync,
  /**
   * Size after which the log rolls to a new segment: 64 MiB.
   * @default 67108864
   */
  segmentBytes: 64 * 1024 * 1024,
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
   * Size of the active segment, in bytes, after which the log rolls to a
   * new one. Retention deletes whole segments.
   * @default 67108864 (64 MiB)
   */
  segmentBytes?: number;
}

/** The file event store's own options, checked. */
export interface CheckedFileEventStoreOptions {
  readonly directory: string;
  readonly sync: SyncPolicy;
  readonly segmentBytes: number;
}

/**
 * Checks the options of a file event store (before anything touches the disk).
 * @throws ConfigurationError naming the option, what it accepts and what it got
 */
export function checkFileEventStoreOptions(options: FileEventStoreOptions): CheckedFileEventStoreOptions {
  const check = new OptionChecker("FileEventStore", options, FILE_EVENT_STORE_DEFAULTS).known(
    [...EVENT_STORE_OPTION_NAMES, "directory", "sync", "segmentBytes"],
    { ...EVENT_STORE_RENAMED_OPTIONS, dir: "directory", fsync: "sync" },
  );
  return {
    directory: check.string("directory"),
    sync: check.oneOf("sync", SyncPolicy),
    segmentBytes: check.integer("segmentBytes", { min: 1 }),
  };
}
