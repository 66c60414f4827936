/**
 * `MemorySnapshotStore`: the snapshot-store contract (statelog/repository)
 * in process memory. States are copied in and out (`structuredClone`, or
 * for a tree of plain objects and arrays an equivalent copy that is many
 * times faster), so neither the caller nor a later load can change a
 * stored snapshot.
 */
import { type CallOptions, OpenState, throwIfAborted } from "../index.js";
import {
  type AggregateSnapshot,
  checkSnapshot,
  checkSnapshotLoad,
  checkSnapshotStoreOptions,
  pickSnapshot,
  retainSnapshots,
  type SnapshotLoadOptions,
  type SnapshotStore,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
} from "../repository/index.js";

/** A stored snapshot: its own copy of the state, and whether {@link copyTree} copies that state. */
interface Stored extends AggregateSnapshot {
  readonly plain: boolean;
}

/** Deepest state {@link isPlainTree} accepts (deeper ones are copied with `structuredClone`). */
const MAX_PLAIN_DEPTH = 256;

/**
 * Whether `value` is a tree of plain objects, dense arrays without extra
 * properties and primitives, each object reached once (no shared or
 * cyclic reference): a value {@link copyTree} copies exactly as
 * `structuredClone` does, in a fraction of its time. `value` is a
 * `structuredClone` output (data properties only, no symbol keys).
 */
function isPlainTree(value: unknown, seen: Set<object>, depth: number): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (depth > MAX_PLAIN_DEPTH || seen.has(value)) return false;
  seen.add(value);
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype || Object.keys(value).length !== value.length) return false;
    for (let i = 0; i < value.length; i++) if (!isPlainTree(value[i], seen, depth + 1)) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (!isPlainTree((value as Record<string, unknown>)[key], seen, depth + 1)) return false;
  }
  return true;
}

/** A copy of a value {@link isPlainTree} accepted. */
function copyTree(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyTree(value[i]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const copy = copyTree((value as Record<string, unknown>)[key]);
    // An own "__proto__" key is data (JSON.parse makes one): assigned, it would set the copy's prototype instead.
    if (key === "__proto__")
      Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
    else out[key] = copy;
  }
  return out;
}

/** Options of {@link MemorySnapshotStore}: those of every snapshot store. */
export interface MemorySnapshotStoreOptions extends SnapshotStoreOptions {}

/** Snapshots of aggregates in process memory. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly capabilities: SnapshotStoreCapabilities = { durable: false };
  readonly #max: number;
  readonly #snapshots = new Map<string, Stored[]>();
  readonly #open = new OpenState("snapshot store");

  /** @throws ConfigurationError for an invalid or unknown option */
  constructor(options: MemorySnapshotStoreOptions = {}) {
    this.#max = checkSnapshotStoreOptions("MemorySnapshotStore", options, []).maxSnapshotsPerStream;
  }

  /** A new, empty store (the same as `new MemorySnapshotStore(options)`). */
  static async open(options: MemorySnapshotStoreOptions = {}): Promise<MemorySnapshotStore> {
    return new MemorySnapshotStore(options);
  }

  async save(snapshot: AggregateSnapshot, options?: CallOptions): Promise<void> {
    this.#open.check();
    throwIfAborted(options?.signal);
    const s = checkSnapshot(snapshot);
    const state = structuredClone(s.state);
    const copy: Stored = { ...s, state, createdAt: new Date(s.createdAt), plain: isPlainTree(state, new Set(), 0) };
    this.#snapshots.set(s.streamId, retainSnapshots(this.#snapshots.get(s.streamId) ?? [], copy, this.#max));
  }

  async load(streamId: string, options?: SnapshotLoadOptions): Promise<AggregateSnapshot | undefined> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, options);
    const found = pickSnapshot(this.#snapshots.get(streamId) ?? [], options);
    if (found === undefined) return undefined;
    return {
      streamId: found.streamId,
      version: found.version,
      snapshotVersion: found.snapshotVersion,
      state: found.plain ? copyTree(found.state) : structuredClone(found.state),
      createdAt: new Date(found.createdAt),
    };
  }

  async delete(streamId: string, options?: CallOptions): Promise<boolean> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, undefined);
    return this.#snapshots.delete(streamId);
  }

  /** Drops every snapshot; later calls fail with a `ClosedError`. Idempotent. */
  async close(): Promise<void> {
    if (this.#open.close()) this.#snapshots.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
