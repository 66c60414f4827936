/**
 * Kafka's partitioning hash: the Java client's `Utils.murmur2` and
 * `toPositive(murmur2(key)) % partitions`, byte for byte. librdkafka's
 * `murmur2` partitioner computes the same value, so every Kafka client
 * that partitions by namespace agrees with {@link partitionForNamespace}.
 */
import { ValidationError } from "../index.js";

/** The initial value of Kafka's murmur2. */
const INITIAL = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 of `data` (a string is hashed as its UTF-8 bytes), as a
 * signed 32-bit integer, like Java's `Utils.murmur2`.
 * @example murmur2("21") === -973932308
 */
export function murmur2(data: string | Uint8Array): number {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const length = bytes.length;
  let h = (INITIAL ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (bytes[i4]! & 0xff) | ((bytes[i4 + 1]! & 0xff) << 8) | ((bytes[i4 + 2]! & 0xff) << 16) | (bytes[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  const rem = length & 3;
  if (rem === 3) h ^= (bytes[tail + 2]! & 0xff) << 16;
  if (rem >= 2) h ^= (bytes[tail + 1]! & 0xff) << 8;
  if (rem >= 1) {
    h ^= bytes[tail]! & 0xff;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition that holds `namespace`'s changelog: Kafka's default
 * partitioner applied to the namespace alone,
 * `(murmur2(namespace) & 0x7fffffff) % partitions`.
 * @param partitions the topic's partition count (a positive integer)
 * @throws ValidationError when `partitions` is not a positive integer
 */
export function partitionForNamespace(namespace: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new ValidationError("partitions", `must be a positive integer, got ${String(partitions)}`);
  }
  return (murmur2(namespace) & 0x7fffffff) % partitions;
}

/**
 * Alias of {@link partitionForNamespace} (the changelog's original
 * spelling, where a namespace was called a workspace).
 */
export const partitionForWorkspace: (namespace: string, partitions: number) => number = partitionForNamespace;
