/**
 * `statelog/events`: event streams with cursors, replay, live
 * subscriptions, retention and snapshots — `MemoryEventStore` in memory;
 * `FileEventStore` (durable on disk) is in `statelog/file`; one contract.
 */
export { BaseEventStore } from "./base.js";
export { BehindRetentionError, EventErrorCode, isBehindRetentionError } from "./errors.js";
export { type AppendRequest, EventLog, type Limits, type PlannedAppend, type StreamState } from "./log.js";
export { MemoryEventStore, type MemoryEventStoreOptions } from "./memory.js";
export {
  type AppendOptions,
  type AppendResult,
  type CreateEventOptions,
  Cursor,
  createEvent,
  EVENT_STORE_DEFAULTS,
  type EventCallOptions,
  type EventInput,
  type EventMetadata,
  type EventStore,
  type EventStoreCapabilities,
  type EventStoreMetrics,
  type EventStoreOptions,
  type EventStoreStats,
  type EventSubscription,
  ExpectedVersion,
  type From,
  type ReadResult,
  type RecordedEvent,
  type SnapshotInfo,
  type StreamInfo,
  type SubscribeOptions,
} from "./types.js";
export { deepFreeze, EVENT_OVERHEAD_BYTES, type PreparedEvent, prepareEvents } from "./validate.js";
