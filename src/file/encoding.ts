/**
 * Namespace names ↔ file names.
 *
 * A namespace may hold any character but control characters and `/`, and
 * up to 255 UTF-8 bytes. File systems are stricter: some fold case
 * (`Abc` = `abc` on macOS and Windows), some normalise Unicode, Windows
 * reserves device names (`CON`, `nul.txt`…) and forbids `<>:"\|?*`, and a
 * file name holds at most 255 bytes (NAME_MAX). So a namespace is
 * percent-encoded into a small alphabet that means the same thing on every
 * one of them:
 *
 * - `a-z`, `0-9`, `-` and `_` stand for themselves;
 * - every other UTF-8 byte, upper-case letters and `.` included, becomes
 *   `%` and two lower-case hex digits (`Abc` → `%41bc`, `..` → `%2e%2e`);
 * - a name that would be a Windows device name (`con`, `nul`, `com1`…)
 *   has its first letter escaped too (`con` → `%63on`).
 *
 * The result is lower-case ASCII without dots, so it can never be `.`,
 * `..`, hidden, or collide with another name when case is folded, and
 * decoding is plain percent-decoding. The data file is `<encoded>.jsonl`.
 * An encoded name longer than {@link MAX_SINGLE_BASE} characters (a long
 * name, or one with many escaped characters) is split into pieces of
 * {@link CHUNK} characters: every piece but the last is a directory named
 * `<piece>.d`, the last one the file, so each path component stays within
 * 255 bytes and the name still decodes from the path alone.
 */

import { validateNamespace } from "../index.js";

/** Suffix of a namespace's data file. */
export const DATA_SUFFIX = ".jsonl";
/** Suffix of a namespace's lock file (never deleted; see docs/file-store.md). */
export const LOCK_SUFFIX = ".lock";
/** Suffix of a namespace's hint file: derived data, see hint.ts. */
export const HINT_SUFFIX = ".hint";
/** Suffix of a directory that holds the rest of a long encoded name. */
export const DIR_SUFFIX = ".d";
/** Suffix of a compaction's temporary file: `<base>.<pid>.<tag>.tmp`. */
export const TEMP_SUFFIX = ".tmp";
/** Longest encoded name kept in one file name (255 bytes minus the longest suffix we add). */
const MAX_SINGLE_BASE = 240;
/** Length of each piece when a long encoded name is split into directories. */
const CHUNK = 240;

const LITERAL = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyz0123456789-_") LITERAL[c.charCodeAt(0)] = 1;
const HEX = "0123456789abcdef";
const RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9]|conin|conout|clock)$/;

/**
 * Encodes a (valid) namespace as a file-system-safe base name: lower-case
 * ASCII from `[a-z0-9_%-]`, collision-free under case folding.
 */
export function encodeName(name: string): string {
  let out = "";
  let simple = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 127 || LITERAL[c] !== 1) {
      simple = false;
      break;
    }
  }
  if (simple) {
    out = name;
  } else {
    const bytes = Buffer.from(name, "utf8");
    for (const b of bytes) {
      out += LITERAL[b] === 1 ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
    }
  }
  if (RESERVED.test(out)) out = `%${HEX[out.charCodeAt(0) >> 4]}${HEX[out.charCodeAt(0) & 15]}${out.slice(1)}`;
  return out;
}

/**
 * Decodes a base name made by {@link encodeName}; `undefined` for
 * anything {@link encodeName} cannot have produced (foreign files).
 */
export function decodeName(encoded: string): string | undefined {
  if (encoded.length === 0 || !/^[a-z0-9_%-]+$/.test(encoded)) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  // Only the canonical spelling counts: `%61` for `a` is not ours.
  return encodeName(name) === encoded ? name : undefined;
}

/**
 * The path of a namespace's data file relative to the store directory, as
 * components: `["<encoded>.jsonl"]`, or for long names
 * `["<piece1>.d", …, "<last>.jsonl"]`.
 */
export function namespacePath(name: string): string[] {
  const encoded = encodeName(name);
  if (encoded.length <= MAX_SINGLE_BASE) return [encoded + DATA_SUFFIX];
  const parts: string[] = [];
  let i = 0;
  for (; encoded.length - i > MAX_SINGLE_BASE; i += CHUNK) parts.push(encoded.slice(i, i + CHUNK) + DIR_SUFFIX);
  parts.push(encoded.slice(i) + DATA_SUFFIX);
  return parts;
}

/**
 * The namespace whose data file is at `parts` (relative components), or
 * `undefined` when that path is not one {@link namespacePath} makes for
 * a valid namespace (a file named after `a/b` or a control character is
 * not a store's: no save can have written it, and no load can read it).
 */
export function namespaceFromPath(parts: readonly string[]): string | undefined {
  const last = parts.at(-1);
  if (last === undefined || !last.endsWith(DATA_SUFFIX)) return undefined;
  let encoded = "";
  for (let i = 0; i < parts.length - 1; i++) {
    const dir = parts[i] as string;
    if (!dir.endsWith(DIR_SUFFIX)) return undefined;
    encoded += dir.slice(0, -DIR_SUFFIX.length);
  }
  encoded += last.slice(0, -DATA_SUFFIX.length);
  const name = decodeName(encoded);
  if (name === undefined || !isValidName(name)) return undefined;
  const canonical = namespacePath(name);
  return canonical.length === parts.length && canonical.every((p, i) => p === parts[i]) ? name : undefined;
}

function isValidName(name: string): boolean {
  try {
    validateNamespace(name);
    return true;
  } catch {
    return false;
  }
}
