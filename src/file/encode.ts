/**
 * Encoding changes as lines (the format is described in format.ts and
 * docs/file-store.md): the write side's hot path.
 */
import { crc32 } from "node:zlib";
import type { PreparedChange } from "../index.js";

/** Caches the JSON text of names (namespaces and entity types repeat on every line). */
export class NameJsonCache {
  readonly #cache = new Map<string, string>();
  get(name: string): string {
    let json = this.#cache.get(name);
    if (json === undefined) {
      json = JSON.stringify(name);
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(name, json);
    }
    return json;
  }
}

/** The JSON-string text of an id; skips `JSON.stringify` when nothing needs escaping. */
function idJson(id: string): string {
  return /^[\w .:@~/+=-]*$/.test(id) ? `"${id}"` : JSON.stringify(id);
}

/**
 * `Date.prototype.toISOString` of `ms`, cheaper for timestamps that differ
 * by milliseconds: the part up to the minute is formatted once per minute.
 */
export class IsoFormatter {
  #minute = Number.NaN;
  #head = "";
  format(ms: number): string {
    const minute = Math.floor(ms / 60_000) * 60_000;
    if (minute !== this.#minute) {
      this.#minute = minute;
      const iso = new Date(minute).toISOString();
      this.#head = iso.slice(0, iso.length - 7); // up to `…HH:MM:`
    }
    const within = ms - minute;
    const sec = Math.floor(within / 1000);
    const milli = within - sec * 1000;
    return `${this.#head}${sec < 10 ? "0" : ""}${sec}.${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
  }
}

/** The formatter of {@link encodeLinesInto}, shared by every call: its minute text outlives one call (a save of one change formats one timestamp). */
const SHARED_ISO = new IsoFormatter();

const CRC_SUFFIX = ',"crc":"00000000"}\n';
const HEX_DIGITS = Buffer.from("0123456789abcdef", "latin1");

/**
 * A growable byte buffer that lines are encoded into. Each group write
 * has one, taken with its group from a small pool shared by every log and
 * reused group after group (a write copies the bytes to the page cache),
 * so saving a change allocates no buffer of its own.
 */
export class ByteSink {
  /** The bytes: `buffer[0, length)` are written, the rest is room. */
  buffer: Buffer;
  length = 0;
  constructor(capacity = 16 * 1024) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }
  /** Makes room for `bytes` more bytes (without moving `length`). */
  reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }
  /** The written bytes (a view: valid until the sink is written to again). */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/**
 * Appends the lines of `changes` to `sink`, in order, as UTF-8, each
 * ending in `\n`. Each line is built as one string and written straight
 * into the sink's buffer; with `integrity` each gets its `crc`: the lines
 * are written with a placeholder and the checksums written into the
 * buffer (one native CRC call per line over bytes, no per-line string
 * encoding).
 * @param only encode only the changes of this namespace
 * @returns the number of lines appended
 */
export function encodeLinesInto(
  sink: ByteSink,
  changes: readonly PreparedChange[],
  names: NameJsonCache,
  integrity: boolean,
  only?: string,
): number {
  const end = integrity ? CRC_SUFFIX : "}\n";
  let estimate = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as PreparedChange;
    estimate += (c.json?.length ?? 0) + c.entityId.length + c.entityType.length + c.namespace.length + 128;
  }
  // Each line is written straight into one buffer: no big intermediate string, and its byte range is known.
  sink.reserve(Math.ceil(estimate * 1.25));
  let buf = sink.buffer;
  let off = sink.length;
  let lines = 0;
  // Consecutive changes mostly share namespace, type and timestamp: reuse their text.
  let setHead = "";
  let unsetHead = "";
  let headNs: string | undefined;
  let headType: string | undefined;
  let tsMs = Number.NaN;
  let tsTail = "";
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as PreparedChange;
    if (only !== undefined && c.namespace !== only) continue;
    if (c.namespace !== headNs || c.entityType !== headType) {
      headNs = c.namespace;
      headType = c.entityType;
      const ns = names.get(c.namespace);
      const type = names.get(c.entityType);
      setHead = `{"namespace":${ns},"changeType":"set","entityType":${type},"entityID":`;
      unsetHead = `{"namespace":${ns},"changeType":"unset","entityType":${type},"entityID":`;
    }
    const ms = c.timestamp.getTime();
    if (ms !== tsMs) {
      tsMs = ms;
      tsTail = `,"timestamp":"${SHARED_ISO.format(ms)}"${end}`;
    }
    const line =
      c.json === undefined
        ? unsetHead + idJson(c.entityId) + tsTail
        : setHead + idJson(c.entityId) + ',"entity":' + c.json + tsTail;
    if (off + line.length * 3 > buf.length) {
      sink.length = off;
      sink.reserve(line.length * 3);
      buf = sink.buffer;
    }
    const start = off;
    off += buf.write(line, off);
    lines++;
    if (integrity) {
      // The line ends with `,"crc":"00000000"}\n`: checksum what precedes it, write the digits in place.
      let crc = crc32(new Uint8Array(buf.buffer, buf.byteOffset + start, off - CRC_SUFFIX.length - start));
      for (let k = off - 4; k >= off - 11; k--) {
        buf[k] = HEX_DIGITS[crc & 15] as number;
        crc >>>= 4;
      }
    }
  }
  sink.length = off;
  return lines;
}
