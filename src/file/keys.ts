/**
 * A set of keys given as byte ranges of buffers, each mapped to a small
 * number (its slot), without making a string per lookup: open addressing
 * over FNV-1a hashes of the bytes, compared byte for byte on a hit. The
 * reader looks up one key per line of a file (a million lines for a
 * hundred thousand keys): a `Map<string, …>` would cost a new string, its
 * hash and its garbage per line.
 */
export class KeyTable {
  /** The buffers whose ranges {@link slot} is given. */
  readonly #buffers: readonly Buffer[];
  /** A copy of every key's bytes, one after the other (compact: lookups compare against it). */
  #arena: Buffer;
  #arenaUsed = 0;
  /** Per bucket: slot + 1, or 0 when empty. */
  #table: Int32Array<ArrayBuffer>;
  #hash: Int32Array<ArrayBuffer>;
  #start: Int32Array<ArrayBuffer>;
  #len: Int32Array<ArrayBuffer>;
  /** Number of keys (slots run from 0 to `size - 1`). */
  size = 0;

  /**
   * @param buffers the buffers whose ranges {@link slot} is given
   * @param expectedKeys keys expected (when known): room for them is made at once
   */
  constructor(buffers: readonly Buffer[], expectedKeys = 0) {
    this.#buffers = buffers;
    const keys = Math.max(1024, expectedKeys);
    let buckets = 1 << 12;
    while (buckets < keys * 2 + 2) buckets *= 2;
    this.#table = new Int32Array(buckets);
    this.#hash = new Int32Array(keys);
    this.#start = new Int32Array(keys);
    this.#len = new Int32Array(keys);
    this.#arena = Buffer.allocUnsafe(Math.max(64 * 1024, keys * 32));
  }

  /** The slot of the key `buffers[b][from, to)`, adding it when new. */
  slot(b: number, from: number, to: number): number {
    return this.#slotOf(this.#buffers[b] as Buffer, from, to);
  }

  /** The slot of a key given as text (its UTF-8 bytes), adding it when new. */
  slotOfText(key: string): number {
    const bytes = Buffer.from(key, "utf8");
    return this.#slotOf(bytes, 0, bytes.length);
  }

  #slotOf(buf: Buffer, from: number, to: number): number {
    let h = 0x811c9dc5;
    for (let i = from; i < to; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    const table = this.#table;
    const mask = table.length - 1;
    const len = to - from;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = (table[i] as number) - 1;
      if (s < 0) {
        table[i] = this.#add(h, buf, from, len) + 1;
        return this.size - 1;
      }
      if (this.#hash[s] === h && this.#len[s] === len && this.#equal(s, buf, from, len)) return s;
    }
  }

  #equal(s: number, buf: Buffer, from: number, len: number): boolean {
    const other = this.#arena;
    const at = this.#start[s] as number;
    for (let i = 0; i < len; i++) if (other[at + i] !== buf[from + i]) return false;
    return true;
  }

  #add(h: number, buf: Buffer, from: number, len: number): number {
    const s = this.size++;
    if (s === this.#hash.length) {
      this.#hash = grow(this.#hash);
      this.#start = grow(this.#start);
      this.#len = grow(this.#len);
    }
    if (this.#arenaUsed + len > this.#arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.#arena.length * 2, this.#arenaUsed + len));
      this.#arena.copy(bigger, 0, 0, this.#arenaUsed);
      this.#arena = bigger;
    }
    // Keys are short: a loop costs less than `buf.copy`'s call.
    const arena = this.#arena;
    const at = this.#arenaUsed;
    for (let i = 0; i < len; i++) arena[at + i] = buf[from + i] as number;
    this.#hash[s] = h;
    this.#start[s] = this.#arenaUsed;
    this.#len[s] = len;
    this.#arenaUsed += len;
    if (this.size * 2 > this.#table.length) this.#rehash();
    return s;
  }

  #rehash(): void {
    const table = new Int32Array(this.#table.length * 2);
    const mask = table.length - 1;
    for (let s = 0; s < this.size; s++) {
      let i = (this.#hash[s] as number) & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = s + 1;
    }
    this.#table = table;
  }
}

/** A copy of `a` twice as long. */
export function grow(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
