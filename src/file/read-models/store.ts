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
 */
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CorruptionError, messageOf, OptionChecker, STORE_DEFAULTS, UnavailableError } from "../../index.js";
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
import { LockedError } from "../errors.js";
import { fsyncDir, writeFileAtomic } from "../fs.js";
import { appendLineCrc, verifyLineCrc } from "../lines.js";
import { flockTry } from "../lock.js";
import { SyncPolicy } from "../options.js";

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
  /** @default [] */
  indexes: [] as readonly string[],
  /** @default 1048576 (1 MiB) */
  maxValueBytes: STORE_DEFAULTS.maxValueBytes,
  /** @default 10000 */
  compactionMinDeadRecords: 10_000,
} as const;

const OPTION_NAMES = ["directory", "sync", "indexes", "maxValueBytes", "compactionMinDeadRecords"];
/** The log's file name in the directory. */
const LOG = "read-models.jsonl";
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
}

/** Read models in a directory. Open it with {@link FileReadModelStore.open}. */
export class FileReadModelStore extends TableReadModelStore {
  readonly capabilities: ReadModelStoreCapabilities = { atomicCheckpoint: true, indexes: true, durable: true };
  /** The store's directory (absolute). */
  readonly directory: string;
  /** When a write resolves. */
  readonly sync: SyncPolicy;
  /** The declared index paths. */
  readonly indexes: readonly string[];
  readonly #minDead: number;
  readonly #file: string;
  #lock: FileHandle | undefined;
  #log: FileHandle | undefined;
  /** Bytes of valid lines in the log. */
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
    const indexes = checkIndexesOption(check);
    const maxValueBytes = check.integer("maxValueBytes", { min: 1 });
    const minDead = check.integer("compactionMinDeadRecords", { min: 0, infinity: true });
    super("file read-model store", new ReadModelTable(indexes), maxValueBytes);
    this.directory = directory;
    this.sync = sync;
    this.indexes = this.table.indexes;
    this.#minDead = minDead;
    this.#file = join(directory, LOG);
  }

  /**
   * Opens (or creates) the store in `options.directory` and reads its log;
   * a torn last line (a crash during a write) is dropped.
   * @throws ConfigurationError (nothing on disk is touched) | LockedError | CorruptionError (a damaged line before the last)
   */
  static async open(options: FileReadModelStoreOptions): Promise<FileReadModelStore> {
    const store = new FileReadModelStore(options);
    try {
      await store.#open();
    } catch (error) {
      await store.#lock?.close().catch(() => {});
      await store.#log?.close().catch(() => {});
      throw error;
    }
    return store;
  }

  async #open(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    this.#lock = await open(join(this.directory, "LOCK"), "a");
    if (!flockTry(this.#lock.fd, "ex")) throw new LockedError(this.directory);
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
      this.#replay(JSON.parse(text) as Line);
      pos = nl + 1;
    }
    this.#size = pos;
    this.#log = await open(this.#file, "a+");
    if (pos < buf.length) await this.#log.truncate(pos);
    if (buf.length === 0 && this.sync === SyncPolicy.Fsync) fsyncDir(this.directory);
  }

  #replay(line: Line): void {
    for (const w of line.w) {
      this.#records++;
      if (w.t === "s") {
        const metadata = metadataFromJson(w.m);
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
      this.table.setStatus(statusFromJson(s));
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
  ): Promise<void> {
    const parts: string[] = [];
    writes.forEach((w, i) => {
      const r = revisions[i] as number;
      if (r === 0) return;
      parts.push(
        w.type === "save"
          ? `{"t":"s","r":${r},"m":${w.metadataJson},"v":${w.json}}`
          : `{"t":"d","r":${r},"y":${JSON.stringify(w.modelType)},"i":${JSON.stringify(w.id)}}`,
      );
    });
    const seq = Math.max(this.table.sequence, ...revisions);
    const line = encodeLine(seq, parts, status ? [statusToJson(status)] : []);
    await this.#append(Buffer.from(line, "utf8"));
    this.#records += parts.length + (status ? 1 : 0);
    const live = this.table.count() + [...this.table.statuses()].length;
    if (this.#records - live >= this.#minDead && this.#records - live > live) {
      // Compacted after this commit is applied: the table must hold it first.
      queueMicrotask(() => void this.exclusive(() => this.#compact()).catch(() => undefined));
    }
  }

  async #append(data: Buffer): Promise<void> {
    const log = this.#log as FileHandle;
    try {
      await log.writeFile(data);
      if (this.sync === SyncPolicy.Fsync) await log.datasync();
      this.#size += data.length;
    } catch (error) {
      // Cut a partly written line off, so that the next line starts clean.
      await log.truncate(this.#size).catch(() => {});
      throw new UnavailableError(`write to ${this.#file} failed: ${messageOf(error)}`, { cause: error });
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
    await this.#log?.close();
    this.#log = undefined;
    try {
      this.#size = await writeFileAtomic(this.#file, data, this.sync);
      this.#records = records;
    } finally {
      // The new log, or the old one when the rewrite failed (then every record of it is still there).
      this.#log = await open(this.#file, "a+");
      this.#size = (await this.#log.stat()).size;
    }
  }

  protected async closeResources(): Promise<void> {
    await this.#log?.close().catch(() => {});
    await this.#lock?.close().catch(() => {});
    this.#log = undefined;
    this.#lock = undefined;
    this.table.clear();
  }
}

function encodeLine(seq: number, writes: readonly string[], statuses: readonly string[]): string {
  return `${appendLineCrc(`{"seq":${seq},"w":[${writes.join(",")}],"st":[${statuses.join(",")}]`)}\n`;
}
