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
 * over the bytes of a line in a buffer, without building a string.
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
