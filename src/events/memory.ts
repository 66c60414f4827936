/**
 * `MemoryEventStore`: the seed's in-memory event store, with its defects
 * fixed (limits are errors, positions never restart, subscriptions never
 * drop). Nothing survives the process.
 */
import { BaseEventStore } from "./base.js";
import type { AppendRequest, PlannedAppend } from "./log.js";
import type { EventStoreCapabilities, EventStoreOptions, SnapshotInfo } from "./types.js";

/** Configuration of {@link MemoryEventStore}. */
export interface MemoryEventStoreOptions extends EventStoreOptions {}

/** An event store in process memory. */
export class MemoryEventStore extends BaseEventStore {
  readonly capabilities: EventStoreCapabilities = {
    durable: false,
    retention: true,
    applyRetention: true,
    limits: true,
    persistentSnapshots: false,
  };

  constructor(config: MemoryEventStoreOptions = {}) {
    super(config, "memory-store");
    this.startTimers(false);
  }

  protected async store(request: AppendRequest): Promise<PlannedAppend> {
    return this.commitNow(request);
  }

  /** A memory store has no disk: a snapshot records the point it covers and writes nothing. */
  protected async takeSnapshot(): Promise<SnapshotInfo> {
    return { globalPosition: this.log.lastGlobal, events: this.log.global.length, bytes: 0 };
  }
}
