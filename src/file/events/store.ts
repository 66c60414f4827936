/**
 * `FileEventStore`: the event store, durable in a directory. One segmented
 * append-only log holds every stream's events in global order; appends are
 * written and fsynced before they resolve, concurrent appends share one
 * write and one fsync (group commit). An append is all of its events or
 * none, after a crash too: its first line announces how many lines it has
 * (`./format.ts`), and a reopen drops a last append whose lines did not all
 * reach the disk. Events stay in the segments: memory holds an index
 * (`./disk-log.ts`: where each event's line is, per stream and in global
 * order), persisted in side files next to the segments (`./index-file.ts`)
 * so that a reopen reads the index, not the log; reads fetch lines with
 * positioned reads. Retention deletes whole segments.
 */

import { readdirSync, statSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type AppendRequest,
  BaseEventStore,
  type EventStoreCapabilities,
  type PlannedAppend,
  type PreparedEvent,
  type SnapshotInfo,
} from "../../events/index.js";
import { ClosedError, ConfigurationError, CorruptionError, messageOf, UnavailableError } from "../../index.js";
import { TEMP_SUFFIX } from "../encoding.js";
import { NOT_OPENED, writeFailed } from "../errors.js";
import { afterGroupWrite, fsyncDir, writeAllSync } from "../fs.js";
import { internalsOf } from "../internal.js";
import { StoreLock } from "../lock.js";
import { FsyncOn, SyncPolicy } from "../options.js";
import { DiskEventLog } from "./disk-log.js";
import { encodeLine, indexName, segmentName, snapshotName } from "./format.js";
import { indexUpTo } from "./index-writer.js";
import { loadDirectory, REBUILD_READ_BYTES } from "./load.js";
import { checkFileEventStoreOptions, FILE_EVENT_STORE_DEFAULTS, type FileEventStoreOptions } from "./options.js";
import { type Segment, Segments } from "./segments.js";
import { capture, writeSnapshot } from "./snapshot.js";

/**
 * Bytes of the active segment after which the lines not in its index file
 * get their block: bounds what an open after a crash scans.
 */
const INDEX_INTERVAL_BYTES = 1024 * 1024;

interface Waiting {
  readonly request: AppendRequest;
  readonly resolve: (planned: PlannedAppend) => void;
  readonly reject: (error: unknown) => void;
}

/** A durable event store in a directory. Open it with {@link FileEventStore.open}. */
export class FileEventStore extends BaseEventStore {
  readonly capabilities: EventStoreCapabilities = {
    durable: true,
    retention: true,
    applyRetention: true,
    limits: true,
    persistentSnapshots: true,
  };
  /** The store's directory (absolute). */
  readonly directory: string;
  /** When an append resolves. */
  readonly sync: SyncPolicy;
  /** Where each group write's fsync runs. */
  readonly fsyncOn: FsyncOn;
  /** `sync === "fsync"`. */
  readonly #fsync: boolean;
  /** `fsyncOn === "event-loop"`. */
  readonly #fsyncOnEventLoop: boolean;
  readonly #segmentBytes: number;
  /** The index every read is served from (the base's `log`). */
  protected override readonly log: DiskEventLog;
  readonly #files: Segments;
  #handle: FileHandle | undefined;
  /**
   * The `LOCK` file, from the open on (on read-only storage without it,
   * taken before the first write; see {@link StoreLock}).
   */
  #lock!: StoreLock;
  #queue: Waiting[] = [];
  #rollWanted = false;
  /** Why the last roll a snapshot asked for failed (told to that snapshot). */
  #rollFailure: unknown;
  #writing: Promise<void> | undefined;
  #snapshotting: Promise<SnapshotInfo> | undefined;
  /** The last deletion of expired segments (one runs at a time). */
  #retaining: Promise<void> | undefined;
  /**
   * Set when a failed write left lines on disk that could not be cut off:
   * every later append fails with it (a reopen drops the partial batch).
   */
  #damagedTail: Error | undefined;
  /** Global position covered by the newest snapshot on disk. */
  #snapshotGlobal = 0;
  /** Bytes of a segment that no index covers read at once by the open (internal option). */
  readonly #rebuildReadBytes: number;

  private constructor(options: FileEventStoreOptions) {
    const checked = checkFileEventStoreOptions(options);
    super(options, FILE_EVENT_STORE_DEFAULTS.name, "FileEventStore");
    this.log = new DiskEventLog(checked.cacheBytes);
    this.directory = resolve(checked.directory);
    this.sync = checked.sync;
    this.#fsync = checked.sync === SyncPolicy.Fsync;
    this.fsyncOn = checked.fsyncOn;
    this.#fsyncOnEventLoop = checked.fsyncOn === FsyncOn.EventLoop;
    this.#segmentBytes = checked.segmentBytes;
    const { rebuildReadBytes = REBUILD_READ_BYTES } = internalsOf(options);
    if (!Number.isInteger(rebuildReadBytes) || rebuildReadBytes < 1) {
      throw new ConfigurationError("FileEventStore internal option rebuildReadBytes must be a positive integer");
    }
    this.#rebuildReadBytes = rebuildReadBytes;
    this.#files = new Segments(this.directory);
    const files = this.#files;
    this.log.setReader((g, offset, bytes, count, kept) => files.readLines(g, offset, bytes, count, kept));
  }

  /** The segments, oldest first. */
  get #segments(): Segment[] {
    return this.#files.list;
  }

  /**
   * Opens (or creates) the store in `options.directory`: reads the newest
   * valid snapshot and each segment's index side file, scans what no index
   * covers (rebuilding those side files), drops (and cuts from the file)
   * the last append when a crash interrupted its write (a torn line, or
   * fewer lines than its first line announces), and applies retention.
   * @throws ConfigurationError (a bad option; nothing on disk is touched) | LockedError | CorruptionError |
   *   WriteFailedError (its directory or `LOCK` file cannot be made or opened)
   */
  static async open(options: FileEventStoreOptions): Promise<FileEventStore> {
    const store = new FileEventStore(options);
    try {
      await store.#open();
    } catch (error) {
      store.#files.closeAll();
      store.#lock?.release();
      await store.#handle?.close().catch(() => {});
      throw error;
    }
    store.startTimers(true);
    return store;
  }

  async #open(): Promise<void> {
    const dir = this.directory;
    await mkdir(dir, { recursive: true }).catch((error: unknown) => {
      throw writeFailed("mkdir", dir, error, undefined, NOT_OPENED);
    });
    this.#lock = StoreLock.open(dir, `event store ${JSON.stringify(this.name)}`, ["EROFS"], () => segmentsState(dir));
    const names = await readdir(dir);
    // Temp files of snapshots a crash interrupted (this store holds the lock: nobody else writes any).
    for (const n of names) if (n.endsWith(TEMP_SUFFIX)) await unlink(join(dir, n)).catch(() => {});
    const { snapshot, legacySnapshot } = await loadDirectory(dir, names, this.log, this.#files, this.#rebuildReadBytes);
    this.#snapshotGlobal = snapshot?.lastGlobal ?? 0;
    if (snapshot && legacySnapshot) {
      // The earlier version's snapshot held every event: rewritten (atomically, same name) as the streams' positions only.
      await writeSnapshot(dir, snapshot, this.sync).catch(() => {});
    }
    if (this.retentionDurationMs > 0) this.log.expire(this.now() - this.retentionDurationMs);
    await this.#openActive();
    this.log.keepFrom = (this.#segments.at(-1) as Segment).indexedEnd;
  }

  async #openActive(): Promise<void> {
    let active = this.#segments.at(-1);
    const created = !active;
    if (!active) {
      const first = this.log.lastGlobal + 1;
      active = { name: segmentName(first), first, size: 0, indexed: 0, indexedEnd: first, indexWritable: true };
      this.#segments.push(active);
    }
    // Without the lock nothing is opened for writing: the first append opens the segment (#reopenActive).
    if (!this.#lock.held) return;
    try {
      this.#handle = await open(join(this.directory, active.name), "a");
    } catch (error) {
      // Read-only storage: the store opens for reading; each append fails with a WriteFailedError (it retries the open).
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EROFS" || code === "EACCES") return;
      throw writeFailed("open", join(this.directory, active.name), error);
    }
    // A new segment's name made durable before anything is appended to it. An existing segment's name is durable
    // already: #roll and this method fsync the directory before the first append to a segment they create.
    if (created && this.#fsync) fsyncDir(this.directory);
  }

  /**
   * After a failed write or fsync: cut the group's bytes back off (when
   * that fails too, every later append is refused until the store is
   * reopened, which drops the partial batch), then close the handle without another fsync on it (the kernel may have
   * dropped the pages a failed fsync did not write, and marked them clean:
   * a retried fsync would "succeed"). The next append reopens the segment
   * and checks it from disk first ({@link #reopenActive}).
   */
  async #afterFailedWrite(active: Segment): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (!handle) return;
    await handle.truncate(active.size).catch((truncateError: unknown) => {
      // Lines of this group stay on disk: appending after them would bury a half batch inside the log.
      this.#damagedTail = new UnavailableError(
        `event store ${JSON.stringify(this.name)}: a failed write left a partial batch in ${active.name} ` +
          `that could not be removed (${messageOf(truncateError)}); reopen the store to repair the log`,
        { cause: truncateError },
      );
    });
    await handle.close().catch(() => {});
  }

  /**
   * Opens the active segment after a failed write, on a new descriptor,
   * and re-verifies it from disk: bytes beyond what the last acknowledged
   * append left (a failed write the truncation could not remove) are cut
   * off and that cut is fsynced. When even that fails the append fails;
   * when the file is shorter than what was acknowledged, acknowledged
   * events are gone and every later append fails until the store is
   * reopened (which reads what is really there).
   */
  async #reopenActive(active: Segment): Promise<FileHandle> {
    const file = join(this.directory, active.name);
    let handle: FileHandle;
    try {
      handle = await open(file, "r+");
    } catch (error) {
      // A segment never made (the open found read-only storage before its first append): made now, empty.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || active.size !== 0) throw error;
      this.#handle = await open(file, "a");
      if (this.#fsync) fsyncDir(this.directory);
      return this.#handle;
    }
    try {
      const { size } = await handle.stat();
      if (size < active.size) {
        this.#damagedTail = new UnavailableError(
          `event store ${JSON.stringify(this.name)}: ${active.name} holds ${size} bytes, less than the ${active.size} acknowledged; reopen the store to read what is left`,
        );
        throw this.#damagedTail;
      }
      if (size > active.size) await handle.truncate(active.size);
      if (this.#fsync) await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    await handle.close();
    this.#handle = await open(file, "a");
    return this.#handle;
  }

  /** Writes the index block of the active segment's lines that its index file misses. */
  #indexActive(): void {
    const active = this.#segments.at(-1);
    if (!active) return;
    indexUpTo(this.directory, this.log, active, this.log.lastGlobal + 1);
    this.log.keepFrom = active.indexedEnd;
  }

  async #roll(): Promise<void> {
    this.#lock.forWrite();
    const first = this.log.lastGlobal + 1;
    const segment: Segment = {
      name: segmentName(first),
      first,
      size: 0,
      indexed: 0,
      indexedEnd: first,
      indexWritable: true,
    };
    const file = join(this.directory, segment.name);
    const handle = await open(file, "a").catch((error: unknown) => {
      throw writeFailed("open", file, error);
    });
    try {
      if (this.#fsync) fsyncDir(this.directory);
    } catch (error) {
      // The new segment is not durable: leave it, keep appending to the current one.
      await handle.close().catch(() => {});
      await unlink(file).catch(() => {});
      throw writeFailed("fsync", this.directory, error);
    }
    // The segment being sealed gets the rest of its index (its lines are all committed: a roll comes between groups).
    this.#indexActive();
    await this.#handle?.close();
    this.#handle = handle;
    this.#segments.push(segment);
    this.log.keepFrom = first;
  }

  protected store(request: AppendRequest): Promise<PlannedAppend> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#startWriter();
    });
  }

  /** All file I/O on the log runs in this one writer loop, so a roll never races a write. */
  #startWriter(): Promise<void> {
    if (!this.#writing) {
      this.#writing = this.#drain().finally(() => {
        this.#writing = undefined;
        // Work queued between the loop's last check and here starts a new loop.
        if (this.#queue.length > 0 || this.#rollWanted) this.#startWriter().catch(() => {}); // failures reach the appends
      });
    }
    return this.#writing;
  }

  /** The group-commit loop: everything queued while one write+fsync runs goes into the next one. */
  async #drain(): Promise<void> {
    await Promise.resolve(); // let appends made in the same tick join this group
    while (this.#queue.length > 0 || this.#rollWanted) {
      if (this.#rollWanted) {
        this.#rollWanted = false;
        try {
          if ((this.#segments.at(-1) as Segment).size > 0) await this.#roll();
        } catch (error) {
          // Appends go on in the current segment; the snapshot that asked for the roll reports it.
          this.#rollFailure = error;
        }
        continue;
      }
      const group = this.#queue.splice(0);
      const planned = this.log.plan(
        group.map((w) => w.request),
        this.limits,
      );
      const lines: string[] = [];
      // The whole group goes to the active segment (a roll comes only between groups): no append spans two segments.
      const active = this.#segments.at(-1) as Segment;
      /** Offset and length of each line in the segment, for the index. */
      const places: number[] = [];
      let offset = active.size;
      for (const p of planned) {
        if (!p.ok) continue;
        p.records.forEach((r, i) => {
          const e = p.request.events[i] as PreparedEvent;
          const line = encodeLine(r, e.json, e.metaJson, i === 0 ? p.records.length : undefined);
          const length = Buffer.byteLength(line, "utf8");
          lines.push(line);
          places.push(offset, length);
          offset += length;
        });
      }
      if (lines.length > 0) {
        if (this.#damagedTail !== undefined) {
          failPlanned(planned, group, this.#damagedTail);
          continue;
        }
        const buf = Buffer.from(lines.join(""), "utf8");
        let operation: "open" | "write" | "fsync" = "open";
        try {
          this.#lock.forWrite();
          // A failed write closed the handle: open the segment anew (see #reopenActive).
          const handle = this.#handle ?? (await this.#reopenActive(active));
          operation = "write";
          writeAllSync(handle.fd, buf);
          operation = "fsync";
          await afterGroupWrite(handle.fd, this.#fsync, this.#fsyncOnEventLoop);
          active.size += buf.length;
        } catch (error) {
          const failure = writeFailed(operation, join(this.directory, active.name), error);
          await this.#afterFailedWrite(active);
          failPlanned(planned, group, failure);
          continue;
        }
      }
      let at = 0;
      planned.forEach((p, i) => {
        if (p.ok) {
          this.log.commitAt(p.records, places.slice(at, at + 2 * p.records.length));
          at += 2 * p.records.length;
        }
        group[i]?.resolve(p);
      });
      if (active.size - active.indexed >= INDEX_INTERVAL_BYTES && active.size < this.#segmentBytes) this.#indexActive();
      if (active.size >= this.#segmentBytes) {
        await this.#roll().catch(() => {}); // stays on the current segment; retried after the next write
      }
    }
  }

  /**
   * Snapshots run one at a time, each after the previous one. One still
   * queued when the store closes writes nothing: it fails with a
   * `ClosedError` at once, so that `close()` waits for the one running only.
   */
  protected takeSnapshot(): Promise<SnapshotInfo> {
    const run = async (): Promise<SnapshotInfo> => {
      if (this.closed) throw new ClosedError(`event store ${JSON.stringify(this.name)}`);
      this.#lock.forWrite();
      // The index side file of the active segment first, so that the next open scans nothing.
      this.#indexActive();
      // Committed events are on disk already (a group is committed after its fsync): the capture is covered by the log.
      const data = capture(this.log);
      const events = this.log.storedCount();
      const { bytes } = await writeSnapshot(this.directory, data, this.sync);
      const previous = this.#snapshotGlobal;
      this.#snapshotGlobal = data.lastGlobal;
      if (previous !== data.lastGlobal) {
        await unlink(join(this.directory, snapshotName(previous))).catch(() => {});
      }
      // Start a new segment: the one the snapshot covers is sealed, with its whole index.
      const active = this.#segments.at(-1);
      if (active && active.size > 0) {
        this.#rollWanted = true;
        // Until the roll ran: a writer loop that ended its last check just before may be running down.
        while (this.#rollWanted) await this.#startWriter();
        const failure = this.#rollFailure;
        this.#rollFailure = undefined;
        if (failure !== undefined) throw failure;
      }
      return { globalPosition: data.lastGlobal, events, bytes };
    };
    const next = (this.#snapshotting ?? Promise.resolve()).catch(() => {}).then(run);
    this.#snapshotting = next;
    return next;
  }

  /**
   * Deletes segments whose events all expired, after a snapshot that
   * remembers the streams' positions. One run at a time (the timer's and
   * an `applyRetention()` call may overlap).
   */
  protected override afterRetention(): Promise<void> {
    const run = (this.#retaining ?? Promise.resolve()).catch(() => {}).then(() => this.#deleteExpired());
    this.#retaining = run;
    return run;
  }

  /** The segments before the first event retention keeps (never the active one). */
  #expiredSegments(): Segment[] {
    return this.#segments.filter((_segment, i) => {
      const next = this.#segments[i + 1];
      return next !== undefined && next.first <= this.log.globalFirst;
    });
  }

  async #deleteExpired(): Promise<void> {
    if (this.#expiredSegments().length === 0) return;
    await this.snapshot();
    // Picked after the snapshot: it rolled the active segment, which may have expired whole too.
    for (const s of this.#expiredSegments()) {
      this.#files.forget(s);
      // The index side file first: an index without its segment would be ignored, a segment without its index is scanned.
      await unlink(join(this.directory, indexName(s.first))).catch(() => {});
      await unlink(join(this.directory, s.name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return; // gone already
        throw new CorruptionError(
          join(this.directory, s.name),
          undefined,
          `cannot delete expired segment: ${messageOf(error)}`,
        );
      });
      const at = this.#segments.indexOf(s);
      if (at >= 0) this.#segments.splice(at, 1);
    }
    if (this.#fsync) fsyncDir(this.directory);
  }

  protected override async release(): Promise<void> {
    while (this.#writing) await this.#writing;
    await this.#snapshotting?.catch(() => {});
    for (const w of this.#queue.splice(0)) w.reject(new ClosedError(`event store ${JSON.stringify(this.name)}`));
    // The rest of the active segment's index: the next open scans nothing (a store without the lock writes nothing).
    if (this.#lock.held) this.#indexActive();
    this.#files.closeAll();
    await this.#handle?.close();
    this.#handle = undefined;
    this.#lock.release();
  }
}

/**
 * What the segments of `directory` are: their names, and the last one's
 * inode, size and modification time. Equal before and after, no other
 * store appended, rolled, cut or deleted a segment in between.
 */
function segmentsState(directory: string): string {
  const names = readdirSync(directory)
    .filter((n) => n.startsWith("segment-"))
    .sort();
  const last = names.at(-1);
  const st = last === undefined ? undefined : statSync(join(directory, last), { throwIfNoEntry: false });
  return JSON.stringify([names, st?.ino, st?.size, st?.mtimeMs]);
}

/**
 * Fails the appends of a group whose write failed with `failure`; the ones
 * their plan refused (a version conflict, a limit) keep their own answer.
 */
function failPlanned(
  planned: readonly PlannedAppend[],
  group: readonly { resolve(p: PlannedAppend): void; reject(error: unknown): void }[],
  failure: unknown,
): void {
  for (const [i, p] of planned.entries()) {
    if (p.ok) group[i]?.reject(failure);
    else group[i]?.resolve(p);
  }
}
