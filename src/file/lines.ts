/**
 * Checksummed JSON lines, the integrity scheme of both file stores. A line
 * is a JSON object whose last field is `"crc"`:
 *
 * ```
 * {…fields…,"crc":"1a2b3c4d"}
 * ```
 *
 * the CRC-32 (`zlib.crc32`) of the line's UTF-8 bytes before `,"crc":"`,
 * as 8 lower-case hex digits. A torn or damaged line fails the check. The
 * FileStore's hot paths (encode.ts, format.ts) compute the same checksum
 * over the bytes of a line in a buffer, without building a string: on
 * reads with {@link crc32Of}.
 */
import { crc32 } from "node:zlib";

/** What precedes the checksum's digits in a line. */
export const CRC_FIELD = ',"crc":"';
/** Length of a line's checksum tail: `,"crc":"` + 8 hex digits + `"}`. */
const CRC_TAIL_LENGTH = CRC_FIELD.length + 8 + 2;

/** The checksum of `body` (a line up to, excluding, `,"crc":"`): 8 lower-case hex digits. */
export function lineCrc(body: string): string {
  return crc32(body).toString(16).padStart(8, "0");
}

/** Closes the JSON object `body` (a line without its final `}`) with its checksum field: `body,"crc":"…"}`. */
export function appendLineCrc(body: string): string {
  return `${body}${CRC_FIELD}${lineCrc(body)}"}`;
}

/**
 * Whether `line` (without its newline) ends in `,"crc":"<8 hex>"}` and the
 * digits are the checksum of what precedes them.
 */
export function verifyLineCrc(line: string): boolean {
  const at = line.length - CRC_TAIL_LENGTH;
  if (at < 0 || !line.startsWith(CRC_FIELD, at) || !line.endsWith('"}')) return false;
  return line.slice(at + CRC_FIELD.length, at + CRC_FIELD.length + 8) === lineCrc(line.slice(0, at));
}

/**
 * CRC-32 tables for {@link crc32Of}: `CRC_TABLES[t * 256 + b]` is the CRC of
 * byte `b` followed by `t` zero bytes (slicing by 8).
 */
const CRC_TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n] as number;
      t[k * 256 + n] = (prev >>> 8) ^ (t[prev & 0xff] as number);
    }
  }
  return t;
})();

/**
 * The CRC-32 of `buf[start, end)`, the value `zlib.crc32` gives for those
 * bytes. Computed here, eight bytes per step: for one line (a few hundred
 * bytes) this is about twice as fast as `zlib.crc32`, whose cost per call
 * (a view on the line, the call into native code) exceeds the cost of
 * the bytes.
 */
export function crc32Of(buf: Uint8Array, start: number, end: number): number {
  const t = CRC_TABLES;
  let c = -1;
  let i = start;
  for (const stop = end - 8; i <= stop; i += 8) {
    c ^=
      (buf[i] as number) |
      ((buf[i + 1] as number) << 8) |
      ((buf[i + 2] as number) << 16) |
      ((buf[i + 3] as number) << 24);
    c =
      (t[1792 + (c & 0xff)] as number) ^
      (t[1536 + ((c >>> 8) & 0xff)] as number) ^
      (t[1280 + ((c >>> 16) & 0xff)] as number) ^
      (t[1024 + (c >>> 24)] as number) ^
      (t[768 + (buf[i + 4] as number)] as number) ^
      (t[512 + (buf[i + 5] as number)] as number) ^
      (t[256 + (buf[i + 6] as number)] as number) ^
      (t[buf[i + 7] as number] as number);
  }
  for (; i < end; i++) c = (t[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
