/**
 * `statelog verify`: checks stored data without changing it, and exits
 * with {@link ExitCode.Damaged} when it found damage.
 *
 * - Every store: its namespaces list, and each namespace loads (every value
 *   decodes).
 * - File stores, first, line by line: each line's checksum and shape,
 *   that it belongs to its file's namespace, a torn last line, and
 *   leftover temporary files of an interrupted compaction.
 * - NATS and memory event stores: global positions strictly increase,
 *   each stream's positions follow each other, and the streams' index
 *   (`getStreams`) agrees with the events.
 * - File event stores, from their files alone (an open would repair
 *   them), through the open's own read-only scan (`scanDirectory`): what
 *   it finds the open would refuse is an error, what the open would cut
 *   off or remove a warning. Every segment line is read (its checksum, that
 *   it decodes as an event), each segment's first event is at the
 *   position its name says, global positions follow one another across
 *   segments, each append is whole, each stream's positions follow one
 *   another; besides, each snapshot's checksum and name.
 * - File stores and file event stores: their side files. A hint must hold
 *   for its data file (the same checks as a load); an index file's blocks
 *   must pass their checksums, its segment must exist, and an intact index
 *   must still match its segment (the same check as an open: a segment
 *   edited by hand after it was indexed does not). Problems there are
 *   warnings: derived data, rebuilt by the next load or open.
 * - File read-model stores: each line of the log's checksum.
 */
import {
  closeSync,
  createReadStream,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import type { EventStore } from "../events/index.js";
import { DATA_SUFFIX, DIR_SUFFIX, namespaceFromPath, TEMP_SUFFIX } from "../file/encoding.js";
import { LockedError } from "../file/errors.js";
import {
  INDEX_PREFIX,
  INDEX_SUFFIX,
  numberIn,
  SEGMENT_PREFIX,
  SEGMENT_SUFFIX,
  SNAPSHOT_PREFIX,
  SNAPSHOT_SUFFIX,
} from "../file/events/format.js";
import { decodeIndex } from "../file/events/index-file.js";
import { misnamedSegment } from "../file/events/load.js";
import {
  type Batch,
  type Fault,
  FaultKind,
  RemovedSegment,
  type SegmentScan,
  scanDirectory,
  type TornTail,
} from "../file/events/scan.js";
import { decodeSnapshot } from "../file/events/snapshot.js";
import { LineError, parseLineObject } from "../file/format.js";
import { hintFileOf, readHint } from "../file/hint.js";
import { type HintSpans, hintSpans } from "../file/hint-spans.js";
import { verifyLineCrc } from "../file/lines.js";
import { flockTry } from "../file/lock.js";
import { READ_MODEL_LOG } from "../file/read-models/store.js";
import { isCorruptionError, messageOf, type Store } from "../index.js";
import { untilCaughtUp } from "./caught-up.js";
import { type CommonFlags, interruptible, namespacesOf, openKind, withJson, withProgress } from "./command.js";
import { ExitCode, formatError, toStatelogError } from "./errors.js";
import { type Progress, printJson, startProgress } from "./output.js";
import { Backend, parseTarget, requireDirectory, requireStoreFiles, TargetKind, type TargetSpec } from "./targets.js";

/** One finding. Errors are damage; warnings are worth knowing but lose nothing. */
export interface Problem {
  readonly severity: "error" | "warning";
  /** The file (and line) or namespace or stream concerned. */
  readonly where: string;
  readonly message: string;
}

/** What `verify` checked and found. */
export interface VerifyReport {
  readonly target: string;
  /** Counts of what was checked (`namespaces`, `lines`, `changes`, `events`, `streams`, `snapshots`, `bytes`). */
  readonly checked: Record<string, number>;
  readonly problems: Problem[];
}

class Findings {
  readonly checked: Record<string, number> = {};
  readonly problems: Problem[] = [];
  /** Namespaces whose file the line scan found damaged (not loaded again: one report per damage). */
  readonly damagedNamespaces = new Set<string>();
  count(what: string, n = 1): void {
    this.checked[what] = (this.checked[what] ?? 0) + n;
  }
  error(where: string, message: string): void {
    this.problems.push({ severity: "error", where, message });
  }
  warning(where: string, message: string): void {
    this.problems.push({ severity: "warning", where, message });
  }
}

/**
 * Calls `onLine(line, number)` for each complete line of `file` (a torn
 * last line, without its newline, is left out); returns whether the last
 * line is torn. `read.bytes` counts the bytes read, for `progress`.
 */
export async function eachLine(
  file: string,
  progress: Progress,
  read: { bytes: number },
  onLine: (line: string, n: number) => void,
): Promise<boolean> {
  // One descriptor for the size, the last byte and the lines: a compaction renaming a new file in meanwhile
  // cannot make them come from two files.
  const fd = openSync(file, "r");
  let size: number;
  const last = Buffer.alloc(1);
  try {
    size = fstatSync(fd).size;
    if (size > 0) readSync(fd, last, 0, 1, size - 1);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (size === 0) {
    closeSync(fd);
    return false;
  }
  const torn = last[0] !== 10;
  // The bytes the file had when the check began, no more: a writer of a store in use may be appending a line.
  const input = createReadStream("", { fd, start: 0, end: size - 1, autoClose: true });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  let pending: string | undefined;
  try {
    for await (const line of lines) {
      if (pending !== undefined) onLine(pending, n);
      pending = line;
      n++;
      read.bytes += Buffer.byteLength(line) + 1;
      if (n % 4096 === 0) progress.update(read.bytes);
    }
  } finally {
    input.destroy(); // closes the descriptor also when a check threw
  }
  if (pending !== undefined && !torn) onLine(pending, n);
  progress.update(read.bytes);
  return torn;
}

/** Bytes of the files under `dir` (recursively). */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(p);
    else if (entry.isFile()) total += statSync(p).size;
  }
  return total;
}

/** The line-by-line checks of a file store directory. */
async function scanFileStore(dir: string, found: Findings, progress: Progress): Promise<void> {
  progress.total(bytesUnder(dir));
  const base = { bytes: 0 };
  const walk = async (folder: string, parts: string[]): Promise<void> => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory() && entry.name.endsWith(DIR_SUFFIX)) {
        await walk(file, [...parts, entry.name]);
      } else if (entry.isFile() && entry.name.endsWith(TEMP_SUFFIX)) {
        found.warning(file, "a temporary file left by an interrupted compaction (the namespace's data file is intact)");
      } else if (entry.isFile() && entry.name.endsWith(DATA_SUFFIX)) {
        const namespace = namespaceFromPath([...parts, entry.name]);
        if (namespace === undefined) {
          found.warning(file, "not the file of a namespace (its name does not decode)");
          continue;
        }
        found.count("namespaces");
        let unchecked = 0;
        const torn = await eachLine(file, progress, base, (line, n) => {
          if (line.trim() === "") return;
          found.count("lines");
          try {
            parseLineObject(line, namespace);
            if (!line.includes(',"crc":"')) unchecked++;
          } catch (error) {
            found.error(`${file}:${n}`, error instanceof LineError ? error.message : messageOf(error));
            found.damagedNamespaces.add(namespace);
          }
        });
        if (torn)
          found.warning(
            file,
            "its last line is torn (a save interrupted by a crash: it is ignored, and the next save cuts it off)",
          );
        await checkHint(file, namespace, found);
        if (unchecked > 0)
          found.warning(
            file,
            `${unchecked} line(s) carry no checksum (written with integrity off, or by another tool)`,
          );
      }
    }
  };
  await walk(dir, []);
}

/**
 * A namespace's hint file, when there is one, must hold for its data file;
 * one that does not is a warning (derived data: the next load ignores it
 * and writes it again).
 */
async function checkHint(dataFile: string, namespace: string, found: Findings): Promise<void> {
  if (!existsSync(hintFileOf(dataFile))) return;
  found.count("hint files");
  const fd = openSync(dataFile, "r");
  try {
    const hint = readHint(dataFile, namespace, fd, fstatSync(fd));
    // Its span checksums must be those of the spans as they are now, with every winner intact.
    const now = hint?.spans && (await hintSpans(fd, namespace, { ...hint, spans: undefined }));
    if (hint === undefined || (hint.spans && !sameSpans(hint.spans, now))) {
      found.warning(
        hintFileOf(dataFile),
        "hint file does not match its data file (derived data: the next load ignores it and writes it again)",
      );
    }
  } finally {
    closeSync(fd);
  }
}

function sameSpans(a: HintSpans, b: HintSpans | undefined): boolean {
  return (
    b !== undefined &&
    a.first.length === b.first.length &&
    a.first.every((f, i) => f === b.first[i] && a.crc[i] === b.crc[i])
  );
}

/** Each namespace loads: every value decodes. */
async function loadEveryNamespace(
  store: Store,
  found: Findings,
  signal: AbortSignal,
  progress: Progress,
): Promise<void> {
  let namespaces: string[];
  try {
    namespaces = await namespacesOf(store, signal);
  } catch (error) {
    if (!isCorruptionError(error)) throw error;
    // The listing fails as a whole (a namespace marker that does not decode): the report says so, as for any damage.
    found.error("namespaces", `${formatError(error)}; the namespaces cannot be listed, so none was loaded`);
    return;
  }
  found.checked.namespaces = namespaces.length;
  progress.total(namespaces.length);
  let done = 0;
  for (const ns of namespaces) {
    if (found.damagedNamespaces.has(ns)) {
      progress.update(++done);
      continue;
    }
    try {
      const changes = await store.load(ns, { signal });
      found.count("changes", changes.length);
    } catch (error) {
      if (!isCorruptionError(error)) throw error;
      found.error(`namespace ${JSON.stringify(ns)}`, formatError(error));
    }
    progress.update(++done);
  }
}

/**
 * The checks of a file event store, which never opens it (an open repairs:
 * it cuts a torn last append off and rewrites index files): the open's
 * read-only scan (`scanDirectory`) decides, reading every line and going on
 * after damage, and its findings are reported here. Besides, each
 * snapshot's checksum and name, each index file's blocks, and leftover
 * temporary files.
 */
async function scanFileEvents(dir: string, found: Findings, progress: Progress): Promise<void> {
  const names = readdirSync(dir).sort();
  // Progress counts the segments' bytes, which the scan reads (its total once counted every file: LOCK, index files,
  // snapshots, and the last line stopped short of it). A read may take the end of a line again with the next one:
  // a segment counts its reads up to its size, and its size once it is done. The scan takes them in this order.
  const sizes = names
    .map((n) => ({ name: n, first: numberIn(n, SEGMENT_PREFIX, SEGMENT_SUFFIX) }))
    .filter((s): s is { name: string; first: number } => s.first !== undefined)
    .sort((a, b) => a.first - b.first)
    .map((s) => statSync(path.join(dir, s.name)).size);
  progress.total(sizes.reduce((n, size) => n + size, 0));
  let done = 0;
  let at = 0;
  let inSegment = 0;
  const scan = await scanDirectory(dir, names, {
    everyLine: true,
    allFaults: true,
    sink: {
      segment: (segment) => {
        done += segment.size;
        at++;
        inSegment = 0;
        progress.update(done);
      },
      read: async (bytes) => {
        inSegment += bytes;
        progress.update(done + Math.min(inSegment, sizes[at] ?? 0));
        // A turn of the event loop per read: a check of a large store does not hold it up.
        await new Promise((resolve) => setImmediate(resolve));
      },
    },
  });
  const segments = new Map(scan.segments.map((s) => [s.name, s]));
  const byFirst = new Map(scan.segments.map((s) => [s.first, s]));
  const orphans = new Set(scan.orphanIndexes);
  const faults = new Map<string, Fault[]>();
  for (const f of scan.faults) {
    const list = faults.get(f.file);
    if (list === undefined) faults.set(f.file, [f]);
    else list.push(f);
  }
  for (const name of names) {
    const file = path.join(dir, name);
    if (name.endsWith(TEMP_SUFFIX)) found.warning(file, "a temporary file left by an interrupted write");
    const segment = segments.get(name);
    if (segment !== undefined) reportSegment(segment, segment === scan.segments.at(-1), faults.get(file) ?? [], found);
    const indexOf = numberIn(name, INDEX_PREFIX, INDEX_SUFFIX);
    if (indexOf !== undefined) {
      found.count("index files");
      if (orphans.has(name)) {
        found.warning(file, "index file without its segment (derived data: the next open removes it)");
      }
      const index = byFirst.get(indexOf)?.index ?? ownIndex(file);
      if (index.valid < index.bytes) {
        found.warning(
          file,
          `index file damaged or cut short after byte ${index.valid} (derived data: the next open rebuilds it from its segment)`,
        );
      } else if (index.agreeing < index.valid) {
        found.warning(
          file,
          `index file does not match its segment after byte ${index.agreeing} (the segment was modified after it was indexed, or copied without its times; derived data: the next open rebuilds it from its segment)`,
        );
      }
    }
    const snapshotOf = numberIn(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX);
    if (snapshotOf !== undefined) {
      found.count("snapshots");
      try {
        const { data } = decodeSnapshot(file, readFileSync(file));
        if (data.lastGlobal !== snapshotOf) {
          found.error(file, `the snapshot's name says global position ${snapshotOf}, it covers ${data.lastGlobal}`);
        }
      } catch (error) {
        found.error(file, isCorruptionError(error) ? error.message : messageOf(error));
      }
    }
  }
  if (scan.streams.size > 0) found.count("streams", scan.streams.size);
}

/**
 * An index file the scan did not read (its segment is gone, or the open
 * removes it): its blocks' checksums only (`agreeing`: as far as they go).
 */
function ownIndex(file: string): { bytes: number; valid: number; agreeing: number } {
  const buffer = readFileSync(file);
  const { valid } = decodeIndex(buffer);
  return { bytes: buffer.length, valid, agreeing: valid };
}

/** What the scan found in one segment: its faults, its name, and what the next open does with it. */
function reportSegment(segment: SegmentScan, isLast: boolean, faults: readonly Fault[], found: Findings): void {
  const { file, first } = segment;
  found.count("segments");
  if (segment.lines > 0) {
    found.count("lines", segment.lines);
    found.count("events", segment.events);
  }
  for (const f of faults) if (f.kind !== FaultKind.CutAppend) reportFault(f, found);
  if (segment.removed === RemovedSegment.Held) {
    found.warning(
      file,
      `an empty segment whose name claims global position ${first}, which an earlier segment holds (left by a roll that failed; holds nothing: the next open removes it)`,
    );
  } else if (segment.removed === RemovedSegment.Past && isLast) {
    found.warning(
      file,
      `an empty last segment named past the events (global position ${first}, the next is ${segment.nextBefore}): left by a roll before a crash lost the last appends; holds nothing: the next open removes it`,
    );
  } else if (segment.removed === RemovedSegment.Past) {
    const next = Number.isNaN(segment.nextBefore) ? "" : `, the next is ${segment.nextBefore}`;
    // Named at the next position or past it: either way a later segment holds what would follow.
    const named = first === segment.nextBefore ? "named at the next position" : "named past the events";
    found.warning(
      file,
      `an empty segment before the last one, ${named} (global position ${first}${next}): holds nothing: the next open removes it`,
    );
  }
  for (const f of faults) if (f.kind === FaultKind.CutAppend) reportCut(f, found);
  if (segment.torn !== undefined) reportTornTail(file, segment.torn, found);
}

/** A fault the scan found at a line. */
function reportFault(f: Exclude<Fault, { kind: typeof FaultKind.CutAppend }>, found: Findings): void {
  const where = `${f.file}:${f.line}`;
  switch (f.kind) {
    case FaultKind.Misnamed:
      found.error(f.file, misnamedSegment(f));
      return;
    case FaultKind.Damaged:
    case FaultKind.NotAnEvent:
      found.error(where, "damaged line (checksum mismatch or not an event)");
      return;
    case FaultKind.Position:
      if (f.g <= f.after) found.error(where, `global position ${f.g} comes after ${f.after}: out of order`);
      else {
        const missing = f.segmentStart
          ? `: events ${f.expected} to ${f.g - 1} are missing (a segment deleted or lost?)`
          : "";
        found.error(where, `global position ${f.g} follows ${f.expected - 1} (expected ${f.expected})${missing}`);
      }
      return;
    case FaultKind.NestedBatch:
      found.error(
        where,
        `a batch of ${f.length} events starts inside the batch of ${f.outer.length} events of line ${f.outer.line}`,
      );
      return;
    case FaultKind.StreamJump:
      found.error(
        where,
        `stream ${JSON.stringify(f.stream)}: position ${f.position} follows ${f.after} (expected ${f.after + 1})`,
      );
      return;
  }
}

/** How an append the scan found cut short ends. */
function cutShort(batch: Batch, damagedLine: number | undefined, tornLine: number | undefined): string {
  const end = `${damagedLine === undefined ? "" : " and a damaged line"}${tornLine === undefined ? "" : " and a torn line"}`;
  return `the batch of ${batch.length} events of line ${batch.line} ends after ${batch.whole} of its lines${end}`;
}

/** A segment before the last one that holds bytes ends inside an append: an error (the open refuses the store). */
function reportCut(f: Extract<Fault, { kind: typeof FaultKind.CutAppend }>, found: Findings): void {
  const rest = ", and it is not the last segment (a crash can only cut the log's last append)";
  if (f.batch !== undefined)
    found.error(`${f.file}:${f.batch.line}`, `${cutShort(f.batch, undefined, f.tornLine)}${rest}`);
  else found.error(f.file, `its last line is torn${rest}`);
}

/** The torn tail of the last segment that holds bytes: a warning (reads leave it out, the next open drops it). */
function reportTornTail(file: string, torn: TornTail, found: Findings): void {
  const { batch, damagedLine, tornLine } = torn;
  if (batch !== undefined) {
    found.warning(
      file,
      `its last append is torn: ${cutShort(batch, damagedLine, tornLine)} (an append interrupted by a crash: reads leave it out, the next open drops it)`,
    );
  } else if (damagedLine !== undefined) {
    found.warning(
      file,
      `its last line is damaged${tornLine === undefined ? "" : ", and a torn line follows it"} (checksum or JSON: the next open takes it for an append a crash interrupted and drops it)`,
    );
  } else {
    found.warning(file, "its last line is torn (an append interrupted by a crash: the next open drops it)");
  }
}

/** Positions in order, each stream's positions consecutive, and `getStreams` agreeing with the events. */
async function checkEventOrder(
  store: EventStore,
  found: Findings,
  signal: AbortSignal,
  progress: Progress,
): Promise<void> {
  const head = store.stats().globalPosition;
  progress.total(head);
  const streams = new Map<string, { first: number; last: number; count: number }>();
  let last = 0;
  if (head > 0) {
    // Up to the head, or to the last event still stored (retention may have removed every one since).
    for await (const e of untilCaughtUp(store.subscribeAll(0, { signal }), (event) => event.globalPosition >= head)) {
      found.count("events");
      if (e.globalPosition <= last) {
        found.error(`global position ${e.globalPosition}`, `comes after ${last}: out of order`);
      }
      last = Math.max(last, e.globalPosition);
      const s = streams.get(e.streamId);
      if (s === undefined) streams.set(e.streamId, { first: e.position, last: e.position, count: 1 });
      else {
        if (e.position !== s.last + 1) {
          found.error(
            `stream ${JSON.stringify(e.streamId)}`,
            `position ${e.position} follows ${s.last} (expected ${s.last + 1})`,
          );
        }
        s.last = e.position;
        s.count++;
      }
      if (found.checked.events !== undefined && found.checked.events % 1000 === 0) progress.update(e.globalPosition);
    }
  }
  progress.update(head);
  for (const info of await store.getStreams()) {
    found.count("streams");
    const seen = streams.get(info.streamId);
    const where = `stream ${JSON.stringify(info.streamId)}`;
    if (seen === undefined) {
      if (info.eventCount > 0) found.error(where, `the index lists ${info.eventCount} event(s), none were read`);
      continue;
    }
    streams.delete(info.streamId);
    if (seen.count !== info.eventCount || seen.last !== info.lastPosition) {
      found.error(
        where,
        `the index says ${info.eventCount} event(s) up to position ${info.lastPosition}, the events read are ${seen.count} up to ${seen.last}`,
      );
    }
  }
  for (const id of streams.keys())
    found.error(`stream ${JSON.stringify(id)}`, "has events but is missing from the index");
}

/** Each line of a file read-model store's log. */
async function scanFileModels(dir: string, found: Findings, progress: Progress): Promise<void> {
  const file = path.join(dir, READ_MODEL_LOG);
  if (!existsSync(file)) return;
  progress.total(statSync(file).size);
  const torn = await eachLine(file, progress, { bytes: 0 }, (line, n) => {
    if (line === "") return;
    found.count("lines");
    if (!verifyLineCrc(line)) found.error(`${file}:${n}`, "damaged line (checksum mismatch)");
  });
  if (torn) found.warning(file, "its last line is torn (a write interrupted by a crash: the next open drops it)");
}

/**
 * Takes the lock a file event store's writer holds, without creating its
 * `LOCK` file: a store another process has open is refused as an open
 * would refuse it (and no writer opens it while it is checked). Without a
 * `LOCK` file no process has the store open, and nothing is locked:
 * `held` is false (see {@link refuseOpenedMeanwhile}).
 * @throws LockedError
 */
function holdEventStoreLock(dir: string): Disposable & { readonly held: boolean } {
  const fd = openLockFile(dir);
  if (fd === undefined) return { held: false, [Symbol.dispose]: () => undefined };
  try {
    if (!flockTry(fd, "ex")) throw new LockedError(path.resolve(dir));
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return { held: true, [Symbol.dispose]: () => closeSync(fd) };
}

/** A descriptor of the store's `LOCK` file, undefined when there is none. */
function openLockFile(dir: string): number | undefined {
  try {
    return openSync(path.join(dir, "LOCK"), "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw toStatelogError(error, `event store directory ${JSON.stringify(dir)}`);
  }
}

/**
 * After a check that held no lock (there was no `LOCK` file): a writer
 * that opened the store meanwhile may have changed what was read (an open
 * cuts and rewrites files), so a store open now is refused as one open
 * before the check is.
 * @throws LockedError
 */
function refuseOpenedMeanwhile(dir: string): void {
  const fd = openLockFile(dir);
  if (fd === undefined) return;
  try {
    if (flockTry(fd, "ex")) return;
  } finally {
    closeSync(fd);
  }
  const locked = new LockedError(path.resolve(dir));
  locked.message = `event store directory ${path.resolve(dir)} was opened by another process while verify checked it (what it read may have changed); verify it again once it is closed`;
  throw locked;
}

/** Verifies what `url` names (see the module's description). */
export async function verifyTarget(spec: TargetSpec, signal: AbortSignal, quiet: boolean): Promise<VerifyReport> {
  const found = new Findings();
  const file = spec.backend === Backend.File;
  const dir = spec.path as string;
  if (file && spec.kind === TargetKind.Events) {
    // Checked from its files alone: opening a file event store repairs it (verify changes nothing).
    requireDirectory(dir, "event store directory");
    requireStoreFiles(dir, TargetKind.Events);
    using lock = holdEventStoreLock(dir);
    const progress = startProgress("verify files", "bytes", { quiet });
    await scanFileEvents(dir, found, progress);
    progress.stop();
    if (!lock.held) refuseOpenedMeanwhile(dir);
    return { target: spec.display, checked: found.checked, problems: found.problems };
  }
  if (file) {
    // First the files themselves, without opening the store (which may refuse damaged data).
    // A missing directory is reported by openKind below, the same way every command does; a read-model store is not
    // opened: reported here.
    if (spec.kind === TargetKind.ReadModels) requireDirectory(dir, "read-model store directory");
    if (existsSync(dir)) {
      requireStoreFiles(dir, spec.kind);
      const progress = startProgress("verify files", "bytes", { quiet });
      if (spec.kind === TargetKind.Store) await scanFileStore(dir, found, progress);
      else await scanFileModels(dir, found, progress);
      progress.stop();
    }
    if (found.problems.some((p) => p.severity === "error") && spec.kind !== TargetKind.Store) {
      return { target: spec.display, checked: found.checked, problems: found.problems };
    }
  }
  if (spec.kind === TargetKind.ReadModels) {
    if (!file) {
      // A read-model store has no listing of its models by type; opening it checks the bucket is there.
      await using _target = await openKind(spec.url, [TargetKind.ReadModels], "verify");
    }
    return { target: spec.display, checked: found.checked, problems: found.problems };
  }
  await using target = await openKind(spec.url, [TargetKind.Store, TargetKind.Events, TargetKind.ReadModels], "verify");
  if (target.store) {
    const progress = startProgress("verify namespaces", "namespaces", { quiet });
    await loadEveryNamespace(target.store, found, signal, progress);
    progress.stop();
  } else if (target.eventStore) {
    const progress = startProgress("verify events", "events", { quiet });
    await checkEventOrder(target.eventStore, found, signal, progress);
    progress.stop();
  }
  return { target: spec.display, checked: found.checked, problems: found.problems };
}

export function addVerifyCommand(program: Command): void {
  withProgress(
    withJson(
      program
        .command("verify")
        .description("check stored data (checksums, order, index files) without changing it; exit code 7 when damaged")
        .argument("<target>", "a store, event-store or read-model store URL (or a store directory)"),
    ),
  ).action(async (url: string, opts: CommonFlags) => {
    const spec = parseTarget(url);
    const run = interruptible();
    try {
      const report = await verifyTarget(spec, run.signal, opts.progress === false);
      const errors = report.problems.filter((p) => p.severity === "error").length;
      const warnings = report.problems.length - errors;
      if (opts.json) printJson({ ...report, ok: errors === 0 });
      else {
        for (const p of report.problems) console.log(`${p.severity.padEnd(7)} ${p.where}: ${p.message}`);
        const checked = Object.entries(report.checked)
          .map(([k, v]) => `${v} ${k}`)
          .join(", ");
        console.log(
          `${errors === 0 ? "ok" : "DAMAGED"}: ${report.target}: checked ${checked || "nothing"}; ${errors} error(s), ${warnings} warning(s)`,
        );
      }
      if (errors > 0) process.exitCode = ExitCode.Damaged;
    } finally {
      run.dispose();
    }
  });
}
