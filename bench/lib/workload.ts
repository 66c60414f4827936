/**
 * The benchmark workload of issue 2: `changes` changes over `entities`
 * entities of ~300 B JSON each (~10 changes per entity), `deletedShare`
 * of them deleted by the end, in batches. Deterministic (seeded PRNG) and
 * lazy: a batch is built when it is asked for, so a run of 1,000,000
 * changes never holds more than one batch of them.
 *
 * Shape: the first `entities` changes create every entity once, in order;
 * every later change updates a random live entity, except at the
 * positions (chosen up front) where one of the doomed entities (every
 * `1 / deletedShare`-th) is deleted. A deleted entity is never touched
 * again, so the final state has `entities × (1 - deletedShare)` live
 * entities and as many tombstones as deletes.
 */
import type { ChangeInput } from "../../src/core/change.js";

/** Size and shape of a workload. */
export interface WorkloadOptions {
  /** Total number of changes. @default 1_000_000 */
  changes?: number;
  /** Number of distinct entities. @default 100_000 */
  entities?: number;
  /** Changes per batch (one `save` each). @default 1_000 */
  batchSize?: number;
  /** Share of entities deleted by the end, 0..1. @default 0.02 */
  deletedShare?: number;
  /** PRNG seed. @default 42 */
  seed?: number;
  /** Namespace of every change. @default "bench" */
  namespace?: string;
}

/** The full workload of issue 2. */
export const FULL_WORKLOAD: Required<WorkloadOptions> = {
  changes: 1_000_000,
  entities: 100_000,
  batchSize: 1_000,
  deletedShare: 0.02,
  seed: 42,
  namespace: "bench",
};

/** A tenth of it, for smoke runs (`--quick`). */
export const QUICK_WORKLOAD: Required<WorkloadOptions> = {
  ...FULL_WORKLOAD,
  changes: 100_000,
  entities: 10_000,
};

/** mulberry32: a small, fast, deterministic PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = ["deployment", "environment", "resource"] as const;
const REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"] as const;
const TIERS = ["frontend", "backend", "data", "batch"] as const;
const ENVS = ["production", "staging", "development", "qa"] as const;
const STATUSES = ["pending", "running", "succeeded", "failed", "paused"] as const;

function pick<T>(rng: () => number, values: readonly T[]): T {
  return values[Math.floor(rng() * values.length)] as T;
}

function hex(rng: () => number, length: number): string {
  let s = "";
  while (s.length < length) s += Math.floor(rng() * 0x100000000).toString(16);
  return s.slice(0, length);
}

/** Entity type of entity number `k`. */
export function entityTypeOf(k: number): string {
  return TYPES[k % TYPES.length] as string;
}

/** Entity id of entity number `k`. */
export function entityIdOf(k: number): string {
  return `e-${k.toString().padStart(7, "0")}`;
}

/** One entity of ~300 bytes of JSON: version `version` of entity number `k`. */
export function makeEntity(rng: () => number, k: number, version: number, at: Date): Record<string, unknown> {
  return {
    id: entityIdOf(k),
    name: `${entityTypeOf(k)}-${k}`,
    version,
    status: pick(rng, STATUSES),
    region: pick(rng, REGIONS),
    replicas: 1 + Math.floor(rng() * 12),
    image: `reg.example.com/app-${k % 1000}:${version}.${hex(rng, 8)}`,
    labels: { env: pick(rng, ENVS), tier: pick(rng, TIERS) },
    limits: { cpuMillis: 250 * (1 + Math.floor(rng() * 8)), memoryMiB: 128 * (1 + Math.floor(rng() * 16)) },
    checksum: hex(rng, 8),
    updatedAt: at.toISOString(),
  };
}

/** The counts a workload ends with (computed from its options, not by running it). */
export interface WorkloadSummary extends Required<WorkloadOptions> {
  /** Number of batches. */
  readonly batches: number;
  /** Entities live at the end. */
  readonly live: number;
  /** Entities deleted by the end (tombstones). */
  readonly deleted: number;
}

/** The resolved options and final counts of a workload. */
export function summarize(options: WorkloadOptions = {}): WorkloadSummary {
  const o = { ...FULL_WORKLOAD, ...options };
  const deleted = countDoomed(o.entities, o.deletedShare);
  return { ...o, batches: Math.ceil(o.changes / o.batchSize), live: o.entities - deleted, deleted };
}

function doomStride(deletedShare: number): number {
  return deletedShare > 0 ? Math.max(1, Math.round(1 / deletedShare)) : Number.POSITIVE_INFINITY;
}

function countDoomed(entities: number, deletedShare: number): number {
  const stride = doomStride(deletedShare);
  return Number.isFinite(stride) ? Math.ceil(entities / stride) : 0;
}

/** Base time of the workload's timestamps; change `i` happens `i` ms later. */
const EPOCH = Date.UTC(2025, 0, 1);

/**
 * Yields the workload's batches, built lazily. Every call starts over from
 * the same PRNG seed, so each pass yields exactly the same changes.
 */
export function* batches(options: WorkloadOptions = {}): Generator<ChangeInput[]> {
  const o = summarize(options);
  if (o.changes < o.entities + o.deleted) {
    throw new RangeError(`workload: ${o.changes} changes cannot create ${o.entities} entities and delete ${o.deleted}`);
  }
  const rng = prng(o.seed);
  const stride = doomStride(o.deletedShare);
  // Position (change index) → entity deleted there. Positions lie after the creation phase.
  const deleteAt = new Map<number, number>();
  const updatePhase = o.changes - o.entities;
  for (let k = 0; k < o.entities; k += stride) {
    let pos = o.entities + Math.floor(rng() * updatePhase);
    while (deleteAt.has(pos)) pos = o.entities + ((pos - o.entities + 1) % updatePhase);
    deleteAt.set(pos, k);
  }
  const dead = new Uint8Array(o.entities);
  const versions = new Uint32Array(o.entities);
  let i = 0;
  while (i < o.changes) {
    const end = Math.min(o.changes, i + o.batchSize);
    const batch: ChangeInput[] = new Array(end - i);
    for (let j = 0; i < end; i++, j++) {
      const timestamp = new Date(EPOCH + i);
      const doomed = deleteAt.get(i);
      if (doomed !== undefined) {
        dead[doomed] = 1;
        batch[j] = {
          namespace: o.namespace,
          changeType: "unset",
          entityType: entityTypeOf(doomed),
          entityId: entityIdOf(doomed),
          timestamp,
        };
        continue;
      }
      let k = i;
      if (i >= o.entities) {
        do k = Math.floor(rng() * o.entities);
        while (dead[k] === 1);
      }
      const version = ++versions[k]!;
      batch[j] = {
        namespace: o.namespace,
        changeType: "set",
        entityType: entityTypeOf(k),
        entityId: entityIdOf(k),
        entity: makeEntity(rng, k, version, timestamp),
        timestamp,
      };
    }
    yield batch;
  }
}
