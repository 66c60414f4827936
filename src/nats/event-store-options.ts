/** The options of `NatsEventStore.open`, their defaults and their checks. */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  EVENT_STORE_DEFAULTS,
  EVENT_STORE_OPTION_NAMES,
  EVENT_STORE_RENAMED_OPTIONS,
  type EventStoreOptions,
} from "../events/index.js";
import { OptionChecker } from "../index.js";
import { natsInternalsOf } from "./internal.js";
import { checkPlacement, MAX_MAX_AGE_MS, MIN_MAX_AGE_MS, NatsStorage } from "./options.js";
import { requireReplicatedCompareAndSet } from "./server.js";

/** Options of `NatsEventStore.open`: those of every event store, and where the events live. */
export interface NatsEventStoreOptions extends EventStoreOptions {
  /** An open NATS connection (required); the store never closes it. */
  client: NatsConnection;
  /** JetStream stream name (`[-_a-zA-Z0-9]`), created if missing. @default "STATELOG_EVENTS" */
  stream?: string;
  /**
   * Subject prefix of the stream's subjects (`<prefix>.<stream id>`): not
   * under `$` (the server's own subjects: `$JS`, `$KV`, `$SYS`…), and no
   * other stream's subjects may overlap `<prefix>.>`.
   * @default "statelog.events.<stream>"
   */
  subjectPrefix?: string;
  /** Replicas of a stream this call creates (1 to 5). @default 1 */
  replicas?: number;
  /** Storage of a stream this call creates. @default "file" */
  storage?: NatsStorage;
  /**
   * Largest event payload, in bytes of UTF-8 JSON. Without it, the largest
   * the server carries: its `max_payload` minus {@link EVENT_ENVELOPE_BYTES},
   * at most 1 MiB. A limit the server cannot carry is refused by `open`.
   * @default min(1048576, max_payload - 4096)
   */
  maxValueBytes?: number;
  /**
   * How long `open`, an `append` and `catchUp()` wait without progress for
   * this store's index to hold what the server stored (up to the append's
   * acknowledged sequence), or for the server to answer the stream info
   * request `catchUp()` starts with, before they fail with
   * `UnavailableError`, in milliseconds: the bound when the server (or the
   * whole cluster) stops answering, after it acknowledged an append too (the
   * append may be stored then). Time without progress, not in all: every
   * message read starts it again, so a large stream takes as long to read
   * as it needs. An integer >= 1.
   * @default 30000
   */
  catchUpTimeoutMs?: number;
}

/** Defaults of {@link NatsEventStoreOptions} (the others are those of every event store). */
export const NATS_EVENT_STORE_DEFAULTS = {
  /** @default "STATELOG_EVENTS" */
  stream: "STATELOG_EVENTS",
  /** @default 1 */
  replicas: 1,
  /** @default "file" */
  storage: NatsStorage.File,
  /** The largest default limit; less when the server's `max_payload` cannot carry it. @default 1048576 (1 MiB) */
  maxValueBytes: EVENT_STORE_DEFAULTS.maxValueBytes,
  /** In ms. @default 30000 */
  catchUpTimeoutMs: 30_000,
} as const;

/** The options a `NatsEventStore` adds to those of every event store. */
export const NATS_EVENT_STORE_OWN_OPTION_NAMES: readonly string[] = [
  "client",
  "stream",
  "subjectPrefix",
  "replicas",
  "storage",
  "catchUpTimeoutMs",
];
const OPTION_NAMES = [...EVENT_STORE_OPTION_NAMES, ...NATS_EVENT_STORE_OWN_OPTION_NAMES];
const RENAMED_OPTIONS: Readonly<Record<string, string>> = { ...EVENT_STORE_RENAMED_OPTIONS, bucket: "stream" };

/** The checked options of a `NatsEventStore`. */
export interface EventStoreSettings {
  client: NatsConnection;
  stream: string;
  prefix: string;
  replicas: number;
  storage: NatsStorage;
  retentionMs: number;
  maxValueBytes: number;
  /** Whether `maxValueBytes` was given (else it follows the server and the stream). */
  maxValueBytesGiven: boolean;
  catchUpTimeoutMs: number;
  /** The internal opt-in of statelog's tests: a replicated stream on any server (see internal.ts). */
  replicatedCasOnAnyServer: boolean;
}

/**
 * Room `open` reserves next to an event of `maxValueBytes` in one append
 * message, in bytes: `{"first":…,"events":[{"id","type","timestamp","data","metadata"}]}`
 * with a short id, type and metadata, and the expected-sequence headers.
 * A batch still over the server's `max_payload` is a `TooLargeError`.
 */
export const EVENT_ENVELOPE_BYTES = 4096;

/**
 * A subject prefix: one or more non-empty tokens of printable characters but "." "*" ">", joined by ".", not
 * starting with "$" (the server's own subjects: `$JS.API`, `$KV.<bucket>`, `$SYS`…).
 */
const SUBJECT_PREFIX = /^[^\s.*>$][^\s.*>]*(\.[^\s.*>]+)*$/u;

/**
 * Room for the headers of an append (its expected last sequences) next to
 * its body, in bytes: a message's size counts its headers, for the
 * server's `max_payload` and for a stream's `max_msg_size` alike.
 */
export const APPEND_HEADER_BYTES = 128;

/** `retentionDurationMs`, also the `max_age` of a stream `open` creates: 0 (none) or what the server takes. */
function checkRetention(check: OptionChecker<NatsEventStoreOptions>): number {
  const ms = check.number("retentionDurationMs", { min: 0 });
  check.custom("retentionDurationMs", () =>
    ms === 0 || (ms >= MIN_MAX_AGE_MS && ms <= MAX_MAX_AGE_MS)
      ? undefined
      : `0 (none) or from ${MIN_MAX_AGE_MS} to ${MAX_MAX_AGE_MS} ms (the stream's max_age)`,
  );
  return ms;
}

/**
 * Checks the options a NATS event store adds (the common ones are checked
 * by `BaseEventStore`), and refuses unknown ones; without I/O.
 * @throws ConfigurationError naming the option, what it accepts and what it got
 * @throws UnsupportedError for `replicas` > 1 on a server whose compare-and-set does not hold on replicated
 *   streams (`NatsFeature.ReplicatedCompareAndSet`): every append is one
 */
export function checkEventStoreOptions(options: NatsEventStoreOptions): EventStoreSettings {
  const check = new OptionChecker("NatsEventStore", options, NATS_EVENT_STORE_DEFAULTS).known(
    OPTION_NAMES,
    RENAMED_OPTIONS,
  );
  const { name: stream, ...place } = checkPlacement(check, options, "JetStream stream", EVENT_ENVELOPE_BYTES);
  const settings: EventStoreSettings = {
    ...place,
    stream,
    prefix:
      options.subjectPrefix === undefined
        ? `statelog.events.${stream}`
        : check.custom<"subjectPrefix", string>("subjectPrefix", (v) =>
            typeof v === "string" && SUBJECT_PREFIX.test(v)
              ? undefined
              : 'a NATS subject of dot-separated tokens without spaces, "*" or ">", not starting with "$" ' +
                '(e.g. "app.events"; subjects under "$" are the server\'s own)',
          ),
    retentionMs: options.retentionDurationMs === undefined ? 0 : checkRetention(check),
    catchUpTimeoutMs: check.integer("catchUpTimeoutMs", { min: 1 }),
    replicatedCasOnAnyServer: natsInternalsOf(options).replicatedCasOnAnyServer === true,
  };
  requireReplicatedCompareAndSet(settings.client, eventStreamPlacement(settings, settings.replicas, false));
  return settings;
}

/** The stream of `settings` as `requireReplicatedCompareAndSet` takes it. */
export function eventStreamPlacement(settings: EventStoreSettings, replicas: number, found: boolean) {
  return {
    owner: "NatsEventStore",
    where: `JetStream stream ${JSON.stringify(settings.stream)}`,
    stream: settings.stream,
    replicas,
    found,
    allowed: settings.replicatedCasOnAnyServer,
  };
}
