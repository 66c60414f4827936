/**
 * `FileEventStore`: the event store, durable in a directory. One segmented
 * append-only log holds every stream's events in global order; appends are
 * written and fsynced before they resolve, concurrent appends share one
 * write and one fsync (group commit). An append is all of its events or
 * none, after a crash too: its first line announces how many lines it has
 * (`./format.ts`), and a reopen drops a last append whose lines did not all
 * reach the disk. Snapshots of the index let a reopen skip the log they
 * cover. Retention deletes whole segments.
 */

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type AppendRequest,
  BaseEventStore,
  type EventStoreCapabilities,
  type PlannedAppend,
  type PreparedEvent,
  type RecordedEvent,
  type SnapshotInfo,
} from "../../events/index.js";
import { ClosedError, CorruptionError, messageOf, UnavailableError } from "../../index.js";
import { TEMP_SUFFIX } from "../encoding.js";
import { LockedError, writeFailed } from "../errors.js";
import { fsyncDir } from "../fs.js";
import { flockTry } from "../lock.js";
import { SyncPolicy } from "../options.js";
import {
  decodeLine,
  encodeLine,
  globalOf,
  numberIn,
  SEGMENT_PREFIX,
  SEGMENT_SUFFIX,
  SNAPSHOT_PREFIX,
  SNAPSHOT_SUFFIX,
  segmentName,
  snapshotName,
} from "./format.js";
import { checkFileEventStoreOptions, FILE_EVENT_STORE_DEFAULTS, type FileEventStoreOptions } from "./options.js";
import { capture, decodeSnapshot, type SnapshotData, snapshotRecords, writeSnapshot } from "./snapshot.js";

interface Segment {
  readonly name: string;
  readonly first: number;
  size: number;
}

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
  /** `sync === "fsync"`. */
  readonly #fsync: boolean;
  readonly #segmentBytes: number;
  readonly #segments: Segment[] = [];
  #handle: FileHandle | undefined;
  #lockHandle: FileHandle | undefined;
  #queue: Waiting[] = [];
  #rollWanted = false;
  #writing: Promise<void> | undefined;
  #snapshotting: Promise<SnapshotInfo> | undefined;
  /**
   * Set when a failed write left lines on disk that could not be cut off:
   * every later append fails with it (a reopen drops the partial batch).
   */
  #damagedTail: Error | undefined;
  /** Global position covered by the newest snapshot on disk. */
  #snapshotGlobal = 0;

  private constructor(options: FileEventStoreOptions) {
    const checked = checkFileEventStoreOptions(options);
    super(options, FILE_EVENT_STORE_DEFAULTS.name, "FileEventStore");
    this.directory = resolve(checked.directory);
    this.sync = checked.sync;
    this.#fsync = checked.sync === SyncPolicy.Fsync;
    this.#segmentBytes = checked.segmentBytes;
  }

  /**
   * Opens (or creates) the store in `options.directory`: loads the newest
   * valid snapshot, reads the log after it, drops (and cuts from the file)
   * the last append when a crash interrupted its write (a torn line, or
   * fewer lines than its first line announces), and applies retention.
   * @throws ConfigurationError (a bad option; nothing on disk is touched) | LockedError | CorruptionError
   */
  static async open(options: FileEventStoreOptions): Promise<FileEventStore> {
    const store = new FileEventStore(options);
    try {
      await store.#open();
    } catch (error) {
      await store.#lockHandle?.close().catch(() => {});
      await store.#handle?.close().catch(() => {});
      throw error;
    }
    store.startTimers(true);
    return store;
  }

  async #open(): Promise<void> {
    const dir = this.directory;
    await mkdir(dir, { recursive: true }).catch((error: unknown) => {
      throw writeFailed("mkdir", dir, error);
    });
    this.#lockHandle = await openLock(join(dir, "LOCK"));
    if (!flockTry(this.#lockHandle.fd, "ex")) throw new LockedError(dir);
    const names = await readdir(dir);
    // Temp files of snapshots a crash interrupted (this store holds the lock: nobody else writes any).
    for (const n of names) if (n.endsWith(TEMP_SUFFIX)) await unlink(join(dir, n)).catch(() => {});
    const snapshots = names
      .map((n) => numberIn(n, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX))
      .filter((g): g is number => g !== undefined)
      .sort((a, b) => b - a);
    let snap: SnapshotData | undefined;
    for (const g of snapshots) {
      const file = join(dir, snapshotName(g));
      try {
        snap = decodeSnapshot(file, await readFile(file));
        break;
      } catch {
        // A damaged snapshot is skipped: an older one, or the log, has the data.
      }
    }
    if (snap) this.#restore(snap);
    const segs = names
      .map((n) => ({ name: n, first: numberIn(n, SEGMENT_PREFIX, SEGMENT_SUFFIX) }))
      .filter((s): s is { name: string; first: number } => s.first !== undefined)
      .sort((a, b) => a.first - b.first);
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i] as { name: string; first: number };
      const next = segs[i + 1];
      const isLast = next === undefined;
      const segment: Segment = { name: seg.name, first: seg.first, size: 0 };
      this.#segments.push(segment);
      if (!isLast && next.first - 1 <= this.log.lastGlobal) {
        segment.size = (await stat(join(dir, seg.name))).size; // covered by the snapshot: not read
        continue;
      }
      segment.size = await this.#replay(join(dir, seg.name), isLast);
    }
    if (this.retentionDurationMs > 0) this.log.expire(this.clock().getTime() - this.retentionDurationMs);
    await this.#openActive();
  }

  #restore(snap: SnapshotData): void {
    this.log.globalFirst = snap.globalFirst;
    for (const [id, first, last] of snap.streams) this.log.restoreStream(id, first, last);
    const records: RecordedEvent[] = [];
    const sizes: number[] = [];
    for (const { record, size } of snapshotRecords(snap)) {
      records.push(record);
      sizes.push(size);
    }
    this.log.commit(records, sizes);
    this.log.lastGlobal = snap.lastGlobal;
    this.log.globalFirst = records.length === 0 ? snap.lastGlobal + 1 : snap.globalFirst;
    this.#snapshotGlobal = snap.lastGlobal;
  }

  /**
   * Reads one segment into the index; returns its valid size in bytes. The
   * last segment may end in the batch a crash interrupted (a torn line, or
   * fewer lines than its first one announces): that batch is dropped and
   * cut from the file, so that later appends follow a whole batch.
   */
  async #replay(file: string, isLast: boolean): Promise<number> {
    const buf = await readFile(file);
    const records: RecordedEvent[] = [];
    const sizes: number[] = [];
    /** Lines still expected in the open batch, which starts at `good` on line `batchLine`. */
    let missing = 0;
    let batchLine = 0;
    let batchLength = 0;
    let pos = 0;
    let line = 0;
    let good = 0;
    while (pos < buf.length) {
      line++;
      const nl = buf.indexOf(10, pos);
      const end = nl < 0 ? buf.length : nl;
      const text = buf.toString("utf8", pos, end);
      const g = globalOf(text);
      if (nl >= 0 && g <= this.log.lastGlobal && records.length === 0) {
        pos = nl + 1; // covered by the snapshot (which ends where a batch ends)
        good = pos;
        continue;
      }
      const decoded = nl < 0 ? undefined : decodeLine(text);
      if (!decoded) {
        if (isLast && (nl < 0 || buf.indexOf(10, end + 1) < 0)) break; // a crash tore the last line: drop its batch
        throw new CorruptionError(
          file,
          line,
          "damaged event line (checksum or JSON); restore from a backup or remove the line",
        );
      }
      if (missing > 0 && decoded.batch > 1) {
        throw new CorruptionError(
          file,
          line,
          `a batch of ${decoded.batch} events starts inside the batch of ${batchLength} events of line ${batchLine}`,
        );
      }
      if (missing === 0) {
        missing = decoded.batch;
        batchLength = decoded.batch;
        batchLine = line;
      }
      const r = decoded.record;
      const expected = (records.at(-1)?.globalPosition ?? this.log.lastGlobal) + 1;
      if (r.globalPosition !== expected && !(this.log.lastGlobal === 0 && records.length === 0)) {
        throw new CorruptionError(file, line, `global position ${r.globalPosition}, expected ${expected}`);
      }
      records.push(r);
      sizes.push(decoded.size);
      pos = nl + 1;
      if (--missing === 0) good = pos;
    }
    if (missing > 0) {
      // The batch that starts at `good` has fewer lines than announced.
      if (!isLast) {
        throw new CorruptionError(
          file,
          batchLine,
          `the batch of ${batchLength} events of this line ends after ${batchLength - missing} lines`,
        );
      }
      const whole = records.length - (batchLength - missing);
      records.length = whole;
      sizes.length = whole;
    }
    if (records.length > 0) {
      if (this.log.lastGlobal === 0 && this.log.global.length === 0) {
        this.log.globalFirst = (records[0] as RecordedEvent).globalPosition;
      }
      const last = new Map<string, number>();
      for (const r of records) {
        const prev = last.get(r.streamId) ?? this.log.streams.get(r.streamId)?.last;
        if (prev === undefined) {
          // First sight of a stream whose older events retention deleted: its positions go on from here.
          if (r.position > 1) this.log.restoreStream(r.streamId, r.position, r.position - 1);
        } else if (r.position !== prev + 1) {
          throw new CorruptionError(
            file,
            undefined,
            `stream ${JSON.stringify(r.streamId)} jumps from ${prev} to ${r.position}`,
          );
        }
        last.set(r.streamId, r.position);
      }
      this.log.commit(records, sizes);
    }
    if (good < buf.length) {
      const fh = await open(file, "r+");
      try {
        await fh.truncate(good);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    return good;
  }

  async #openActive(): Promise<void> {
    let active = this.#segments.at(-1);
    if (!active) {
      active = { name: segmentName(this.log.lastGlobal + 1), first: this.log.lastGlobal + 1, size: 0 };
      this.#segments.push(active);
    }
    try {
      this.#handle = await open(join(this.directory, active.name), "a");
    } catch (error) {
      // Read-only storage: the store opens for reading; each append fails with a WriteFailedError (it retries the open).
      if ((error as NodeJS.ErrnoException).code === "EROFS") return;
      throw error;
    }
    if (this.#fsync) fsyncDir(this.directory);
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
    const handle = await open(file, "r+");
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

  async #roll(): Promise<void> {
    const first = this.log.lastGlobal + 1;
    const segment: Segment = { name: segmentName(first), first, size: 0 };
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
    await this.#handle?.close();
    this.#handle = handle;
    this.#segments.push(segment);
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
        if (this.#queue.length > 0 || this.#rollWanted) void this.#startWriter();
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
        if ((this.#segments.at(-1) as Segment).size > 0) await this.#roll();
        continue;
      }
      const group = this.#queue.splice(0);
      const planned = this.log.plan(
        group.map((w) => w.request),
        this.limits,
      );
      const lines: string[] = [];
      for (const p of planned) {
        if (!p.ok) continue;
        p.records.forEach((r, i) => {
          const e = p.request.events[i] as PreparedEvent;
          lines.push(encodeLine(r, e.json, e.metaJson, i === 0 ? p.records.length : undefined));
        });
      }
      // The whole group goes to the active segment (a roll comes only between groups): no append spans two segments.
      const active = this.#segments.at(-1) as Segment;
      if (lines.length > 0) {
        if (this.#damagedTail !== undefined) {
          failPlanned(planned, group, this.#damagedTail);
          continue;
        }
        const buf = Buffer.from(lines.join(""), "utf8");
        let operation: "open" | "write" | "fsync" = "open";
        try {
          // A failed write closed the handle: open the segment anew (see #reopenActive).
          const handle = this.#handle ?? (await this.#reopenActive(active));
          operation = "write";
          for (let done = 0; done < buf.length; ) {
            const { bytesWritten } = await handle.write(buf, done, buf.length - done);
            if (bytesWritten === 0) throw new UnavailableError(`cannot write to ${active.name}: no byte written`);
            done += bytesWritten;
          }
          operation = "fsync";
          if (this.#fsync) await handle.datasync();
          active.size += buf.length;
        } catch (error) {
          const failure = writeFailed(operation, join(this.directory, active.name), error);
          await this.#afterFailedWrite(active);
          failPlanned(planned, group, failure);
          continue;
        }
      }
      planned.forEach((p, i) => {
        if (p.ok) this.log.commit(p.records, p.sizes);
        group[i]?.resolve(p);
      });
      if (active.size >= this.#segmentBytes) {
        await this.#roll().catch(() => {}); // stays on the current segment; retried after the next write
      }
    }
  }

  protected takeSnapshot(): Promise<SnapshotInfo> {
    const run = async (): Promise<SnapshotInfo> => {
      // Committed events are on disk already (a group is committed after its fsync): the capture is covered by the log.
      const data = capture(this.log);
      const { bytes } = await writeSnapshot(this.directory, data, this.sync);
      const previous = this.#snapshotGlobal;
      this.#snapshotGlobal = data.lastGlobal;
      if (previous !== data.lastGlobal) {
        await unlink(join(this.directory, snapshotName(previous))).catch(() => {});
      }
      // Start a new segment so that a reopen reads only what comes after the snapshot.
      const active = this.#segments.at(-1);
      if (active && active.size > 0) {
        this.#rollWanted = true;
        await this.#startWriter();
      }
      return { globalPosition: data.lastGlobal, events: data.ids.length, bytes };
    };
    const next = (this.#snapshotting ?? Promise.resolve()).catch(() => {}).then(run);
    this.#snapshotting = next;
    return next;
  }

  /** Deletes segments whose events all expired, after a snapshot that remembers the streams' positions. */
  protected override async afterRetention(): Promise<void> {
    const dead = this.#segments.filter((_segment, i) => {
      const next = this.#segments[i + 1];
      return next !== undefined && next.first <= this.log.globalFirst;
    });
    if (dead.length === 0) return;
    await this.snapshot();
    for (const s of dead) {
      await unlink(join(this.directory, s.name)).catch((error) => {
        throw new CorruptionError(
          join(this.directory, s.name),
          undefined,
          `cannot delete expired segment: ${messageOf(error)}`,
        );
      });
      this.#segments.splice(this.#segments.indexOf(s), 1);
    }
    if (this.#fsync) fsyncDir(this.directory);
  }

  protected override async release(): Promise<void> {
    while (this.#writing) await this.#writing;
    await this.#snapshotting?.catch(() => {});
    for (const w of this.#queue.splice(0)) w.reject(new ClosedError(`event store ${JSON.stringify(this.name)}`));
    await this.#handle?.close();
    this.#handle = undefined;
    await this.#lockHandle?.close();
    this.#lockHandle = undefined;
  }
}

/** The directory's `LOCK` file; on read-only storage opened for reading (`flock` needs no write access). */
async function openLock(file: string): Promise<FileHandle> {
  try {
    return await open(file, "a");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EROFS") throw error;
    return await open(file, "r");
  }
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
