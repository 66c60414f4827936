/**
 * `FileReadModelStore`: read models, durable in a directory.
 *
 * One append-only log, `read-models.jsonl`: each line is one commit — the
 * saves and deletes of a call and, for `saveWithCheckpoint` or
 * `updateProjectionStatus`, the projection's status — with a CRC
 * (lines.ts). One line is one `write` (and one fsync under
 * `sync: "fsync"`), so a batch of models and its checkpoint are stored
 * together or not at all: a crash leaves at most a torn last line, which
 * the next open drops. `open` reads the log into a {@link ReadModelTable}
 * in memory (queries and loads never touch the disk); once dead records
 * (replaced or deleted models, old statuses) outnumber the live ones and
 * pass `compactionMinDeadRecords`, the log is rewritten atomically
 * (writeFileAtomic) with one line per live model and one for the statuses.
 *
 * Storage faults (disk full, I/O error, read-only storage): a write whose
 * `write(2)` or `fdatasync` fails rejects with a `WriteFailedError` and
 * changes nothing in memory; its bytes are cut back off and the log's
 * descriptor is closed, never fsynced again (after a failed fsync the
 * kernel may have dropped the dirty pages and marked them clean). The
 * next write opens the log anew and re-verifies it from disk: bytes past
 * the last acknowledged write are cut off (and that cut fsynced) before
 * anything is appended. On read-only storage the store opens and serves
 * reads; every write fails with a `WriteFailedError` until the storage
 * is writable again. Without a `LOCK` file there it opens unlocked, and
 * its first write creates and locks one (see `#lockForWrite`).
 */
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, statSync } from "node:fs";
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { CorruptionError, OptionChecker, STORE_DEFAULTS, UnavailableError } from "../../index.js";
import {
  checkIndexesOption,
  metadataFromJson,
  metadataToJson,
  type PreparedWrite,
  type ProjectionStatusRecord,
  type ReadModelStoreCapabilities,
  ReadModelTable,
  statusFromJson,
  statusToJson,
  TableReadModelStore,
} from "../../read-models/index.js";
import { TEMP_SUFFIX } from "../encoding.js";
import { isWriteFailedError, NOT_OPENED, writeFailed } from "../errors.js";
import { afterGroupWrite, fsyncDir, writeAllSync, writeFileAtomic } from "../fs.js";
import { appendLineCrc, verifyLineCrc } from "../lines.js";
import { StoreLock } from "../lock.js";
import { FsyncOn, SyncPolicy } from "../options.js";

/** Options of {@link FileReadModelStore.open}. */
export interface FileReadModelStoreOptions {
  /**
   * Directory of the store; created when missing. One open store at a time
   * may use it (an OS lock on its `LOCK` file); a second open fails with a
   * `LockedError`.
   */
  directory: string;
  /**
   * When a write resolves: `"fsync"` after its line is written and fsynced
   * (survives a crash of the machine); `"none"` after `write(2)` (survives
   * a crash of the process). See {@link SyncPolicy}.
   * @default "fsync"
   */
  sync?: SyncPolicy;
  /**
   * Where the fsync of each write runs (with `sync: "fsync"`): in the
   * thread pool, or on the event loop's thread, which saves the hand-off
   * to a pool thread but blocks the event loop while the disk syncs. See
   * {@link FsyncOn}.
   * @default "thread-pool"
   */
  fsyncOn?: FsyncOn;
  /**
   * Dotted paths into the models to keep a sorted index on, for every
   * model type (in memory, rebuilt on open).
   * @default [] (no index)
   */
  indexes?: readonly string[];
  /** Largest model, in bytes of UTF-8 JSON; over it a save fails with a `TooLargeError`. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
  /**
   * Dead records (replaced or deleted models, replaced statuses) the log
   * may hold before a write compacts it; it is compacted only when they
   * also outnumber the live records. `Infinity`: only `compact()` does.
   * @default 10000
   */
  compactionMinDeadRecords?: number;
}

/** Defaults of {@link FileReadModelStoreOptions}. */
export const FILE_READ_MODEL_STORE_DEFAULTS = {
  /** @default "fsync" */
  sync: SyncPolicy.Fsync,
  /** @default "thread-pool" */
  fsyncOn: FsyncOn.ThreadPool,
  /** @default [] */
  indexes: [] as readonly string[],
  /** @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /** @default 10000 */
  compactionMinDeadRecords: 10_000,
} as const;

const OPTION_NAMES = ["directory", "sync", "fsyncOn", "indexes", "maxValueBytes", "compactionMinDeadRecords"];
/** The log's file name in the directory (internal: not exported by the package). */
export const READ_MODEL_LOG = "read-models.jsonl";
const LOG = READ_MODEL_LOG;
const NL = 0x0a;

interface SaveRecord {
  t: "s";
  r: number;
  m: unknown;
  v: unknown;
}
interface DeleteRecord {
  t: "d";
  r: number;
  y: string;
  i: string;
}
interface Line {
  seq: number;
  w: (SaveRecord | DeleteRecord)[];
  st: unknown[];
  /** Names of the statuses removed (only on a line that removes one). */
  sx?: string[];
}

/** Read models in a directory. Open it with {@link FileReadModelStore.open}. */
export class FileReadModelStore extends TableReadModelStore {
  readonly capabilities: ReadModelStoreCapabilities = { atomicCheckpoint: true, indexes: true, durable: true };
  /** The store's directory (absolute). */
  readonly directory: string;
  /** When a write resolves. */
  readonly sync: SyncPolicy;
  /** Where each write's fsync runs. */
  readonly fsyncOn: FsyncOn;
  /** The declared index paths. */
  readonly indexes: readonly string[];
  readonly #minDead: number;
  readonly #file: string;
  /**
   * The `LOCK` file, from the open on (on read-only storage without it,
   * taken before the first write; see {@link StoreLock}).
   */
  #lock!: StoreLock;
  /** The log's descriptor (appending); -1 while closed: after a failed write, during a compaction, on read-only storage. */
  #fd = -1;
  /** Bytes of acknowledged lines in the log (what a reopened descriptor must find). */
  #size = 0;
  /** Records (models, deletes, statuses) the log holds. */
  #records = 0;

  private constructor(options: FileReadModelStoreOptions) {
    const check = new OptionChecker("FileReadModelStore", options, FILE_READ_MODEL_STORE_DEFAULTS).known(OPTION_NAMES, {
      dir: "directory",
      fsync: "sync",
    });
    const directory = resolve(check.string("directory"));
    const sync = check.oneOf("sync", SyncPolicy);
    const fsyncOn = check.oneOf("fsyncOn", FsyncOn);
    const indexes = checkIndexesOption(check);
    const maxValueBytes = check.integer("maxValueBytes", { min: 1 });
    const minDead = check.integer("compactionMinDeadRecords", { min: 0, infinity: true });
    super("file read-model store", new ReadModelTable(indexes), maxValueBytes);
    this.directory = directory;
    this.sync = sync;
    this.fsyncOn = fsyncOn;
    this.indexes = this.table.indexes;
    this.#minDead = minDead;
    this.#file = join(directory, LOG);
  }

  /**
   * Opens (or creates) the store in `options.directory` and reads its log;
   * a torn last line (a crash during a write) is dropped.
   * On read-only storage it opens for reading (each write fails with a `WriteFailedError`).
   * @throws ConfigurationError (nothing on disk is touched) | LockedError | CorruptionError (a damaged line before the last) | WriteFailedError (the directory or the log cannot be created or opened)
   */
  static async open(options: FileReadModelStoreOptions): Promise<FileReadModelStore> {
    const store = new FileReadModelStore(options);
    try {
      await store.#open();
    } catch (error) {
      store.#lock?.release();
      store.#closeLog();
      throw error;
    }
    return store;
  }

  async #open(): Promise<void> {
    await mkdir(this.directory, { recursive: true }).catch((error: unknown) => {
      throw writeFailed("mkdir", this.directory, error, undefined, NOT_OPENED);
    });
    const file = this.#file;
    this.#lock = StoreLock.open(this.directory, "read-model store", ["EROFS", "EACCES"], () => logState(file));
    for (const name of await readdir(this.directory)) {
      if (name.endsWith(TEMP_SUFFIX)) await unlink(join(this.directory, name)).catch(() => {});
    }
    let buf: Buffer;
    try {
      buf = await readFile(this.#file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      buf = Buffer.alloc(0);
    }
    let pos = 0;
    let lineNo = 0;
    while (pos < buf.length) {
      lineNo++;
      const nl = buf.indexOf(NL, pos);
      const text = buf.toString("utf8", pos, nl < 0 ? buf.length : nl);
      if (nl < 0 || !verifyLineCrc(text)) {
        if (nl < 0 || buf.indexOf(NL, nl + 1) < 0) break; // the torn last line of a crash: dropped
        throw new CorruptionError(this.#file, lineNo, "damaged read-model line (checksum); restore from a backup");
      }
      this.#replay(parseLine(text, this.#file, lineNo), lineNo);
      pos = nl + 1;
    }
    this.#size = pos;
    // Without the lock nothing is written: the first write opens the log (and cuts a torn last line off).
    if (!this.#lock.held) return;
    try {
      // Creates the log, and cuts a torn last line off.
      this.#openLog();
    } catch (error) {
      // Read-only storage: the store serves reads; each write tries again (and fails with a WriteFailedError).
      const errno = isWriteFailedError(error) ? error.errno : undefined;
      if (errno !== "EROFS" && errno !== "EACCES") throw error;
    }
  }

  /** Applies one commit of the log (line `lineNo`) to the table. @throws CorruptionError for a write or status a store never writes */
  #replay(line: Line, lineNo: number): void {
    for (const w of line.w) {
      this.#records++;
      if (w.t === "s") {
        const metadata = metadataFromJson(w.m, this.#file, lineNo);
        this.table.put({
          id: metadata.id,
          value: w.v,
          json: JSON.stringify(w.v),
          metadata,
          metadataJson: metadataToJson(metadata),
          revision: w.r,
        });
      } else {
        this.table.remove(w.y, w.i);
      }
    }
    for (const s of line.st) {
      this.#records++;
      this.table.setStatus(statusFromJson(s, this.#file, lineNo));
    }
    for (const name of line.sx ?? []) {
      this.#records++;
      this.table.deleteStatus(name);
    }
    if (line.seq > this.table.sequence) this.table.sequence = line.seq;
  }

  /** How many models are stored (of `modelType`, or of every type). */
  count(modelType?: string): number {
    this.checkOpen();
    return this.table.count(modelType);
  }

  /** Rewrites the log with only the live models and statuses (atomically: a crash leaves the old log or the new one). */
  async compact(): Promise<void> {
    this.checkOpen();
    return this.exclusive(() => this.#compact());
  }

  protected async persist(
    writes: readonly PreparedWrite[],
    revisions: readonly number[],
    status: ProjectionStatusRecord | undefined,
    removedStatus?: string,
  ): Promise<void> {
    if (removedStatus !== undefined) {
      await this.#append(Buffer.from(encodeLine(this.table.sequence, [], [], [removedStatus]), "utf8"));
      this.#records++;
      return;
    }
    const parts: string[] = [];
    let deletes = 0;
    writes.forEach((w, i) => {
      const r = revisions[i] as number;
      if (r === 0) return;
      if (w.type !== "save") deletes++;
      parts.push(
        w.type === "save"
          ? `{"t":"s","r":${r},"m":${w.metadataJson},"v":${w.json}}`
          : `{"t":"d","r":${r},"y":${JSON.stringify(w.modelType)},"i":${JSON.stringify(w.id)}}`,
      );
    });
    // A loop, not Math.max(...revisions): a batch may hold more revisions than a call takes arguments.
    let seq = this.table.sequence;
    for (const r of revisions) if (r > seq) seq = r;
    const line = encodeLine(seq, parts, status ? [statusToJson(status)] : []);
    await this.#append(Buffer.from(line, "utf8"));
    this.#records += parts.length + (status ? 1 : 0);
    // The table applies this commit after it is persisted: what is dead is known once it has. The records dead
    // then are at most those not live now plus the models this commit deletes (a new model is live, not dead).
    if (this.#records - this.#live() + deletes >= this.#minDead) {
      queueMicrotask(
        () =>
          void this.exclusive(async () => {
            // Background work: a store closing meanwhile does not wait for a compaction.
            if (this.closed) return;
            const live = this.#live();
            const dead = this.#records - live;
            if (dead >= this.#minDead && dead > live) await this.#compact();
          }).catch(() => undefined),
      );
    }
  }

  /** Records a compacted log would hold: the live models and the statuses. */
  #live(): number {
    return this.table.count() + [...this.table.statuses()].length;
  }

  /**
   * Appends one line (one commit); resolves once it is written (and
   * fsynced). A failure leaves nothing acknowledged: see the module's
   * comment ("Storage faults").
   */
  async #append(data: Buffer): Promise<void> {
    const fd = this.#openLog();
    let operation: "write" | "fsync" = "write";
    try {
      writeAllSync(fd, data);
      operation = "fsync";
      await afterGroupWrite(fd, this.sync === SyncPolicy.Fsync, this.fsyncOn === FsyncOn.EventLoop);
    } catch (error) {
      // Cut a partly (or wholly) written line off, so that a later load never sees it.
      let detail = "the log is checked from disk before the next write";
      try {
        ftruncateSync(fd, this.#size);
      } catch (truncateError) {
        detail = `its line could not be cut off yet (${(truncateError as Error).message}): the next write cuts it off first`;
      }
      // Never fsync this descriptor again: the next write reopens the log and re-verifies it.
      this.#closeLog();
      throw writeFailed(operation, this.#file, error, detail);
    }
    this.#size += data.length;
  }

  /**
   * The log's descriptor, opened (and the log created) when closed. A log
   * opened anew is re-verified first: bytes past the last acknowledged
   * line (a torn line, or a write that failed and could not be cut off)
   * are cut off, and the cut fsynced. A log shorter than what was
   * acknowledged lost data under the store: every write fails until the
   * store is reopened (which reads what is really there).
   * @throws WriteFailedError | UnavailableError
   */
  #openLog(): number {
    if (this.#fd >= 0) return this.#fd;
    this.#lock.forWrite();
    const created = statSync(this.#file, { throwIfNoEntry: false }) === undefined;
    let fd: number;
    try {
      fd = openSync(this.#file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o644);
    } catch (error) {
      throw writeFailed("open", this.#file, error);
    }
    let operation: "truncate" | "fsync" = "truncate";
    try {
      const size = fstatSync(fd).size;
      if (size < this.#size) {
        throw new UnavailableError(
          `${this.#file} holds ${size} bytes, less than the ${this.#size} acknowledged: reopen the store to read what is left`,
        );
      }
      if (size > this.#size) {
        ftruncateSync(fd, this.#size);
        operation = "fsync";
        if (this.sync === SyncPolicy.Fsync) fsyncSync(fd);
      }
      operation = "fsync";
      if (created && this.sync === SyncPolicy.Fsync) fsyncDir(dirname(this.#file));
    } catch (error) {
      closeSync(fd);
      throw writeFailed(operation, this.#file, error);
    }
    this.#fd = fd;
    return fd;
  }

  #closeLog(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        // Closed either way (close(2) releases the descriptor even when it reports an error).
      }
    }
  }

  async #compact(): Promise<void> {
    const lines: string[] = [];
    let records = 0;
    for (const e of this.table.entries()) {
      lines.push(encodeLine(e.revision, [`{"t":"s","r":${e.revision},"m":${e.metadataJson},"v":${e.json}}`], []));
      records++;
    }
    const statuses = [...this.table.statuses()].map(statusToJson);
    records += statuses.length;
    lines.push(encodeLine(this.table.sequence, [], statuses));
    const data = lines.map((l) => Buffer.from(l, "utf8"));
    this.#lock.forWrite();
    const before = statSync(this.#file, { throwIfNoEntry: false });
    this.#closeLog();
    let bytes = 0;
    for (const d of data) bytes += d.length;
    try {
      // Fsynced whatever `sync` says (as the FileStore's compactions): renamed unsynced over the log, a crash of
      // the OS could leave an empty file where the whole store was, not just lose the last writes.
      await writeFileAtomic(this.#file, data, SyncPolicy.Fsync);
    } catch (error) {
      // Failed before the rename: the old log is intact (its size still #size). After it (the directory's
      // fsync): the new log is in place.
      const now = statSync(this.#file, { throwIfNoEntry: false });
      if (now && before && now.ino !== before.ino) {
        this.#size = bytes;
        this.#records = records;
      }
      throw error;
    }
    this.#size = bytes;
    this.#records = records;
    // The next write opens the new log.
  }

  protected async closeResources(): Promise<void> {
    this.#closeLog();
    this.#lock.release();
    this.table.clear();
  }
}

/** What the log at `file` is: its inode, size and modification time (equal before and after: nobody wrote it in between). */
function logState(file: string): string {
  const st = statSync(file, { throwIfNoEntry: false });
  return JSON.stringify([st?.ino, st?.size, st?.mtimeMs]);
}

/**
 * A line of the log (its checksum checked) as a commit: `seq`, writes `w`
 * (saves `{t:"s",r,m,v}`, deletes `{t:"d",r,y,i}`), statuses `st` and
 * removed status names `sx`. The metadata and statuses are checked when
 * applied (`metadataFromJson`, `statusFromJson`).
 * @throws CorruptionError at `file`:`lineNo` for anything else (a line edited by hand, its checksum made anew)
 */
function parseLine(text: string, file: string, lineNo: number): Line {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CorruptionError(file, lineNo, "read-model line is not JSON", { cause: error });
  }
  const bad = (what: string) => new CorruptionError(file, lineNo, `not a read-model commit: ${what}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("not an object");
  const line = value as Partial<Record<keyof Line, unknown>>;
  if (!Number.isSafeInteger(line.seq) || (line.seq as number) < 0) throw bad("seq is not an integer >= 0");
  if (!Array.isArray(line.w)) throw bad("w is not an array of writes");
  if (!Array.isArray(line.st)) throw bad("st is not an array of statuses");
  if (line.sx !== undefined && !(Array.isArray(line.sx) && line.sx.every((n) => typeof n === "string"))) {
    throw bad("sx is not an array of projection names");
  }
  line.w.forEach((w: unknown, i) => {
    const write = w as { t?: unknown; r?: unknown; y?: unknown; i?: unknown } | null;
    if (typeof write !== "object" || write === null || !Number.isSafeInteger(write.r) || (write.r as number) < 1) {
      throw bad(`w[${i}] is not a write with a revision`);
    }
    if (
      write.t === "s" ? !("v" in write) : write.t !== "d" || typeof write.y !== "string" || typeof write.i !== "string"
    ) {
      throw bad(`w[${i}] is neither a save {t:"s",r,m,v} nor a delete {t:"d",r,y,i}`);
    }
  });
  return line as Line;
}

function encodeLine(
  seq: number,
  writes: readonly string[],
  statuses: readonly string[],
  removed: readonly string[] = [],
): string {
  const sx = removed.length === 0 ? "" : `,"sx":${JSON.stringify(removed)}`;
  return `${appendLineCrc(`{"seq":${seq},"w":[${writes.join(",")}],"st":[${statuses.join(",")}]${sx}`)}\n`;
}
