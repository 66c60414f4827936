/**
 * An estimate of how many distinct keys a namespace's saves wrote, for
 * the automatic compaction's trigger (`lines > ratio × keys`): a
 * HyperLogLog sketch of 1,024 one-byte registers (standard error about
 * 3.3 %), fed with each saved change's key since the last scan. Without it, a file this
 * process wrote from empty would be scanned (to count its keys) at
 * `minLines`, then at `ratio` times as many lines, and so on, each scan
 * finding it not worth compacting. The store counts the estimate 10 %
 * high (three standard errors) and uses it only when it exceeds the key
 * count of the last scan by 20 %: it never makes a compaction start
 * earlier, and seldom makes one scan a file to find it not worth it.
 */

/** log2 of the number of registers. */
const BITS = 10;
const REGISTERS = 1 << BITS;
/** The bias correction of HyperLogLog for {@link REGISTERS} registers. */
const ALPHA = 0.7213 / (1 + 1.079 / REGISTERS);

export class KeySketch {
  readonly #registers = new Uint8Array(REGISTERS);
  /** The estimate, cached until the next register change (-1: to compute). */
  #estimate = 0;

  /** Adds the key of a change (entity type and id). */
  add(entityType: string, entityId: string): void {
    let h = 0x811c9dc5;
    for (let i = 0; i < entityType.length; i++) h = Math.imul(h ^ entityType.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0x2f, 0x01000193); // "/": entity types never hold one
    for (let i = 0; i < entityId.length; i++) h = Math.imul(h ^ entityId.charCodeAt(i), 0x01000193);
    // Finalizer (murmur3's fmix32): FNV-1a alone spreads short keys badly over the top bits.
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    const register = h >>> (32 - BITS);
    const rest = (h << BITS) | (1 << (BITS - 1)); // the sentinel bit bounds the rank
    const rank = Math.clz32(rest) + 1;
    if (rank > (this.#registers[register] as number)) {
      this.#registers[register] = rank;
      this.#estimate = -1;
    }
  }

  /** The estimated number of distinct keys added. */
  estimate(): number {
    if (this.#estimate >= 0) return this.#estimate;
    let sum = 0;
    let zeros = 0;
    for (const r of this.#registers) {
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    let e = (ALPHA * REGISTERS * REGISTERS) / sum;
    // Small counts: linear counting is the better estimate.
    if (e <= 2.5 * REGISTERS && zeros > 0) e = REGISTERS * Math.log(REGISTERS / zeros);
    this.#estimate = Math.round(e);
    return this.#estimate;
  }

  /** Forgets every key (after a scan counted the file's keys exactly). */
  clear(): void {
    this.#registers.fill(0);
    this.#estimate = 0;
  }
}
