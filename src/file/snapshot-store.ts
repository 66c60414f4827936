/**
 * `FileSnapshotStore`: the snapshot-store contract (statelog/repository) in
 * a directory. One JSON file per stream, `snapshots-<sha256 of the stream
 * id>.json`, holding the stream's kept snapshots; every save replaces it
 * atomically (temp file, fsync, rename, fsync of the directory: the file
 * backend's `writeFileAtomic`). A damaged file is a `CorruptionError` on
 * load (the repository then folds from the first event) and is replaced
 * by the next save.
 *
 * A state must be JSON data (`toJson` of core/validation): one that JSON
 * would change (a Date, a Map, `NaN`, …) is refused with an
 * `InvalidValueError` and nothing is written, so that a load through a
 * snapshot returns the state the fold gives. Properties whose value is
 * `undefined` are left out, as JSON does.
 *
 * Storage faults: a save whose temp file cannot be opened, written or
 * fsynced, or renamed in place (disk full, I/O error, read-only storage),
 * rejects with a `WriteFailedError` (operation, path, system error as
 * `cause`); the stream's file is unchanged and the temp file removed.
 * Each save writes a new temp file on a new descriptor: no descriptor
 * whose fsync failed is used again. A file that cannot be read (other
 * than damaged) fails the save the same way, rather than replacing the
 * snapshots it keeps. On read-only storage loads work and saves and
 * deletes fail with `EROFS`.
 *
 * Saves of one stream are serialised within the process; several
 * processes may share the directory (the last rename wins: each file is
 * always one whole save).
 *
 * Loads are served from memory once a stream's file was read: the store
 * keeps what it read of the `maxCachedStreams` most recently loaded
 * streams (each state as JSON text, parsed anew for every load, so a
 * caller can change what it got). Its own save or delete of a stream
 * drops that stream's entry, so the next load reads the file again. A
 * file another process replaced (or damaged) after this store read it is
 * read again only after such a save, a delete or a reopen: until then a
 * load may return an older snapshot, which is still the exact state at
 * its version (a repository folds the events after it).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { type CallOptions, CorruptionError, isCorruptionError, OpenState, throwIfAborted } from "../index.js";
import {
  type AggregateSnapshot,
  checkSnapshot,
  checkSnapshotLoad,
  checkSnapshotStoreOptions,
  retainSnapshots,
  SNAPSHOT_STORE_DEFAULTS,
  type SnapshotJson,
  type SnapshotLoadOptions,
  type SnapshotStore,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
  snapshotFromJson,
  snapshotStateJson,
} from "../repository/index.js";
import { NOT_OPENED, writeFailed } from "./errors.js";
import { removeStaleAtomicTemps, writeFileAtomic } from "./fs.js";
import { SyncPolicy } from "./options.js";

/** Defaults of {@link FileSnapshotStoreOptions}. */
export const FILE_SNAPSHOT_STORE_DEFAULTS = {
  ...SNAPSHOT_STORE_DEFAULTS,
  /** fsync each snapshot file (and the directory) before a save resolves. @default "fsync" */
  sync: SyncPolicy.Fsync,
  /** Streams whose snapshot file is kept in memory after a load. @default 1024 */
  maxCachedStreams: 1024,
} as const;

/** Options of {@link FileSnapshotStore.open}. */
export interface FileSnapshotStoreOptions extends SnapshotStoreOptions {
  /** Directory of the snapshot files (required); created with its parents when missing. */
  directory: string;
  /** `"fsync"`: a resolved save survives a crash of the machine; `"none"`: of the process only (see {@link SyncPolicy}). @default "fsync" */
  sync?: SyncPolicy;
  /**
   * How many streams' snapshot files the store keeps in memory after a
   * load (the most recently loaded ones), so that the next load of such a
   * stream reads no file; 0 reads the file on every load. An integer >= 0.
   * @default 1024
   */
  maxCachedStreams?: number;
}

/** A snapshot as cached: its state as JSON text, parsed for each load. */
interface CachedSnapshot {
  readonly version: number;
  readonly snapshotVersion: number;
  readonly createdAt: number;
  readonly stateJson: string;
}

interface SnapshotFile {
  readonly streamId: string;
  readonly snapshots: readonly SnapshotJson[];
}

/** The name of a stream's snapshot file: `snapshots-<sha256 hex>.json`. */
const isSnapshotFileName = (name: string): boolean => /^snapshots-[0-9a-f]{64}\.json$/.test(name);

/** Snapshots of aggregates in a directory. Open with {@link FileSnapshotStore.open}. */
export class FileSnapshotStore implements SnapshotStore {
  readonly capabilities: SnapshotStoreCapabilities = { durable: true };
  /** The directory. */
  readonly directory: string;
  readonly #sync: SyncPolicy;
  readonly #max: number;
  readonly #open = new OpenState("snapshot store");
  /** The last save of each stream in flight: saves of one stream run one after the other. */
  readonly #writes = new Map<string, Promise<unknown>>();
  /** What loads read of each stream's file, least recently loaded first. */
  readonly #cache = new Map<string, readonly CachedSnapshot[]>();
  readonly #maxCached: number;
  /** Bumped by each save or delete: a file read during which it changed is not cached. */
  #generation = 0;

  private constructor(directory: string, sync: SyncPolicy, max: number, maxCached: number) {
    this.directory = directory;
    this.#sync = sync;
    this.#max = max;
    this.#maxCached = maxCached;
  }

  /**
   * Opens (and creates when missing) the directory.
   * @throws ConfigurationError for an invalid, missing or unknown option (nothing is created)
   */
  static async open(options: FileSnapshotStoreOptions): Promise<FileSnapshotStore> {
    const { check, maxSnapshotsPerStream } = checkSnapshotStoreOptions<FileSnapshotStoreOptions>(
      "FileSnapshotStore",
      options,
      ["directory", "sync", "maxCachedStreams"],
      FILE_SNAPSHOT_STORE_DEFAULTS,
    );
    const directory = path.resolve(check.string("directory"));
    const sync = check.oneOf("sync", SyncPolicy);
    const maxCachedStreams = check.integer("maxCachedStreams", { min: 0 });
    await mkdir(directory, { recursive: true }).catch((error: unknown) => {
      throw writeFailed("mkdir", directory, error, undefined, NOT_OPENED);
    });
    // Saves cut off by a crash leave their temp files; those of writers that are gone are removed.
    await removeStaleAtomicTemps(directory, isSnapshotFileName).catch(() => 0); // best effort: saves work without it
    return new FileSnapshotStore(directory, sync, maxSnapshotsPerStream, maxCachedStreams);
  }

  async save(snapshot: AggregateSnapshot, options?: CallOptions): Promise<void> {
    this.#open.check();
    throwIfAborted(options?.signal);
    const s = checkSnapshot(snapshot);
    // Copied now: later changes of the caller's state cannot reach the file; checked as JSON data.
    const added = { ...s, state: snapshotStateJson(s) };
    this.#invalidate(s.streamId);
    await this.#serial(s.streamId, async () => {
      const existing = await this.#read(s.streamId).catch((error: unknown) => {
        // A damaged file is replaced; one that cannot be read (EIO, EMFILE…) fails the save: the snapshots it
        // keeps would be dropped otherwise.
        if (isCorruptionError(error)) return [];
        throw writeFailed("open", this.#file(s.streamId), error, "the stream's snapshot file is unchanged");
      });
      const kept = retainSnapshots(existing, added, this.#max);
      const file: SnapshotFile = {
        streamId: s.streamId,
        snapshots: kept.map((k) => ({
          version: k.version,
          snapshotVersion: k.snapshotVersion,
          createdAt: k.createdAt.toISOString(),
          state: k.state,
        })),
      };
      try {
        await writeFileAtomic(this.#file(s.streamId), Buffer.from(JSON.stringify(file)), this.#sync);
      } finally {
        this.#invalidate(s.streamId);
      }
    });
  }

  async load(streamId: string, options?: SnapshotLoadOptions): Promise<AggregateSnapshot | undefined> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, options);
    const cached = this.#cache.get(streamId);
    if (cached !== undefined) {
      // Most recently loaded last.
      this.#cache.delete(streamId);
      this.#cache.set(streamId, cached);
      return this.#pick(streamId, cached, options);
    }
    const generation = this.#generation;
    const read = await this.#read(streamId);
    this.#open.check();
    const entries = read.map(
      (r): CachedSnapshot => ({
        version: r.version,
        snapshotVersion: r.snapshotVersion,
        createdAt: r.createdAt.getTime(),
        stateJson: JSON.stringify(r.state),
      }),
    );
    if (this.#maxCached > 0 && this.#generation === generation && !this.#writes.has(streamId)) {
      this.#cache.set(streamId, entries);
      if (this.#cache.size > this.#maxCached) this.#cache.delete(this.#cache.keys().next().value as string);
    }
    return this.#pick(streamId, entries, options);
  }

  async delete(streamId: string, options?: CallOptions): Promise<boolean> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, undefined);
    this.#invalidate(streamId);
    return this.#serial(streamId, () =>
      unlink(this.#file(streamId))
        .then(
          () => true,
          (error: NodeJS.ErrnoException) => {
            if (error.code === "ENOENT") return false;
            throw writeFailed("unlink", this.#file(streamId), error);
          },
        )
        .finally(() => this.#invalidate(streamId)),
    );
  }

  /** Waits for saves in flight; later calls fail with a `ClosedError`. Idempotent. */
  async close(): Promise<void> {
    if (!this.#open.close()) return;
    this.#cache.clear();
    await Promise.allSettled([...this.#writes.values()]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Forgets what was read of `streamId`'s file, and makes reads already started not cache it. */
  #invalidate(streamId: string): void {
    this.#cache.delete(streamId);
    this.#generation++;
  }

  /** The snapshot a load returns, with a state of its own. */
  #pick(
    streamId: string,
    entries: readonly CachedSnapshot[],
    options: SnapshotLoadOptions | undefined,
  ): AggregateSnapshot | undefined {
    let best: CachedSnapshot | undefined;
    const max = options?.maxVersion;
    const wanted = options?.snapshotVersion;
    for (const e of entries) {
      if (max !== undefined && e.version > max) continue;
      if (wanted !== undefined && e.snapshotVersion !== wanted) continue;
      if (best === undefined || e.version > best.version) best = e;
    }
    if (best === undefined) return undefined;
    return {
      streamId,
      version: best.version,
      snapshotVersion: best.snapshotVersion,
      state: JSON.parse(best.stateJson) as unknown,
      createdAt: new Date(best.createdAt),
    };
  }

  #file(streamId: string): string {
    const hash = createHash("sha256").update(streamId, "utf8").digest("hex");
    return path.join(this.directory, `snapshots-${hash}.json`);
  }

  #serial<T>(streamId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#writes.get(streamId) ?? Promise.resolve();
    const next = previous.then(task, task);
    const settled = next.catch(() => undefined);
    this.#writes.set(streamId, settled);
    void settled.then(() => {
      if (this.#writes.get(streamId) === settled) this.#writes.delete(streamId);
    });
    return next;
  }

  /** The snapshots stored for `streamId` (`[]` without a file). @throws CorruptionError for a file that cannot be read */
  async #read(streamId: string): Promise<AggregateSnapshot[]> {
    const file = this.#file(streamId);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    let parsed: SnapshotFile;
    try {
      parsed = JSON.parse(text) as SnapshotFile;
    } catch (error) {
      throw new CorruptionError(file, undefined, `snapshot file is not JSON: ${String(error)}`);
    }
    if (parsed?.streamId !== streamId || !Array.isArray(parsed.snapshots)) {
      throw new CorruptionError(
        file,
        undefined,
        `snapshot file does not hold the snapshots of ${JSON.stringify(streamId)}`,
      );
    }
    return parsed.snapshots.map((s) => snapshotFromJson(s, streamId, file));
  }
}
