/**
 * `MemoryEventStore`: the event-store contract in process memory. Limits
 * are errors, positions never restart, subscriptions never drop a slow
 * reader. Nothing survives the process.
 */
import {
  type AppendRequest,
  BaseEventStore,
  type EventStoreCapabilities,
  type EventStoreOptions,
  type PlannedAppend,
  type SnapshotInfo,
} from "../events/index.js";

/** Options of {@link MemoryEventStore}: those of every event store. */
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

  /** @throws ConfigurationError for an invalid or unknown option */
  constructor(options: MemoryEventStoreOptions = {}) {
    super(options, "memory-store", "MemoryEventStore", []);
    this.startTimers(false);
  }

  /** A new, empty store (the same as `new MemoryEventStore(options)`: nothing to connect to). */
  static async open(options: MemoryEventStoreOptions = {}): Promise<MemoryEventStore> {
    return new MemoryEventStore(options);
  }

  protected async store(request: AppendRequest): Promise<PlannedAppend> {
    return this.commitNow(request);
  }

  /** A memory store has no disk: a snapshot records the point it covers and writes nothing. */
  protected async takeSnapshot(): Promise<SnapshotInfo> {
    return { globalPosition: this.log.lastGlobal, events: this.log.global.length, bytes: 0 };
  }
}
