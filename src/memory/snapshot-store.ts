/**
 * `MemorySnapshotStore`: the snapshot-store contract (statelog/repository)
 * in process memory. States are copied in and out (`structuredClone`), so
 * neither the caller nor a later load can change a stored snapshot.
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

/** Options of {@link MemorySnapshotStore}: those of every snapshot store. */
export interface MemorySnapshotStoreOptions extends SnapshotStoreOptions {}

/** Snapshots of aggregates in process memory. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly capabilities: SnapshotStoreCapabilities = { durable: false };
  readonly #max: number;
  readonly #snapshots = new Map<string, AggregateSnapshot[]>();
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
    const copy = { ...s, state: structuredClone(s.state), createdAt: new Date(s.createdAt) };
    this.#snapshots.set(s.streamId, retainSnapshots(this.#snapshots.get(s.streamId) ?? [], copy, this.#max));
  }

  async load(streamId: string, options?: SnapshotLoadOptions): Promise<AggregateSnapshot | undefined> {
    this.#open.check();
    throwIfAborted(options?.signal);
    checkSnapshotLoad(streamId, options);
    const found = pickSnapshot(this.#snapshots.get(streamId) ?? [], options);
    return found === undefined
      ? undefined
      : { ...found, state: structuredClone(found.state), createdAt: new Date(found.createdAt) };
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
