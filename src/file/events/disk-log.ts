/**
 * `DiskEventLog`: the file event store's index. It is the {@link EventLog}
 * every read, subscription and retention of the base works from, but it
 * holds no event: per event only where its line is (byte offset and length
 * in its segment), its stream and its timestamp, in typed columns indexed by
 * global position; per stream the global positions of its stored events.
 * Events are read from the segments when asked for (`Segments.readLines`),
 * through a direct-mapped cache that also holds the events appended since
 * the store opened (live subscribers read those from memory), bounded by
 * the estimated size of its events (`cacheBytes`) and by its slots. Reads in
 * global order (`subscribeAll`, `readAll`: catch-ups that touch each event
 * once) keep their events in a smaller cache only, enough for subscribers
 * catching up side by side: each event kept in the large cache would live
 * long enough to be moved to the old generation of the heap, the
 * collector's most expensive work in a long catch-up.
 */
import { Deque, EVENT_OVERHEAD_BYTES, EventLog, type RecordedEvent, type StreamState } from "../../events/index.js";
import { EventCache } from "./cache.js";

/**
 * How the index reads events: `count` consecutive lines of one segment,
 * starting with global position `g`; `kept`: false for reads in global
 * order, whose events die young (`Segments.readLines`).
 */
export type LineReader = (g: number, offset: number, bytes: number, count: number, kept: boolean) => RecordedEvent[];

/** Slots of the cache (a power of two). */
const CACHE_EVENTS = 1 << 15;

/** Slots of the cache of events read in global order (a power of two): a few subscription buffers. */
const RECENT_EVENTS = 1 << 11;

/** The share of the cache's bytes (`cacheBytes`) the cache of events read in global order may hold: 1/16. */
const RECENT_SHARE = 16;

/** The stored events of one stream: their global positions; events are read from disk when asked for. */
class StreamEvents extends Deque<RecordedEvent> {
  #globals: number[] = [];
  #head = 0;
  constructor(readonly log: DiskEventLog) {
    super();
  }
  override get length(): number {
    return this.#globals.length - this.#head;
  }
  /** Global position of the `i`-th stored event. */
  globalAt(i: number): number | undefined {
    return this.#globals[this.#head + i];
  }
  override at(i: number): RecordedEvent | undefined {
    const g = this.globalAt(i);
    return g === undefined ? undefined : this.log.eventsAt([g])[0];
  }
  override push(item: RecordedEvent): void {
    this.#globals.push(item.globalPosition);
  }
  /** Adds a stored event by its global position (the index's load). */
  pushGlobal(g: number): void {
    this.#globals.push(g);
  }
  override slice(from: number, to: number): RecordedEvent[] {
    return this.log.eventsAt(this.#globals.slice(this.#head + from, this.#head + to));
  }
  override dropFront(n: number): void {
    this.#head += n;
    if (this.#head === this.#globals.length) {
      this.#globals = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#globals.length) {
      this.#globals = this.#globals.slice(this.#head);
      this.#head = 0;
    }
  }
  override *[Symbol.iterator](): Iterator<RecordedEvent> {
    for (let i = 0; i < this.length; i += 1024) yield* this.slice(i, Math.min(this.length, i + 1024));
  }
}

/** The global sequence of stored events, read from disk when asked for. */
class GlobalEvents extends Deque<RecordedEvent> {
  constructor(readonly log: DiskEventLog) {
    super();
  }
  override get length(): number {
    return this.log.storedCount();
  }
  override at(i: number): RecordedEvent | undefined {
    if (i < 0 || i >= this.length) return undefined;
    return this.log.eventsAt([this.log.globalFirst + i], false)[0];
  }
  override push(item: RecordedEvent): void {
    this.log.committed(item);
  }
  override slice(from: number, to: number): RecordedEvent[] {
    const end = Math.min(to, this.length);
    if (end <= from) return [];
    const globals = new Array<number>(end - from);
    for (let i = 0; i < globals.length; i++) globals[i] = this.log.globalFirst + from + i;
    return this.log.eventsAt(globals, false);
  }
  override dropFront(_n: number): void {
    // Retention moves `globalFirst` (DiskEventLog.expire); `clear` resets the columns.
  }
  override *[Symbol.iterator](): Iterator<RecordedEvent> {
    for (let i = 0; i < this.length; i += 1024) yield* this.slice(i, Math.min(this.length, i + 1024));
  }
}

/** A growable typed column. */
function grow<T extends Float64Array | Uint32Array>(column: T, need: number): T {
  if (need <= column.length) return column;
  let size = Math.max(1024, column.length);
  while (size < need) size *= 2;
  const next = new (column.constructor as new (n: number) => T)(size);
  next.set(column);
  return next;
}

/** The index of the file event store (see the module's comment). */
export class DiskEventLog extends EventLog {
  override readonly global: Deque<RecordedEvent> = new GlobalEvents(this);
  #read: LineReader = () => [];
  /** Global position of column index 0. */
  #base = 1;
  /** Entries in the columns: global positions `#base … #base + #count - 1`. */
  #count = 0;
  #offsets = new Float64Array(1024);
  #lengths = new Uint32Array(1024);
  #times = new Float64Array(1024);
  #streamNo = new Uint32Array(1024);
  #positions = new Float64Array(1024);
  #streamList: StreamState[] = [];
  readonly #streamNumbers = new Map<string, number>();
  #cache: EventCache;
  /** Events read from disk in global order (see the module's comment). */
  #recent: EventCache;
  #maxTime = Number.NEGATIVE_INFINITY;
  /** Where the lines of the next committed events are: pairs of offset and length, in order. */
  #placing: number[] = [];
  #placed = 0;

  /** @param cacheBytes the estimated size of the decoded events the caches may hold (`FileEventStoreOptions.cacheBytes`) */
  constructor(readonly cacheBytes: number) {
    super();
    this.#recent = new EventCache(RECENT_EVENTS, Math.floor(cacheBytes / RECENT_SHARE));
    this.#cache = new EventCache(CACHE_EVENTS, cacheBytes - this.#recent.maxBytes);
  }

  /** Estimated size of the decoded events the caches hold (at most `cacheBytes`). */
  cachedBytes(): number {
    return this.#cache.bytes + this.#recent.bytes;
  }

  /** Estimated size in memory of the event at global position `g` (an indexed one): as `stats().memoryUsageBytes` counts it. */
  #sizeOf(g: number): number {
    return EVENT_OVERHEAD_BYTES + (this.#lengths[g - this.#base] as number) * 2;
  }

  /** Sets how events are read from the segments. */
  setReader(read: LineReader): void {
    this.#read = read;
  }

  /** Stored events: global positions `globalFirst … globalFirst + storedCount() - 1`. */
  storedCount(): number {
    return Math.max(0, this.#base + this.#count - this.globalFirst);
  }

  /** Global position after the last indexed event. */
  get indexedEnd(): number {
    return this.#base + this.#count;
  }

  /** Where the line of global position `g` is, or undefined when it is not indexed. */
  place(g: number): { offset: number; length: number } | undefined {
    const i = g - this.#base;
    if (i < 0 || i >= this.#count) return undefined;
    return { offset: this.#offsets[i] as number, length: this.#lengths[i] as number };
  }

  /** The stream of global position `g` (an indexed one). */
  streamOf(g: number): StreamState {
    return this.#streamList[this.#streamNo[g - this.#base] as number] as StreamState;
  }

  /** The timestamp (ms) of global position `g` (an indexed one). */
  timeOf(g: number): number {
    return this.#times[g - this.#base] as number;
  }

  /** The position in its stream of global position `g` (an indexed one). */
  positionOf(g: number): number {
    return this.#positions[g - this.#base] as number;
  }

  /** The first global position the columns still hold (retention may drop the entries before `globalFirst`). */
  get indexedFrom(): number {
    return this.#base;
  }

  /** Entries from this global position on are kept even when expired (the index file does not cover them yet). */
  keepFrom = 1;

  /** The stream `id`, created (with no event) when new. */
  stream(id: string): StreamState {
    let s = this.streams.get(id);
    if (!s) {
      s = { id, events: new StreamEvents(this), first: 1, last: 0 };
      this.streams.set(id, s);
      this.#streamNumbers.set(id, this.#streamList.length);
      this.#streamList.push(s);
    }
    return s;
  }

  /**
   * Adds one event to the columns (the index's load and commits): its line
   * at `offset` with `length` bytes, at `position` of stream `s`, at `time`.
   */
  index(g: number, offset: number, length: number, s: StreamState, position: number, time: number): void {
    if (this.#count === 0) this.#base = g;
    this.reserve(1);
    const i = this.#count++;
    this.#positions[i] = position;
    this.#offsets[i] = offset;
    this.#lengths[i] = length;
    this.#times[i] = time;
    this.#streamNo[i] = this.#streamNumbers.get(s.id) as number;
    if (time < this.#maxTime) this.monotonic = false;
    else this.#maxTime = time;
    this.bytes += EVENT_OVERHEAD_BYTES + length * 2;
  }

  /** Makes room in the columns for `n` more events. */
  reserve(n: number): void {
    const need = this.#count + n;
    if (need <= this.#offsets.length) return;
    this.#offsets = grow(this.#offsets, need);
    this.#lengths = grow(this.#lengths, need);
    this.#times = grow(this.#times, need);
    this.#streamNo = grow(this.#streamNo, need);
    this.#positions = grow(this.#positions, need);
  }

  /**
   * Adds the events of one run of lines read from disk at open (an index
   * block, or scanned lines): global positions `g, g + 1, …`, lines from
   * byte `from` on, with these lengths, streams (`table[streamNo[i]]`),
   * positions and timestamps. Events before `expiredBefore` only move their
   * stream's positions (retention deleted them). Returns the index of the
   * first event whose position does not follow its stream's last one
   * (nothing from it on is added), or -1.
   */
  loadRun(
    g: number,
    lengths: Uint32Array,
    table: readonly StreamState[],
    streamNo: Uint32Array,
    positions: Float64Array,
    times: Float64Array,
    from: number,
    expiredBefore: number,
  ): number {
    const n = lengths.length;
    this.reserve(n);
    const numbers = table.map((s) => this.#streamNumbers.get(s.id) as number);
    const offsets = this.#offsets;
    const lengthColumn = this.#lengths;
    const timeColumn = this.#times;
    const positionColumn = this.#positions;
    const streamColumn = this.#streamNo;
    let k = this.#count;
    let offset = from;
    let maxTime = this.#maxTime;
    let bytes = 0;
    let bad = -1;
    for (let i = 0; i < n; i++) {
      const no = streamNo[i] as number;
      const s = table[no] as StreamState;
      const position = positions[i] as number;
      const length = lengths[i] as number;
      if (s.last === 0) {
        // First sight of a stream whose older events retention deleted: its positions go on from here.
        if (position > 1) s.first = position;
      } else if (position !== s.last + 1) {
        bad = i;
        break;
      }
      s.last = position;
      if (g + i < expiredBefore) {
        s.first = position + 1;
      } else {
        if (k === 0) this.#base = g + i;
        const time = times[i] as number;
        offsets[k] = offset;
        lengthColumn[k] = length;
        timeColumn[k] = time;
        positionColumn[k] = position;
        streamColumn[k] = numbers[no] as number;
        k++;
        (s.events as StreamEvents).pushGlobal(g + i);
        bytes += EVENT_OVERHEAD_BYTES + length * 2;
        if (time < maxTime) this.monotonic = false;
        else maxTime = time;
      }
      offset += length;
    }
    this.#count = k;
    this.#maxTime = maxTime;
    this.bytes += bytes;
    return bad;
  }

  /**
   * Commits appended records whose lines the store wrote at `places`
   * (offset, length, offset, length…, in order).
   */
  commitAt(records: readonly RecordedEvent[], places: number[]): void {
    this.#placing = places;
    this.#placed = 0;
    for (const r of records) this.stream(r.streamId);
    // The base's commit pushes each record to its stream (StreamEvents.push) and to `global` (GlobalEvents.push → committed).
    // No sizes: `bytes` counts the lines' estimated sizes (`index`), not the prepared ones, and `sizeAt` reads the
    // columns (the base would hold one size per event ever appended: retention here never drops them).
    this.commit(records);
    this.#placing = [];
  }

  /** @internal Called for each committed record (through `global.push`). */
  committed(r: RecordedEvent): void {
    const offset = this.#placing[this.#placed++] as number;
    const length = this.#placing[this.#placed++] as number;
    const s = this.streams.get(r.streamId) as StreamState;
    this.index(r.globalPosition, offset, length, s, r.position, r.timestamp.getTime());
    this.#cache.put(r, EVENT_OVERHEAD_BYTES + length * 2);
  }

  override restoreStream(id: string, first: number, last: number): void {
    const s = this.stream(id);
    s.first = first;
    s.last = last;
  }

  /**
   * The events at these global positions (ascending, indexed), from the
   * caches or the segments. Events read from the segments go to the large
   * cache when `keep` (reads of a stream), to the small one otherwise
   * (reads in global order).
   */
  eventsAt(globals: readonly number[], keep = true): RecordedEvent[] {
    const out = new Array<RecordedEvent>(globals.length);
    const cache = this.#cache;
    const recent = this.#recent;
    let i = 0;
    while (i < globals.length) {
      const g = globals[i] as number;
      const hit = cache.get(g) ?? recent.get(g);
      if (hit !== undefined) {
        out[i++] = hit;
        continue;
      }
      // A run of consecutive lines of one segment (none of them cached): one read.
      const k = g - this.#base;
      const offset = this.#offsets[k] as number;
      let end = offset + (this.#lengths[k] as number);
      let j = i + 1;
      while (j < globals.length) {
        const h = globals[j] as number;
        const kh = h - this.#base;
        if (h !== (globals[j - 1] as number) + 1 || this.#offsets[kh] !== end) break;
        if (cache.get(h) !== undefined || recent.get(h) !== undefined) break;
        end += this.#lengths[kh] as number;
        j++;
      }
      const events = this.#read(g, offset, end - offset, j - i, keep);
      const into = keep ? cache : recent;
      for (const e of events) into.put(e, this.#sizeOf(e.globalPosition));
      for (const e of events) out[i++] = e;
    }
    return out;
  }

  override sizeAt(i: number): number {
    const k = this.globalFirst + i - this.#base;
    return k < 0 || k >= this.#count ? 0 : EVENT_OVERHEAD_BYTES + (this.#lengths[k] as number) * 2;
  }

  override timeRange(from: number, to: number): RecordedEvent[] {
    const globals: number[] = [];
    for (let g = this.globalFirst; g < this.indexedEnd; g++) {
      const t = this.#times[g - this.#base] as number;
      if (t >= from && t <= to) globals.push(g);
      else if (this.monotonic && t > to) break;
    }
    const out = this.eventsAt(globals);
    if (!this.monotonic) out.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
    return out;
  }

  override expire(cutoff: number): number {
    let g = this.globalFirst;
    const end = this.indexedEnd;
    while (g < end && (this.#times[g - this.#base] as number) < cutoff) {
      const s = this.streamOf(g);
      s.events.dropFront(1);
      s.first++;
      this.bytes -= EVENT_OVERHEAD_BYTES + (this.#lengths[g - this.#base] as number) * 2;
      g++;
    }
    const n = g - this.globalFirst;
    this.globalFirst = g;
    this.#compact();
    return n;
  }

  /** Drops the columns' entries before `globalFirst` once they are most of them. */
  #compact(): void {
    const dead = Math.min(this.globalFirst, this.keepFrom) - this.#base;
    if (dead <= 1024 || dead * 2 < this.#count) return;
    const live = Math.max(0, this.#count - dead);
    this.#offsets.copyWithin(0, dead, this.#count);
    this.#lengths.copyWithin(0, dead, this.#count);
    this.#times.copyWithin(0, dead, this.#count);
    this.#streamNo.copyWithin(0, dead, this.#count);
    this.#positions.copyWithin(0, dead, this.#count);
    this.#base += dead;
    this.#count = live;
  }

  override clear(): void {
    super.clear();
    this.#count = 0;
    this.#offsets = new Float64Array(0);
    this.#lengths = new Uint32Array(0);
    this.#times = new Float64Array(0);
    this.#streamNo = new Uint32Array(0);
    this.#positions = new Float64Array(0);
    this.#streamList = [];
    this.#streamNumbers.clear();
    this.#cache = new EventCache(CACHE_EVENTS, this.#cache.maxBytes);
    this.#recent = new EventCache(RECENT_EVENTS, this.#recent.maxBytes);
  }
}
