/**
 * Key encoding for NATS KV and subjects. A KV key may only hold
 * `[-/_=.a-zA-Z0-9]` and `.` separates subject tokens, while statelog names
 * may hold anything but control characters. Each name is
 * encoded as ONE token:
 *
 * - `A-Z`, `a-z`, `0-9` and `-` stay as they are;
 * - every other UTF-8 byte becomes `_` followed by two lowercase hex digits
 *   (`.` → `_2e`, `/` → `_2f`, `_` → `_5f`, space → `_20`, `é` → `_c3_a9`).
 *
 * The mapping is injective (`_` only ever starts an escape) and never yields
 * an empty token, `*`, `>` or a leading/trailing `.`, so keys stay legal and
 * a name can never escape its prefix or act as a wildcard.
 */
import { CorruptionError } from "../index.js";

const PLAIN = /^[A-Za-z0-9-]+$/;
const PLAIN_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  PLAIN_BYTE[c] = /[A-Za-z0-9-]/.test(ch) ? 1 : 0;
}
const HEX = "0123456789abcdef";

/** Encodes one name (namespace, entity type, entity id…) as one legal subject token. */
export function encodeToken(name: string): string {
  if (PLAIN.test(name)) return name;
  const bytes = Buffer.from(name, "utf8");
  let out = "";
  for (const b of bytes) {
    if (PLAIN_BYTE[b] === 1) out += String.fromCharCode(b);
    else out += `_${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * Decodes a token written by {@link encodeToken}.
 * @throws CorruptionError for a token no encoder could have written
 */
export function decodeToken(token: string, where = "NATS key"): string {
  if (PLAIN.test(token)) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 95 /* _ */) {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) throw new CorruptionError(where, undefined, `bad escape in key token ${token}`);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (c < 128 && PLAIN_BYTE[c] === 1) {
      bytes.push(c);
    } else {
      throw new CorruptionError(where, undefined, `character ${JSON.stringify(token[i])} in key token ${token}`);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The KV key of an entity of a store: `<namespace>.<entityType>.<entityId>`, each encoded. */
export function entityKey(namespace: string, entityType: string, entityId: string): string {
  return `${encodeToken(namespace)}.${encodeToken(entityType)}.${encodeToken(entityId)}`;
}

/** Splits a store entity key back into its names. */
export function parseEntityKey(key: string): { namespace: string; entityType: string; entityId: string } {
  const parts = key.split(".");
  if (parts.length !== 3) throw new CorruptionError("NATS key", undefined, `not a statelog entity key: ${key}`);
  return {
    namespace: decodeToken(parts[0] as string),
    entityType: decodeToken(parts[1] as string),
    entityId: decodeToken(parts[2] as string),
  };
}
