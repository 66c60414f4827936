/**
 * Hint files (docs/file-store.md, "Hint files"): `<name>.hint` next to
 * `<name>.jsonl`, derived data only, in the spirit of Bitcask's hint files.
 * A hint names, for the first `dataBytes` bytes of one data file, where
 * the latest line of every key lies, so that a `load` reads those lines
 * (and the lines appended after `dataBytes`) instead of the whole history.
 *
 * Layout: one JSON header line, then the table, little-endian:
 *
 * ```
 * {"format":"statelog-hint","version":2,"namespace":"ws-1","dataBytes":…,"lines":…,"winners":…,"spans":…,"ino":…,"dev":…,"fingerprint":"…","tableCrc":"…"}\n
 * winners × float64: byte offset of each winning line, in file order
 * winners × uint32: its length in bytes (without the `\n`)
 * winners × uint32: its 0-based line number
 * spans × uint32: the first winner of each span (version 2)
 * spans × uint32: the CRC-32 of the span's bytes (version 2)
 * ```
 *
 * A span is a run of winners a load reads at once (hint-spans.ts): from
 * the `\n` before its first line to the `\n` after its last one, with
 * whatever superseded lines lie between them.
 *
 * A hint is used only when everything about it holds: its header and
 * table checksum, the namespace, the data file's inode and a size of at
 * least `dataBytes`, and the fingerprint (CRC-32 of 17 samples of 4 KiB
 * spread over the first `dataBytes` bytes). Then every span a load reads
 * must match its CRC-32 (a version-1 hint has none: each winning line
 * must pass its own checksum instead), and every winning line must start
 * after a `\n` and end with one. Anything else (a missing, damaged, stale
 * or foreign hint) makes `load` read the whole file, as without a hint,
 * and write a new one. Deleting a hint costs one full read; it never
 * changes what a load returns.
 */
import { closeSync, constants, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { DATA_SUFFIX, HINT_SUFFIX, TEMP_SUFFIX } from "./encoding.js";
import { readUpTo } from "./fs.js";
import { type HintSpans, hintSpans } from "./hint-spans.js";

/** Where the winning lines of a file's first `dataBytes` bytes lie. */
export interface Hint {
  /** Bytes of the data file the hint covers (whole lines). */
  readonly dataBytes: number;
  /** Lines in those bytes (blank and superseded ones included). */
  readonly lines: number;
  /** Per winner, in file order: byte offset, length without `\n`, 0-based line number. */
  readonly offsets: Float64Array;
  readonly lengths: Uint32Array;
  readonly lineNumbers: Uint32Array;
  /**
   * Per span (hint-spans.ts), in file order: its first winner and the
   * CRC-32 of its bytes. Made by {@link writeHint} unless given; absent
   * in a hint of version 1.
   */
  readonly spans?: HintSpans;
}

const FORMAT = "statelog-hint";
/** The version written; version 1 (without span checksums) is still read. */
const VERSION = 2;
/** Bytes per sample of the fingerprint, and samples (evenly spread, first and last included). */
const SAMPLE_BYTES = 4096;
const SAMPLES = 17;
/** The tag of a hint's temp file (`<name>.<pid>.-.tmp`): never one of a compaction's base-36 tags. */
const HINT_TEMP_TAG = "-";
/** Longest header line read. */
const MAX_HEADER_BYTES = 4096;

/** The hint file of a data file: `<name>.hint` next to `<name>.jsonl`. */
export function hintFileOf(dataFile: string): string {
  return dataFile.slice(0, -DATA_SUFFIX.length) + HINT_SUFFIX;
}

/** CRC-32 of {@link SAMPLES} samples of the first `bytes` bytes of `fd`, as 8 hex digits. */
function fingerprint(fd: number, bytes: number): string {
  const n = Math.min(SAMPLE_BYTES, bytes);
  const buf = Buffer.allocUnsafe(n);
  let crc = 0;
  const last = bytes - n;
  for (let k = 0; k < SAMPLES; k++) {
    const at = Math.floor((last * k) / (SAMPLES - 1));
    crc = crc32(buf.subarray(0, readUpTo(fd, buf, n, at)), crc);
  }
  return crc.toString(16).padStart(8, "0");
}

interface Header {
  readonly format: string;
  readonly version: number;
  readonly namespace: string;
  readonly dataBytes: number;
  readonly lines: number;
  readonly winners: number;
  /** Version 2. */
  readonly spans?: number;
  readonly ino: number;
  readonly dev: number;
  readonly fingerprint: string;
  readonly tableCrc: string;
}

/**
 * The hint of the data file open at `fd` (inode `ino` on `dev`, `size`
 * bytes of whole lines), if one exists and holds for it; `undefined`
 * otherwise (never throws: a hint that cannot be used is no hint).
 */
export function readHint(
  dataFile: string,
  namespace: string,
  fd: number,
  file: { readonly size: number; readonly ino: number; readonly dev: number },
): Hint | undefined {
  let hfd: number;
  try {
    hfd = openSync(hintFileOf(dataFile), constants.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    const total = fstatSync(hfd).size;
    const head = Buffer.allocUnsafe(Math.min(total, MAX_HEADER_BYTES));
    const got = readSync(hfd, head, 0, head.length, 0);
    const nl = head.subarray(0, got).indexOf(10);
    if (nl < 0) return undefined;
    const h = JSON.parse(head.toString("utf8", 0, nl)) as Header;
    if (
      h.format !== FORMAT ||
      (h.version !== 1 && h.version !== VERSION) ||
      h.namespace !== namespace ||
      h.ino !== file.ino ||
      h.dev !== file.dev ||
      !Number.isSafeInteger(h.dataBytes) ||
      h.dataBytes <= 0 ||
      h.dataBytes > file.size ||
      !Number.isSafeInteger(h.winners) ||
      h.winners < 0 ||
      !Number.isSafeInteger(h.lines) ||
      h.lines < h.winners
    ) {
      return undefined;
    }
    const spans = h.version === 1 ? 0 : h.spans;
    if (!Number.isSafeInteger(spans) || (spans as number) < 0 || (spans as number) > h.winners) return undefined;
    if (h.version !== 1 && (spans === 0) !== (h.winners === 0)) return undefined;
    const tableBytes = h.winners * 16 + (spans as number) * 8;
    if (total !== nl + 1 + tableBytes) return undefined;
    // The table goes into one aligned buffer: offsets first (8-byte aligned), then the two uint32 columns.
    const table = new ArrayBuffer(tableBytes);
    const bytes = new Uint8Array(table);
    let at = 0;
    while (at < tableBytes) {
      const r = readSync(hfd, bytes, at, tableBytes - at, nl + 1 + at);
      if (r === 0) return undefined;
      at += r;
    }
    if (crc32(bytes).toString(16).padStart(8, "0") !== h.tableCrc) return undefined;
    if (fingerprint(fd, h.dataBytes) !== h.fingerprint) return undefined;
    const hint: Hint = {
      dataBytes: h.dataBytes,
      lines: h.lines,
      offsets: new Float64Array(table, 0, h.winners),
      lengths: new Uint32Array(table, h.winners * 8, h.winners),
      lineNumbers: new Uint32Array(table, h.winners * 12, h.winners),
    };
    if (h.version === 1) return hint;
    const first = new Uint32Array(table, h.winners * 16, spans);
    // Consecutive runs of winners, the first one starting at winner 0.
    if (spans && first[0] !== 0) return undefined;
    for (let s = 1; s < (spans as number); s++) if ((first[s] as number) <= (first[s - 1] as number)) return undefined;
    if (spans && (first[(spans as number) - 1] as number) >= h.winners) return undefined;
    return { ...hint, spans: { first, crc: new Uint32Array(table, h.winners * 16 + (spans as number) * 4, spans) } };
  } catch {
    return undefined;
  } finally {
    closeSync(hfd);
  }
}

/**
 * Writes the hint of the data file open at `fd` (inode `ino` on `dev`),
 * with its span checksums ({@link hintSpans}; taken as they are when
 * `hint` has them): to `<name>.<pid>.-.tmp` (a compaction's temp files
 * have a base-36 tag there; a crash's leftover is removed as theirs are),
 * then renamed over `<name>.hint`. Not fsynced: a hint damaged by a crash
 * fails its checks and is rewritten. Never throws (a hint that cannot be
 * written is no hint); resolves to whether it was written: not when a
 * winner is not intact.
 */
export async function writeHint(
  dataFile: string,
  namespace: string,
  fd: number,
  file: { readonly ino: number; readonly dev: number },
  hint: Hint,
): Promise<boolean> {
  const winners = hint.offsets.length;
  const target = hintFileOf(dataFile);
  const temp = path.join(
    path.dirname(dataFile),
    `${path.basename(dataFile, DATA_SUFFIX)}.${process.pid}.${HINT_TEMP_TAG}${TEMP_SUFFIX}`,
  );
  let tfd = -1;
  try {
    const spans = hint.spans ?? (await hintSpans(fd, namespace, hint));
    if (!spans) return false;
    const s = spans.first.length;
    const table = Buffer.allocUnsafe(winners * 16 + s * 8);
    const column = (a: Float64Array | Uint32Array, at: number) =>
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(table, at);
    column(hint.offsets, 0);
    column(hint.lengths, winners * 8);
    column(hint.lineNumbers, winners * 12);
    column(spans.first, winners * 16);
    column(spans.crc, winners * 16 + s * 4);
    const header: Header = {
      format: FORMAT,
      version: VERSION,
      namespace,
      dataBytes: hint.dataBytes,
      lines: hint.lines,
      winners,
      spans: s,
      ino: file.ino,
      dev: file.dev,
      fingerprint: fingerprint(fd, hint.dataBytes),
      tableCrc: crc32(table).toString(16).padStart(8, "0"),
    };
    tfd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    const out = Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, "utf8"), table]);
    for (let at = 0; at < out.length; ) at += writeSync(tfd, out, at, out.length - at);
    closeSync(tfd);
    tfd = -1;
    renameSync(temp, target);
    return true;
  } catch {
    if (tfd >= 0) closeSync(tfd);
    try {
      unlinkSync(temp);
    } catch {
      // never made, or gone
    }
    return false;
  }
}

/** Removes the hint of `dataFile` (after a compaction the old hint names another file). Never throws. */
export function removeHint(dataFile: string): void {
  try {
    unlinkSync(hintFileOf(dataFile));
  } catch {
    // missing, or read-only storage
  }
}
