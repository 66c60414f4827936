/**
 * `FileStore`: the embedded, durable store: one JSON Lines file per
 * namespace in a directory (docs/file-store.md).
 */
import { closeSync, type Dirent, mkdirSync, realpathSync, statSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import {
  BaseStore,
  type CallOptions,
  type Change,
  type ChangeFeed,
  type ChangeInput,
  ChangeType,
  ClosedError,
  type LoadOptions,
  PartialWriteError,
  type PreparedChange,
  type SaveOptions,
  type StoreCapabilities,
  throwIfAborted,
  validateNamespace,
  type WatchOptions,
} from "../index.js";
import { autoCompactionDue, type CompactOutcome, compactLog } from "./compaction.js";
import { encodeLinesInto, NameJsonCache } from "./encode.js";
import { DATA_SUFFIX, DIR_SUFFIX, namespaceFromPath, namespacePath } from "./encoding.js";
import { NOT_OPENED, writeFailed } from "./errors.js";
import { FileFeedSource } from "./feed.js";
import { linePrefix } from "./format.js";
import { readHint, writeHint } from "./hint.js";
import { hintOf, resolveInTwoPasses, resolveWithHint } from "./hinted-read.js";
import { KeySketch } from "./key-sketch.js";
import { type GroupEvents, NamespaceLog, type Snapshot } from "./log.js";
import { OpenLogs } from "./open-logs.js";
import { type FileStoreOptions, FsyncOn, type ResolvedOptions, resolveOptions, SyncPolicy } from "./options.js";
import { type Resolved, readAndResolve, type ScanContext } from "./reader.js";

/**
 * The key estimate of a sketch (key-sketch.ts) is counted this much high
 * (three standard errors), so that the scan it starts seldom finds the
 * file not worth compacting…
 */
const SKETCH_MARGIN = 1.1;
/**
 * …and is used only when it exceeds the keys the last scan counted by
 * this much (six standard errors): a file whose keys a scan counted is
 * compacted at exactly `ratio` lines per key.
 */
const SKETCH_USE_ABOVE = 1.2;

/** Counters of {@link FileStore.stats}. */
export interface FileStoreStats {
  /** Saves written (a save to several namespaces counts once per namespace). */
  readonly saves: number;
  /** Group writes: one `write(2)` each, holding one or more saves. */
  readonly groups: number;
  /** fsyncs of data files (0 with `sync: "none"`). */
  readonly fsyncs: number;
  /** Compactions that rewrote a file (manual and automatic). */
  readonly compactions: number;
  /** Compaction scans (manual and automatic, rewriting or not) that ran in a worker thread (see `compactionWorkerMinBytes`). */
  readonly workerScans: number;
  /** Compaction scans that ran on the main thread. */
  readonly mainThreadScans: number;
  /** Loads that read the winning lines a hint file named, instead of the whole file (see docs/file-store.md, "Hint files"). */
  readonly hintedLoads: number;
  /** Hint files written by loads. */
  readonly hintsWritten: number;
  /** Namespaces whose files are open now (see `maxOpenNamespaces`). */
  readonly openNamespaces: number;
  /** Times an idle namespace's files were closed to stay within `maxOpenNamespaces`. */
  readonly namespacesClosed: number;
}

/**
 * A durable Store in a directory: one JSONL file per namespace, appended
 * to on `save` (group commit: concurrent saves share one fsync), compacted
 * in memory on `load`, rewritten atomically by `compact` and automatically
 * when a file holds much more history than live state. Several processes
 * may use one directory: writers are serialised by `flock`, and a reader
 * sees every save that resolved before its `load` began and never part of
 * a save in progress (see docs/file-store.md, "Several processes").
 *
 * Entity types need no registration (`unknownEntityTypes: "accept"`, the
 * default); a registered type's schema checks its entities on save.
 *
 * @example
 * await using store = await FileStore.open({ directory: "./data" });
 * store.registerEntityType(Deployment);
 * await store.save(new ChangesBuilder("ws-1").set(Deployment, d).build());
 * const state = await store.load("ws-1", { liveOnly: true });
 */
export class FileStore extends BaseStore {
  readonly capabilities: StoreCapabilities = { compact: true, listNamespaces: true, durable: true, watch: true };
  /** The store's directory (absolute, symbolic links resolved). */
  readonly directory: string;
  /** When a save resolves. */
  readonly sync: SyncPolicy;
  /** Where each group write's fsync runs. */
  readonly fsyncOn: FsyncOn;
  readonly #options: ResolvedOptions;
  readonly #logs = new Map<string, NamespaceLog>();
  readonly #compactions = new Map<string, Promise<CompactOutcome>>();
  readonly #names = new NameJsonCache();
  readonly #open: OpenLogs;
  #compacted = 0;
  readonly #scans = { worker: 0, main: 0 };
  readonly #hints = { read: 0, written: 0 };
  /** Per namespace, the keys saved since its last scan (automatic compaction only; see key-sketch.ts). */
  readonly #sketches = new Map<string, KeySketch>();
  /** The stop flags of running automatic compactions: `close()` sets them (see {@link closeResources}). */
  readonly #autoStops = new Set<Int32Array>();

  /**
   * Checks the options, then creates the directory if missing.
   * @throws ConfigurationError for an invalid option
   */
  private constructor(options: FileStoreOptions) {
    super("file store", options, "FileStore");
    const resolved = resolveOptions(options);
    try {
      mkdirSync(resolved.directory, { recursive: true });
    } catch (error) {
      throw writeFailed("mkdir", resolved.directory, error, undefined, NOT_OPENED);
    }
    // The real path: two stores of one process on one directory share its locks.
    this.directory = realpathSync(path.resolve(resolved.directory));
    this.sync = resolved.sync ? SyncPolicy.Fsync : SyncPolicy.None;
    this.fsyncOn = resolved.fsyncOnEventLoop ? FsyncOn.EventLoop : FsyncOn.ThreadPool;
    this.#options = resolved;
    this.#open = new OpenLogs(resolved.maxOpenNamespaces, () => this.closed, resolved.onBackgroundError);
  }

  /**
   * Opens (and creates, if missing) a store in `options.directory`.
   * @throws ConfigurationError for an invalid option (nothing is created then)
   */
  static async open(options: FileStoreOptions): Promise<FileStore> {
    return new FileStore(options);
  }

  /** The data file of `namespace` (it may not exist yet). */
  fileOf(namespace: string): string {
    validateNamespace(namespace);
    return path.join(this.directory, ...namespacePath(namespace));
  }

  /**
   * Appends the changes to their namespaces' files (one append per
   * namespace: all of its changes or none) and resolves once they are
   * written and, with `sync: "fsync"`, fsynced.
   * @throws PartialWriteError (`targets: "changes"`) when the append of some namespace failed (a save of one namespace throws its append's error)
   */
  save(changes: readonly ChangeInput[], options?: SaveOptions): Promise<void> {
    try {
      const prepared = this.prepare(changes, options);
      if (prepared.length === 0) return Promise.resolve();
      const first = (prepared[0] as PreparedChange).namespace;
      let oneNamespace = true;
      for (let i = 1; i < prepared.length && oneNamespace; i++) {
        oneNamespace = (prepared[i] as PreparedChange).namespace === first;
      }
      if (this.#options.autoCompact) this.#sketch(prepared, first, oneNamespace);
      if (!oneNamespace) return this.#saveAcross(prepared);
      // Settled with its group (see NamespaceLog.append).
      const { integrity } = this.#options;
      return this.#log(first).append((sink) => encodeLinesInto(sink, prepared, this.#names, integrity));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A save of changes to several namespaces: one append per namespace, queued in call order. */
  async #saveAcross(prepared: readonly PreparedChange[]): Promise<void> {
    const namespaces = [...new Set(prepared.map((p) => p.namespace))];
    const { integrity } = this.#options;
    // Encoded and queued synchronously, so that call order is write order in every namespace.
    // A namespace whose lines fail to encode is not written; it is reported with the others below.
    const writes = namespaces.map((ns) => {
      try {
        return this.#log(ns).append((sink) => encodeLinesInto(sink, prepared, this.#names, integrity, ns));
      } catch (error) {
        return Promise.reject(error);
      }
    });
    const results = await Promise.allSettled(writes);
    const failedIn = new Map<string, unknown>();
    results.forEach((r, i) => {
      if (r.status === "rejected") failedIn.set(namespaces[i] as string, r.reason);
    });
    if (failedIn.size === 0) return;
    // Each namespace is one append: all of its changes are written, or none.
    const written: number[] = [];
    const failed: { index: number; error: unknown }[] = [];
    prepared.forEach((p, index) => {
      const error = failedIn.get(p.namespace);
      if (error === undefined) written.push(index);
      else failed.push({ index, error });
    });
    throw new PartialWriteError({ operation: "file store save", targets: "changes", written, failed });
  }

  /** Adds the keys of `prepared` to their namespaces' sketches. */
  #sketch(prepared: readonly PreparedChange[], first: string, oneNamespace: boolean): void {
    let sketch = this.#sketchOf(first);
    for (const p of prepared) {
      if (!oneNamespace) sketch = this.#sketchOf(p.namespace);
      sketch.add(p.entityType, p.entityId);
    }
  }

  #sketchOf(namespace: string): KeySketch {
    let sketch = this.#sketches.get(namespace);
    if (!sketch) {
      sketch = new KeySketch();
      this.#sketches.set(namespace, sketch);
    }
    return sketch;
  }

  /**
   * What the store does per group write of a namespace (not per save): the
   * log is in use from the group's first save until it settles; once its
   * lines are written, feeds wake and automatic compaction is considered.
   * These run before the group's saves resolve, and never throw.
   */
  readonly #groupEvents: GroupEvents = {
    started: (log) => this.#open.use(log),
    written: (log) => {
      try {
        this.feedNotifier.notify(log.namespace);
        this.#maybeCompact(log);
      } catch (error) {
        this.#options.onBackgroundError(error);
      }
    },
    settled: (log) => this.#open.unuse(log),
  };

  /**
   * A live feed of `namespace`, including saves of other processes (seen
   * within `pollIntervalMs`) and across compactions. A position is the
   * byte offset just past a change's line; the epoch names the file, and
   * a compaction replaces it (see docs/concepts.md, "Change feeds").
   */
  watch(namespace: string, options?: WatchOptions): ChangeFeed {
    return this.openFeed(namespace, options, (pollIntervalMs, batchSize) => {
      const log = this.#log(namespace);
      return new FileFeedSource({
        batchSize,
        namespace,
        file: log.file,
        chunkBytes: this.#options.internals.readChunkBytes,
        loaded: (change) => this.loaded(change),
        skip: this.#options.skip,
        onSkipped: (lines) => this.#reportSkipped(log, lines),
        notifier: this.feedNotifier,
        pollIntervalMs,
        snapshot: async () => {
          this.checkOpen();
          this.#open.use(log);
          try {
            return await log.withLock("sh", async () => log.openSnapshot());
          } finally {
            this.#open.unuse(log);
          }
        },
      });
    });
  }

  #log(namespace: string): NamespaceLog {
    let log = this.#logs.get(namespace);
    if (!log) {
      log = new NamespaceLog(
        namespace,
        this.directory,
        this.fileOf(namespace),
        this.#options.sync,
        this.#options.fsyncOnEventLoop,
        this.#groupEvents,
      );
      this.#logs.set(namespace, log);
    }
    return log;
  }

  #context(log: NamespaceLog): ScanContext {
    return {
      file: log.file,
      namespace: log.namespace,
      prefix: linePrefix(log.namespace),
      skip: this.#options.skip,
      chunkBytes: this.#options.internals.readChunkBytes,
    };
  }

  #reportSkipped(log: NamespaceLog, lines: number[]): void {
    if (lines.length > 0) this.#options.onSkippedLines?.({ namespace: log.namespace, file: log.file, lines });
  }

  /**
   * The latest change per key of `namespace`, tombstones included unless
   * `liveOnly`, in the order the winning lines were written. A torn last
   * line is left out; a damaged line elsewhere is a `CorruptionError`
   * (or skipped, see `onCorruption`). Other processes: the load sees every
   * save that resolved before it began (in any process), never a part of a
   * save in progress, and is not disturbed by a compaction running meanwhile.
   * Entities are returned as stored: schemas run on save, and again where
   * the changes are applied (the Manager's restore).
   * @throws CorruptionError | UnknownEntityTypeError (with `unknownEntityTypes: "reject"`)
   */
  async load(namespace: string, options?: LoadOptions): Promise<Change[]> {
    this.checkOpen(namespace, options);
    const log = this.#log(namespace);
    if (!statSync(log.file, { throwIfNoEntry: false })) return [];
    this.#open.use(log);
    try {
      return await this.#load(log, options);
    } finally {
      this.#open.unuse(log);
    }
  }

  async #load(log: NamespaceLog, options: LoadOptions | undefined): Promise<Change[]> {
    let linesAtSnapshot = 0;
    const snap = await log.withLock("sh", async () => {
      linesAtSnapshot = log.stats.lines;
      // The scan counts the keys saved so far.
      this.#sketches.get(log.namespace)?.clear();
      return log.openSnapshot();
    });
    if (!snap) return [];
    let resolved: Resolved;
    try {
      resolved = await this.#read(log, snap);
    } finally {
      closeSync(snap.fd);
    }
    throwIfAborted(options?.signal);
    this.#reportSkipped(log, resolved.skipped);
    log.scanned(resolved.scan.lines, resolved.decoded.length, log.stats.lines - linesAtSnapshot);
    this.#maybeCompact(log);
    // One pass, in place: the entity type check, and `liveOnly`.
    const changes = resolved.decoded;
    const liveOnly = options?.liveOnly === true;
    let kept = 0;
    for (const change of changes) {
      if (liveOnly && change.changeType === ChangeType.Unset) continue;
      changes[kept++] = this.loaded(change);
    }
    changes.length = kept;
    return changes;
  }

  /**
   * Reads the snapshot: from its hint when one holds (hint.ts), else in
   * full; then writes a new hint when this read went through many lines
   * in full and the file holds enough superseded lines for a hint to save
   * work (never after skipping damaged lines: such a load reports them).
   */
  async #read(log: NamespaceLog, snap: Snapshot): Promise<Resolved> {
    const ctx = this.#context(log);
    const hint = readHint(log.file, log.namespace, snap.fd, snap);
    const fromHint = hint && (await resolveWithHint(snap.fd, snap.size, hint, ctx, true));
    const resolved =
      fromHint ??
      (await resolveInTwoPasses(snap.fd, snap.size, ctx, true)) ??
      (await readAndResolve(snap.fd, snap.size, ctx, true));
    const { lines } = resolved.scan;
    const winners = resolved.decoded.length;
    if (fromHint) this.#hints.read++;
    const readInFull = fromHint && hint ? lines - hint.lines : lines;
    const minLines = this.#options.internals.hintMinLines;
    if (resolved.skipped.length === 0 && readInFull >= minLines && lines - winners >= Math.max(minLines, winners / 8)) {
      if (await writeHint(log.file, log.namespace, snap.fd, snap, hintOf(resolved, snap.size))) this.#hints.written++;
    }
    return resolved;
  }

  /**
   * Rewrites `namespace`'s file to its latest line per key (dropping
   * tombstones older than `tombstoneRetentionMs`), atomically; saves made
   * meanwhile, by this or another process, are kept. A missing namespace
   * is not an error.
   */
  async compact(namespace: string, options?: CallOptions): Promise<void> {
    this.checkOpen(namespace, options);
    const log = this.#log(namespace);
    if (!statSync(log.file, { throwIfNoEntry: false })) return;
    await this.#compact(log, false);
  }

  #compact(log: NamespaceLog, auto: boolean): Promise<CompactOutcome> {
    const { autoCompact, internals } = this.#options;
    this.#open.use(log);
    const previous = this.#compactions.get(log.namespace);
    const stop = auto ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    if (stop) this.#autoStops.add(stop);
    const run = (previous ?? Promise.resolve("missing" as CompactOutcome))
      .catch(() => "missing" as const)
      .then(() =>
        compactLog(log, {
          onSnapshot: () => this.#sketches.get(log.namespace)?.clear(),
          hintMinLines: internals.hintMinLines,
          stop,
          stopMinBytes: internals.abandonCompactionMinBytes,
          ctx: this.#context(log),
          tombstoneRetentionMs: this.#options.tombstoneRetentionMs,
          now: this.clock().getTime(),
          worth: auto ? autoCompact : undefined,
          onSkipped: (lines) => this.#reportSkipped(log, lines),
          workerMinBytes: this.#options.compactionWorkerMinBytes,
          onScan: (thread) => {
            this.#scans[thread]++;
          },
          workerUrl: internals.compactionWorkerUrl,
          crashAt: internals.crashAt,
        }),
      );
    this.#compactions.set(log.namespace, run);
    run.then(
      (outcome) => {
        if (outcome === "compacted") this.#compacted++;
      },
      () => undefined,
    );
    const forget = (): void => {
      if (stop) this.#autoStops.delete(stop);
      if (this.#compactions.get(log.namespace) === run) this.#compactions.delete(log.namespace);
      this.#open.unuse(log);
    };
    run.then(forget, forget);
    return run;
  }

  #maybeCompact(log: NamespaceLog): void {
    const auto = this.#options.autoCompact;
    if (!auto || this.closed || this.#compactions.has(log.namespace)) return;
    // Checked first: the sketch's estimate below reads all of its registers after each new key.
    if (log.stats.lines - log.stats.carried <= auto.minLines) return;
    // The keys saved since the last scan, estimated (see key-sketch.ts), when clearly more than it counted.
    const estimate = this.#sketches.get(log.namespace)?.estimate() ?? 0;
    const keys = estimate > log.stats.keys * SKETCH_USE_ABOVE ? Math.ceil(estimate * SKETCH_MARGIN) : log.stats.keys;
    if (!autoCompactionDue(log.stats, keys, auto)) return;
    this.#compact(log, true).catch((error: unknown) => {
      // Do not retry on every save: wait until the file has grown by `ratio` again.
      log.stats.keys = Math.max(log.stats.keys, Math.ceil(log.stats.lines / auto.ratio));
      if (!(error instanceof ClosedError)) this.#options.onBackgroundError(error);
    });
  }

  /**
   * What this store did since it was opened, over all namespaces:
   * `saves` (per namespace a save touched), `groups` (group writes: one
   * `write` each) and `fsyncs`; concurrent saves share groups and fsyncs.
   * `compactions` that rewrote a file, compaction scans by thread
   * (`workerScans`, `mainThreadScans`), the namespaces whose files are open
   * now (`openNamespaces`) and how often an idle one was closed to stay
   * within `maxOpenNamespaces` (`namespacesClosed`).
   */
  stats(): FileStoreStats {
    let open = 0;
    for (const log of this.#logs.values()) if (log.isOpen) open++;
    const out = {
      saves: 0,
      groups: 0,
      fsyncs: 0,
      compactions: this.#compacted,
      workerScans: this.#scans.worker,
      mainThreadScans: this.#scans.main,
      hintedLoads: this.#hints.read,
      hintsWritten: this.#hints.written,
      openNamespaces: open,
      namespacesClosed: this.#open.closed,
    };
    for (const log of this.#logs.values()) {
      out.saves += log.counters.saves;
      out.groups += log.counters.groups;
      out.fsyncs += log.counters.fsyncs;
    }
    return out;
  }

  /** Every namespace whose file holds data, decoded from the file names (files are not read). */
  async listNamespaces(options?: CallOptions): Promise<string[]> {
    this.checkOpen(undefined, options);
    const found: string[] = [];
    await this.#listDir(this.directory, [], found);
    return found.sort();
  }

  async #listDir(dir: string, parts: string[], found: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      // A directory that is gone (the store's own, removed under it) holds no namespace, as load finds none there.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    await Promise.all(
      entries.map(async (entry) => {
        if (entry.isDirectory() && entry.name.endsWith(DIR_SUFFIX)) {
          await this.#listDir(path.join(dir, entry.name), [...parts, entry.name], found);
        } else if (entry.isFile() && entry.name.endsWith(DATA_SUFFIX)) {
          const namespace = namespaceFromPath([...parts, entry.name]);
          if (namespace === undefined) return;
          const st = await stat(path.join(dir, entry.name)).catch(() => undefined);
          if (st && st.size > 0) found.push(namespace);
        }
      }),
    );
  }

  /**
   * Waits for queued saves, abandons automatic compactions of files of 16
   * MiB or more that have not reached their exclusive step (background
   * work that takes seconds on large files: the file stays as it is, and
   * a later store compacts it when it is worth it), waits for the other
   * compactions, then releases every file (the first `close()` calls it).
   */
  protected async closeResources(): Promise<void> {
    const logs = [...this.#logs.values()];
    await Promise.all(logs.map((log) => log.idle()));
    for (const stop of this.#autoStops) Atomics.store(stop, 0, 1);
    await Promise.allSettled([...this.#compactions.values()]);
    await Promise.all(logs.map((log) => log.close()));
  }
}
