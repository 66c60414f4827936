/**
 * The file store's change feed (docs/concepts.md, "Change feeds"). A
 * position is the byte offset just past a change's line in the namespace
 * file; the epoch names that file (`<dev>.<inode>`, `""` while there is no
 * file). The feed reads, under the shared lock, the size covering whole
 * saves, then the lines after its offset; it notices saves of other
 * processes by polling the file's size and identity (and this store's own
 * saves at once).
 *
 * A compaction (in any process) replaces the file: offsets are renumbered
 * and the epoch changes. A running feed scans the new file and delivers
 * the keys whose winning line differs from the last line it delivered for
 * them (compaction copies lines verbatim), so it neither misses nor
 * repeats a change; `from` a cursor of a replaced file is a
 * `FeedBehindError` (its numbering is gone: start from the current state).
 *
 * Past the current state a read delivers at most `batchSize` changes
 * (`FeedBatch.more` when it stopped there): lines after the feed's offset
 * are parsed a window at a time, and a replaced file's winners are kept as
 * offsets and read a piece at a time.
 */
import { closeSync, fstatSync, read, readSync, statSync } from "node:fs";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import {
  type Change,
  CorruptionError,
  type FeedBatch,
  FeedBehindError,
  type FeedChange,
  type FeedCursor,
  FeedEventType,
  type FeedNotifier,
  type FeedSource,
  type FeedStart,
} from "../index.js";
import { LineError, parseLineObject } from "./format.js";
import type { Snapshot } from "./log.js";
import { readText } from "./reader.js";

/** What the feed needs from its store. */
export interface FileFeedContext {
  readonly namespace: string;
  readonly file: string;
  /** Under the shared lock: a descriptor on the current file and its size (whole saves), or `undefined`. */
  snapshot(): Promise<Snapshot | undefined>;
  /** Bytes read at once. */
  readonly chunkBytes: number;
  /** Checks a change read (the store's entity type rule). */
  loaded(change: Change): Change;
  /** `onCorruption: "skip"`: a damaged line is left out and reported through {@link onSkipped}, else it throws. */
  readonly skip: boolean;
  /** Told the 1-based numbers of the damaged lines left out by a read. */
  onSkipped(lines: number[]): void;
  readonly notifier: FeedNotifier;
  readonly pollIntervalMs: number;
  /** The most changes a read after the current state delivers (`WatchOptions.batchSize`). */
  readonly batchSize: number;
}

/**
 * Bytes of the file a bounded read parses at a time, at most (a longer
 * line: the window grows to hold it); less for a small `batchSize` (about
 * 512 bytes per change, at least {@link MIN_WINDOW_BYTES}), whose pieces
 * would otherwise each read a whole window for a few lines.
 */
const WINDOW_BYTES = 1024 * 1024;
const MIN_WINDOW_BYTES = 64 * 1024;
/** Bytes read at once for the lines of a replaced file still to deliver (a longer line is read alone). */
const SPAN_BYTES = 256 * 1024;

/** Where a line of the file is: its key, fingerprint, offsets (end: just past its newline) and 1-based number. */
interface LineAt {
  readonly key: string;
  readonly print: string;
  readonly start: number;
  readonly end: number;
  readonly line: number;
}

/** A line read: where it is, and its change. */
interface Line extends LineAt {
  readonly change: Change;
}

const readAsync = promisify(read);

/** The file's identity: device, inode and (where the file system keeps it) birth time, since inode numbers are reused. */
const epochOf = (st: { dev: number; ino: number; birthtimeMs: number } | undefined): string =>
  st ? `${st.dev}.${st.ino}.${Math.round(st.birthtimeMs)}` : "";

/** The feed source of one namespace of a file store. */
export class FileFeedSource implements FeedSource {
  /** key → fingerprint of the last line delivered for it (the state the consumer holds). */
  #known = new Map<string, string>();
  #epoch: string | undefined;
  #offset = 0;
  /** The last line read: where it starts and its fingerprint (to tell a reused inode from the same file). */
  #last: { start: number; print: string } | undefined;
  /** Lines of the file before {@link #offset} (for line numbers). */
  #lineCount = 0;
  /** Lines of the file before the end of the last range {@link #lines} read. */
  #linesRead = 0;
  /** Byte offset just past the last line {@link #lines} read (its range's end unless it stopped early). */
  #linesEnd = 0;
  /** The file's raw size and modification time at the last read (a torn last line is part of the size). */
  #seen: { readonly size: number; readonly mtimeMs: number } | undefined;
  /**
   * After the file was replaced: the latest lines of the keys whose change
   * the consumer does not hold, in file order, delivered `batchSize` at a
   * time from {@link #pendingAt} on (the feed stands at {@link #offset},
   * the end of the file it scanned, meanwhile).
   */
  #pending: LineAt[] = [];
  #pendingAt = 0;
  /** The cursor position the last read returned: where the consumer stands (for `FeedBehindError`). */
  #position = 0;
  /**
   * A feed resumed `from` a cursor takes the lines before it for what the
   * consumer holds. A cursor handed out while a replaced file was
   * delivered in pieces stands before later lines of keys whose older
   * lines (before the cursor) the consumer never got. The keys taken from
   * before the cursor that have lines after it, until one is delivered: if
   * the file is replaced again before the feed read that far, they are
   * delivered anew rather than trusted (a key without later lines is what
   * the consumer holds either way).
   */
  #inferred = new Set<string>();
  /** Damaged lines are not reported (a scan ahead of the delivery, which reports them). */
  #quiet = false;
  /** Whether the last read ended short of the file's end (`FeedBatch.more`). */
  #short = false;

  constructor(private readonly ctx: FileFeedContext) {}

  async read(cursor: FeedStart | FeedCursor | undefined, _signal: AbortSignal): Promise<FeedBatch> {
    const snap = await this.ctx.snapshot();
    try {
      const st = snap ? fstatSync(snap.fd) : undefined;
      const epoch = epochOf(st);
      const size = snap?.size ?? 0;
      let items: FeedChange[];
      this.#linesRead = 0;
      /** Where this read ends: `size`, or before it when it took `batchSize` changes. */
      let end = size;
      if (this.#epoch === undefined) {
        this.#last = undefined;
        if (cursor === undefined) items = await this.#initial(snap, epoch);
        else {
          items = await this.#resume(snap, epoch, cursor);
          end = this.#linesEnd;
        }
      } else if (snap && epoch === this.#epoch && this.#sameFile(snap)) {
        if (this.#pendingAt < this.#pending.length) {
          // The rest of a replaced file's changes first; the feed stays at the end of the file it scanned.
          ({ items, end } = await this.#pendingPiece(snap, epoch));
          this.#linesRead = this.#lineCount;
        } else {
          items = this.#items(await this.#linesUpTo(snap, this.#offset, size, this.#lineCount), epoch);
          end = this.#linesEnd;
        }
      } else {
        this.#last = undefined;
        await this.#replaced(snap);
        ({ items, end } = await this.#pendingPiece(snap, epoch));
      }
      this.#epoch = epoch;
      if (this.#pending.length === 0) this.#offset = end;
      this.#lineCount = this.#linesRead;
      // As the lock saw the file (its size is `size` plus a torn tail): a line appended since changes them.
      this.#seen = snap && { size: snap.rawSize, mtimeMs: snap.mtimeMs };
      this.#position = end;
      this.#short = end < size;
      if (!this.#short) this.#inferred.clear(); // the file read to its end: what it held before the cursor stands
      return { items, cursor: { position: end, epoch }, head: size, more: end < size };
    } finally {
      if (snap) closeSync(snap.fd);
    }
  }

  async wait(cursor: FeedCursor, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const st = statSync(this.ctx.file, { throwIfNoEntry: false });
      if (epochOf(st) !== cursor.epoch) return;
      if (st !== undefined && st.size !== cursor.position) {
        // A size past the cursor that the last read saw too is a torn last line (a writer died mid-write): not
        // news. Returning at once for it would read again and again, never yielding to the event loop.
        const seen = this.#seen;
        if (seen === undefined || st.size !== seen.size || st.mtimeMs !== seen.mtimeMs) return;
      }
      await this.ctx.notifier.wait(this.ctx.namespace, signal, this.ctx.pollIntervalMs);
    }
  }

  /** Whether `snap` still holds, up to the feed's offset, the lines the feed read (not a reused inode). */
  #sameFile(snap: Snapshot): boolean {
    if (snap.size < this.#offset) return false;
    const last = this.#last;
    if (!last) return this.#offset === 0;
    const buf = Buffer.alloc(this.#offset - last.start);
    if (readSync(snap.fd, buf, 0, buf.length, last.start) !== buf.length) return false;
    const end = buf.length > 1 && buf[buf.length - 2] === 13 ? buf.length - 2 : buf.length - 1;
    const bytes = buf.subarray(0, end);
    return last.print.slice(1) === `${bytes.length}:${crc32(bytes)}`;
  }

  /** The current state: the latest line per key, in file order. */
  async #initial(snap: Snapshot | undefined, epoch: string): Promise<FeedChange[]> {
    if (!snap) return [];
    return this.#winners(await this.#lines(snap, 0, snap.size, 0), epoch, undefined);
  }

  /** Continuing after `cursor`: what it held is rebuilt from the lines before it; the lines after it are delivered. */
  async #resume(snap: Snapshot | undefined, epoch: string, cursor: FeedStart | FeedCursor): Promise<FeedChange[]> {
    const { position } = cursor;
    if (cursor.epoch !== undefined && cursor.epoch !== epoch && !(cursor.epoch === "" && position === 0)) {
      this.#behind(position, "the namespace file was replaced (compacted) since: its positions were renumbered");
    }
    const size = snap?.size ?? 0;
    if (position > size) this.#behind(position, `the namespace file holds ${size} bytes`);
    this.#linesEnd = position;
    if (!snap) return [];
    // What the consumer holds: the fingerprint of each key's last line before the cursor, a window at a time.
    let lastEnd = 0;
    await this.#windows(snap, 0, position, 0, Number.POSITIVE_INFINITY, (lines) => {
      for (const line of lines) this.#known.set(line.key, line.print);
      lastEnd = lines.at(-1)?.end ?? lastEnd;
    });
    if (lastEnd !== position) this.#behind(position, "it is not the end of a line of the file");
    const before = this.#linesRead;
    // The keys known from before the cursor that have lines after it (see #inferred).
    this.#quiet = true;
    try {
      await this.#windows(snap, position, size, before, Number.POSITIVE_INFINITY, (lines) => {
        for (const line of lines) if (this.#known.has(line.key)) this.#inferred.add(line.key);
      });
    } finally {
      this.#quiet = false;
    }
    return this.#items(await this.#linesUpTo(snap, position, size, before), epoch);
  }

  /**
   * The file was replaced (compaction), created or removed: finds, a
   * window at a time, the latest line of each key, and makes those whose
   * fingerprint differs from what the consumer holds {@link #pending};
   * sets {@link #offset} to the end of the file.
   */
  async #replaced(snap: Snapshot | undefined): Promise<void> {
    const latest = new Map<string, LineAt>();
    if (snap) {
      await this.#windows(snap, 0, snap.size, 0, Number.POSITIVE_INFINITY, (lines) => {
        for (const { key, print, start, end, line } of lines) {
          latest.delete(key); // re-inserted last: the map keeps the file order of each key's latest line
          latest.set(key, { key, print, start, end, line });
        }
      });
    }
    for (const [key, print] of this.#known) {
      // A key gone from the new file must have ended as a tombstone the consumer already has.
      if (!latest.has(key) && !print.startsWith("u")) {
        this.#behind(this.#position, "the namespace file was replaced and a change of an entity it held is gone");
      }
    }
    // What the consumer holds: the same lines, and for the keys still to deliver what it held before. A key known
    // only from a resumed feed's lines before its cursor may have changed in the part of the old file not read.
    const previous = this.#known;
    if (this.#short) for (const key of this.#inferred) previous.delete(key);
    this.#inferred.clear();
    const known = new Map<string, string>();
    const pending: LineAt[] = [];
    for (const at of latest.values()) {
      const held = previous.get(at.key);
      if (held === at.print) known.set(at.key, held);
      else {
        pending.push(at);
        if (held !== undefined) known.set(at.key, held);
      }
    }
    this.#known = known;
    this.#pending = pending;
    this.#pendingAt = 0;
    this.#offset = snap?.size ?? 0;
  }

  /**
   * The next `batchSize` {@link #pending} changes, read from their lines
   * (lines close to each other in one read, {@link SPAN_BYTES} at most);
   * `end` is the last one's position, or {@link #offset} once none is left.
   */
  async #pendingPiece(snap: Snapshot | undefined, epoch: string): Promise<{ items: FeedChange[]; end: number }> {
    const pending = this.#pending;
    const from = this.#pendingAt;
    const to = Math.min(pending.length, from + this.ctx.batchSize);
    const items: FeedChange[] = [];
    for (let i = from; i < to; ) {
      const first = pending[i] as LineAt;
      let j = i + 1;
      while (j < to && (pending[j] as LineAt).end - first.start <= SPAN_BYTES) j++;
      const span = Buffer.allocUnsafe((pending[j - 1] as LineAt).end - first.start);
      let filled = 0;
      while (filled < span.length) {
        const { bytesRead } = await readAsync(
          (snap as Snapshot).fd,
          span,
          filled,
          span.length - filled,
          first.start + filled,
        );
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      for (let k = i; k < j; k++) {
        const at = pending[k] as LineAt;
        const bytes = span.subarray(at.start - first.start, Math.min(filled, at.end - first.start));
        items.push(this.#item({ ...at, change: this.#lineAt(bytes, at) }, epoch));
        this.#known.set(at.key, at.print);
      }
      i = j;
    }
    this.#pendingAt = to;
    if (to < this.#pending.length) return { items, end: (this.#pending[to - 1] as LineAt).end };
    this.#pending = [];
    this.#pendingAt = 0;
    return { items, end: this.#offset };
  }

  /** The change of the line `at`, from its bytes `buf` (read when the file was scanned: it must be unchanged). */
  #lineAt(buf: Buffer, at: LineAt): Change {
    const length = buf.length;
    const stop = length > 1 && buf[length - 2] === 13 ? length - 2 : length - 1;
    const bytes = buf.subarray(0, Math.max(0, stop));
    if (length !== at.end - at.start || at.print.slice(1) !== `${bytes.length}:${crc32(bytes)}`) {
      throw new CorruptionError(
        this.ctx.file,
        at.line,
        `byte ${at.start}: the line changed while the feed read the file`,
      );
    }
    return parseLineObject(bytes.toString("utf8"), this.ctx.namespace).change;
  }

  /** The latest line per key, in file order, left out when `skip` already has it. */
  #winners(lines: readonly Line[], epoch: string, skip: ReadonlyMap<string, string> | undefined): FeedChange[] {
    const last = new Map<string, number>();
    lines.forEach((line, i) => {
      last.set(line.key, i);
    });
    const items: FeedChange[] = [];
    lines.forEach((line, i) => {
      if (last.get(line.key) !== i) return;
      this.#known.set(line.key, line.print);
      if (skip?.get(line.key) === line.print) return;
      items.push(this.#item(line, epoch));
    });
    return items;
  }

  #items(lines: readonly Line[], epoch: string): FeedChange[] {
    return lines.map((line) => {
      this.#known.set(line.key, line.print);
      this.#inferred.delete(line.key);
      return this.#item(line, epoch);
    });
  }

  #item(line: Line, epoch: string): FeedChange {
    return { type: FeedEventType.Change, change: this.ctx.loaded(line.change), position: line.end, epoch };
  }

  /** Up to `batchSize` lines of `snap` from byte `from` (a line boundary) towards `to`, a window at a time. */
  async #linesUpTo(snap: Snapshot, from: number, to: number, firstLine: number): Promise<Line[]> {
    const out: Line[] = [];
    await this.#windows(snap, from, to, firstLine, this.ctx.batchSize, (lines) => {
      for (const line of lines) out.push(line);
    });
    return out;
  }

  /**
   * Reads the lines of `snap` from byte `from` (a line boundary) towards
   * `to`, up to {@link WINDOW_BYTES} at a time (more for a longer line), handing
   * each window's lines to `onLines`, until `max` changes were read or
   * `to` is reached; sets {@link #linesEnd} and {@link #linesRead} to
   * where it stopped.
   */
  async #windows(
    snap: Snapshot,
    from: number,
    to: number,
    firstLine: number,
    max: number,
    onLines: (lines: Line[]) => void,
  ): Promise<void> {
    let pos = from;
    let line = firstLine;
    let read = 0;
    let window = Math.min(WINDOW_BYTES, Math.max(MIN_WINDOW_BYTES, max * 512));
    while (pos < to && read < max) {
      const lines = await this.#lines(snap, pos, Math.min(to, pos + window), line, max - read);
      if (this.#linesEnd === pos) {
        // No whole line in the window: one longer than it (or the file ended early, under the lock: never).
        if (pos + window >= to) break;
        window *= 2;
        continue;
      }
      onLines(lines);
      read += lines.length;
      pos = this.#linesEnd;
      line = this.#linesRead;
    }
    this.#linesEnd = pos;
    this.#linesRead = line;
  }

  /**
   * The lines of `snap` from byte `from` to `to` (`from` a line boundary;
   * a line `to` cuts is left out), the first of them line `firstLine` + 1
   * of the file (0-based `firstLine`), at most `max` changes; sets
   * {@link #linesEnd} just past the last line taken and {@link #linesRead}
   * to the lines before it. A damaged line is a `CorruptionError` naming
   * its number, or with `onCorruption: "skip"` left out and reported.
   */
  async #lines(
    snap: Snapshot,
    from: number,
    to: number,
    firstLine: number,
    max = Number.POSITIVE_INFINITY,
  ): Promise<Line[]> {
    this.#linesRead = firstLine;
    this.#linesEnd = from;
    if (to <= from) return [];
    const text = await readText(snap.fd, to, this.ctx.chunkBytes, from);
    const out: Line[] = [];
    const skipped: number[] = [];
    let offset = from;
    let line = firstLine;
    let taken = from;
    chunks: for (const chunk of text.chunks) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) break;
        if (out.length === max) break chunks;
        line++;
        const end = nl > start && chunk[nl - 1] === 13 ? nl - 1 : nl;
        if (end > start) {
          const bytes = chunk.subarray(start, end);
          let parsed: { change: Change; key: string } | undefined;
          try {
            parsed = parseLineObject(bytes.toString("utf8"), this.ctx.namespace);
          } catch (error) {
            if (!(error instanceof LineError)) throw error;
            if (!this.ctx.skip)
              throw new CorruptionError(this.ctx.file, line, `byte ${offset + start}: ${error.message}`);
            skipped.push(line);
          }
          // The fingerprint's first letter: an unset, a set, or ("x") a damaged line left out.
          const kind = parsed === undefined ? "x" : parsed.change.changeType === "unset" ? "u" : "s";
          const print = `${kind}${bytes.length}:${crc32(bytes)}`;
          if (parsed) out.push({ ...parsed, print, start: offset + start, end: offset + nl + 1, line });
          this.#last = { start: offset + start, print };
        }
        start = nl + 1;
        taken = offset + start;
      }
      offset += chunk.length;
    }
    this.#linesRead = line;
    this.#linesEnd = taken;
    if (skipped.length > 0 && !this.#quiet) this.ctx.onSkipped(skipped);
    return out;
  }

  #behind(position: number, reason: string): never {
    throw new FeedBehindError(this.ctx.namespace, position, reason);
  }
}
