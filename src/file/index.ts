/**
 * `statelog/file`: the embedded, durable store. One JSONL file per
 * namespace in a directory, append + group-committed fsync on save,
 * in-memory compaction on load, atomic background compaction, safe for
 * several processes on one directory. See docs/file-store.md.
 */
export {
  FileErrorCode,
  type FileOperation,
  isLockedError,
  isWriteFailedError,
  LockedError,
  WriteFailedError,
} from "./errors.js";
export type { DiskEventLog } from "./events/disk-log.js";
export { FILE_EVENT_STORE_DEFAULTS, type FileEventStoreOptions } from "./events/options.js";
export { FileEventStore } from "./events/store.js";
export {
  type AutoCompactOptions,
  FILE_STORE_DEFAULTS,
  type FileStoreOptions,
  FsyncOn,
  OnCorruption,
  type SkippedLinesReport,
  SyncPolicy,
} from "./options.js";
export {
  FILE_READ_MODEL_STORE_DEFAULTS,
  FileReadModelStore,
  type FileReadModelStoreOptions,
} from "./read-models/store.js";
export { FILE_SNAPSHOT_STORE_DEFAULTS, FileSnapshotStore, type FileSnapshotStoreOptions } from "./snapshot-store.js";
export { FileStore, type FileStoreStats } from "./store.js";
