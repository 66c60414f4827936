/**
 * `statelog/events`: the event-store contract — event streams with
 * cursors, replay, live subscriptions, retention and snapshots — its
 * defaults and errors, and the public base a backend author builds an
 * event store on (`BaseEventStore`, `EventLog`, `prepareEvents`, …; see
 * docs/backends.md). The implementations live in their backends:
 * `MemoryEventStore` in `statelog/memory`, `FileEventStore` in
 * `statelog/file`, `NatsEventStore` in `statelog/nats`.
 */

// The base for backend authors.
export { BaseEventStore } from "./base.js";
export {
  BehindRetentionError,
  EventErrorCode,
  isBehindRetentionError,
} from "./errors.js";
export { type AppendRequest, Deque, EventLog, type Limits, type PlannedAppend, type StreamState } from "./log.js";
// The contract.
export {
  type AppendOptions,
  type AppendResult,
  type CreateEventOptions,
  Cursor,
  createEvent,
  EVENT_STORE_DEFAULTS,
  EVENT_STORE_OPTION_NAMES,
  EVENT_STORE_RENAMED_OPTIONS,
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
export {
  checkDate,
  checkLimit,
  deepFreeze,
  EVENT_OVERHEAD_BYTES,
  frozenTimestamp,
  type PreparedEvent,
  positionOf,
  prepareEvents,
  validateExpectedVersion,
  validateStreamId,
} from "./validate.js";
