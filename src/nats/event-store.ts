/**
 * `NatsEventStore`: the event-store contract (statelog/events) on a
 * JetStream stream.
 *
 * Layout: one JetStream stream per store; an event stream `s` is the
 * subject `<prefix>.<encodeToken(s)>`; one append is ONE message (so a
 * batch is atomic) whose body is `{"first":<position of its first
 * event>,"events":[{id,type,timestamp,data,metadata?}…]}`. Appends are
 * compare-and-set on the subject's last sequence (`Nats-Expected-Last-
 * Subject-Sequence`), so positions are gap-free and an expected version is
 * checked against what the server stored, not against a stale copy.
 *
 * Reads and subscriptions are served from an in-memory index (the shared
 * `EventLog` of statelog/events) fed by an ordered consumer over the whole
 * stream, in stream order: every process sees the same positions, and the
 * subscription machinery of the memory store gives the same no-gap /
 * no-duplicate / caught-up guarantees. An append resolves once the server
 * acknowledged it AND the index has ingested it. The index holds the
 * stream it was read from: a message it cannot place (not an append, a
 * stream id whose positions skip some) or a stream whose sequences started
 * again (deleted and created again, emptied by a restart) fails the store
 * for good with a `CorruptionError`, instead of serving the index as if it
 * matched the server.
 */

import type {
  Consumer,
  ConsumerMessages,
  ConsumerNotification,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
  StreamInfo,
} from "@nats-io/jetstream";
import {
  type AppendRequest,
  BaseEventStore,
  type EventCallOptions,
  type EventInput,
  type EventStoreCapabilities,
  type PlannedAppend,
  prepareEvents,
  type RecordedEvent,
  type SnapshotInfo,
  type StreamState,
} from "../events/index.js";
import {
  AbortError,
  ClosedError,
  ConfigurationError,
  CorruptionError,
  isClosedError,
  messageOf,
  sleep,
  TooLargeError,
  throwIfAborted,
  UnavailableError,
} from "../index.js";
import { loadNatsModules } from "./client.js";
import { creationRefusal, isJetStreamApiError, isWrongLastSequence, natsError } from "./errors.js";
import {
  APPEND_HEADER_BYTES,
  checkEventStoreOptions,
  EVENT_ENVELOPE_BYTES,
  type EventStoreSettings,
  eventStreamPlacement,
  NATS_EVENT_STORE_OWN_OPTION_NAMES,
  type NatsEventStoreOptions,
} from "./event-store-options.js";
import { decodeToken, encodeToken } from "./keys.js";
import { NatsStorage } from "./options.js";
import { bucketValueLimit, serverMaxPayload } from "./payload.js";
import { retryingGet } from "./reader.js";
import { requireReplicatedCompareAndSet } from "./server.js";
import { LastMessage, LOW_LAST_SEQUENCE_CHECKS, LOW_LAST_SEQUENCE_PAUSE_MS } from "./stream-checks.js";

const TD = new TextDecoder();
const UNLIMITED = { maxEventsPerStream: 0, maxStreams: 0 };

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** How many ingested messages' events an append can still take back after retention expired them. */
const RECENT_MESSAGES = 1024;

/** The key of the chain of appends that create stream ids (no stream id is empty). */
const NEW_STREAMS = "";

/**
 * How long the ordered consumer may stay silent (no delivery, and none of
 * the heartbeats and pull time-outs that come each second while it waits)
 * before the store replaces it with a new one from the sequence after the
 * last one indexed, and how often that is checked.
 * Its node may be down for good: the NATS client then asks for the
 * consumer's info again and again, neither delivering nor pulling, and
 * nothing else would read another process's appends for live subscriptions
 * (fills read only what an append or `catchUp` waits for). The server
 * places the new consumer on a node that is up.
 */
const CONSUMER_SILENCE_MS = 5_000;
const SILENCE_CHECK_MS = 1_000;

/**
 * The notifications of a consumer that come from the server delivering it
 * (not the client's own pulls, which go on while the consumer's info is
 * answered but nothing it sends arrives).
 */
const SIGNS_OF_LIFE: ReadonlySet<ConsumerNotification["type"]> = new Set([
  "heartbeat",
  "debug",
  "discard",
  "ordered_consumer_recreated",
]);

/**
 * How much younger than the stream's age limit the last indexed event of a
 * stream id may look when the server's expiry explains a skip of its
 * positions: the difference between the clocks of the writer (the event's
 * timestamp), the server (which expires by the time it received the
 * message) and this store, plus the time between a write and its receipt.
 */
function expirySkewMs(maxAgeMs: number): number {
  return 2_000 + Math.min(60_000, maxAgeMs / 10);
}

/**
 * Refuses a stream whose subjects are not `<prefix>.>` alone: the store
 * reads the whole stream (a filter list needs nats-server 2.10), so its
 * appends must land in it and every message in it must be one of them.
 * @throws ConfigurationError naming the stream's subjects and the prefix
 */
function checkSubjects(stream: string, prefix: string, subjects: readonly string[] | undefined): void {
  const own = `${prefix}.>`;
  const [only, ...more] = subjects ?? [];
  if (only === own && more.length === 0) return;
  const hint =
    only !== undefined && more.length === 0 && /^[^\s*>]+\.>$/u.test(only)
      ? `open it with subjectPrefix ${JSON.stringify(only.slice(0, -2))}, the one it was created with, or use another stream`
      : "it was not created by a NatsEventStore: use another stream";
  throw new ConfigurationError(
    `NatsEventStore: stream ${JSON.stringify(stream)} has the subjects ${JSON.stringify(subjects ?? [])}, ` +
      `not ${JSON.stringify([own])} as subjectPrefix ${JSON.stringify(prefix)} needs; ${hint}`,
  );
}

/** An event store on a JetStream stream. Create it with {@link NatsEventStore.open}. */
export class NatsEventStore extends BaseEventStore {
  /** The JetStream stream. */
  readonly stream: string;
  /** The subject prefix. */
  readonly prefix: string;
  /**
   * The largest event payload, in bytes of UTF-8 JSON: the `maxValueBytes`
   * option, or the largest the server and the stream carry (at most
   * 1 MiB). `open` checked that the server's `max_payload` and the
   * stream's `max_msg_size` carry it with its envelope.
   */
  declare readonly maxValueBytes: number;
  readonly #settings: EventStoreSettings;
  /** The JetStream client and manager, set by `open` once the stream is there. */
  #handles: { js: JetStreamClient; jsm: JetStreamManager } | undefined;
  #capabilities: EventStoreCapabilities = {
    durable: true,
    retention: true,
    applyRetention: true,
    limits: true,
    persistentSnapshots: false,
  };
  /**
   * The largest body of an append (the whole batch, as one message): the
   * server's `max_payload`, or the stream's `max_msg_size` when smaller,
   * less the room of its headers.
   */
  #maxBody: number;
  /** Last stream sequence the index has ingested. */
  #ingested = 0;
  /** When `#ingested` last moved (Date.now()): deadlines count time without progress. */
  #progressAt = 0;
  /** Stream sequence of the last message the index ingested (0: none); what a check compares with the server. */
  #lastMessage = 0;
  /** That message's subject, as the server gave it. */
  #lastSubject = "";
  /** The stream's age limit (`max_age`), in ms; 0 when none. */
  #maxAgeMs = 0;
  /** Whether the ordered consumer delivered a message yet (its first delivery after a recreation is checked). */
  #delivered = false;
  /**
   * The stream's creation time as `open` read it: a stream deleted and
   * created again (its sequences start again at 1) has another one.
   */
  #created = "";
  /** Last stream sequence of each event stream's subject. */
  readonly #lastSeq = new Map<string, number>();
  /**
   * The events of the last {@link RECENT_MESSAGES} messages ingested, by
   * stream sequence: an append takes its own from here, since retention may
   * already have expired them from the index when the append resumes.
   */
  readonly #recent = new Map<number, RecordedEvent[]>();
  #waiters: Waiter[] = [];
  #filling: Promise<void> | undefined;
  /** The highest sequence a fill was asked for: the fill under way reads on to it (one fill at a time). */
  #fillTo = 0;
  /** The next fill, while the server does not answer (cleared on close). */
  #refill: ReturnType<typeof setTimeout> | undefined;
  #messages: ConsumerMessages | undefined;
  /** The ordered consumer feeding the index. */
  #consumer: Consumer | undefined;
  /** Whether the ordered consumer gave a sign of life since the silence check last looked. */
  #heard = true;
  /** When the silence check last found it had (Date.now()). */
  #heardAt = 0;
  /** The silence check (cleared on close and failure). */
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** Whether a replacement of the ordered consumer is under way. */
  #replacing = false;
  #failure: Error | undefined;
  /** Appends of this process, one at a time per stream (fewer lost compare-and-sets). */
  readonly #chains = new Map<string, Promise<unknown>>();

  private constructor(options: NatsEventStoreOptions, settings: EventStoreSettings) {
    super(
      { ...options, maxValueBytes: settings.maxValueBytes },
      `nats-event-store:${settings.stream}`,
      "NatsEventStore",
      NATS_EVENT_STORE_OWN_OPTION_NAMES,
    );
    this.#settings = settings;
    this.stream = settings.stream;
    this.prefix = settings.prefix;
    this.#maxBody = serverMaxPayload(settings.client) - APPEND_HEADER_BYTES;
  }

  get #jet(): { js: JetStreamClient; jsm: JetStreamManager } {
    return this.#handles as { js: JetStreamClient; jsm: JetStreamManager };
  }

  get capabilities(): EventStoreCapabilities {
    return this.#capabilities;
  }

  /**
   * Opens (and creates if missing) the stream and reads it into the index.
   * Every option is checked before anything is created.
   * `retentionDurationMs` also becomes the `max_age` of a stream this call creates.
   * @throws ConfigurationError for an invalid or unknown option, or when the
   *   server's `max_payload` cannot carry an event of `maxValueBytes` plus
   *   {@link EVENT_ENVELOPE_BYTES}
   * @throws ConfigurationError for an existing stream whose subjects are not
   *   `<subjectPrefix>.>` alone (created with another `subjectPrefix`, or
   *   by something else)
   * @throws ConfigurationError when the server refuses to create the stream
   *   for the options: `<subjectPrefix>.>` overlaps another stream's subjects
   *   (option `subjectPrefix`), or `replicas` > 1 on a server that is not
   *   clustered; the server's error is the `cause`
   * @throws UnsupportedError for a replicated stream (`replicas` > 1, or an existing one) on a server whose
   *   compare-and-set does not hold there (`NatsFeature.ReplicatedCompareAndSet`): every append is one
   * @throws CorruptionError when the stream holds a message the index cannot
   *   read, or a stream id whose positions skip some (a message deleted from
   *   the middle)
   * @throws PeerMissingError when the NATS client packages are not installed
   * @throws UnavailableError when the server cannot be reached
   */
  static async open(options: NatsEventStoreOptions): Promise<NatsEventStore> {
    const settings = checkEventStoreOptions(options);
    const store = new NatsEventStore(options, settings); // checks the options of every event store
    try {
      await store.#connect();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw natsError(error, `opening event stream ${JSON.stringify(settings.stream)}`);
    }
    store.startTimers(false);
    return store;
  }

  async #connect(): Promise<void> {
    const { client, stream, prefix, replicas, storage, retentionMs } = this.#settings;
    const nats = await loadNatsModules();
    const jsm = await nats.jetstream.jetstreamManager(client);
    let info = await jsm.streams.info(stream).catch(() => undefined);
    if (!info) {
      info = await jsm.streams
        .add({
          name: stream,
          subjects: [`${prefix}.>`],
          retention: "limits",
          storage,
          num_replicas: replicas,
          max_age: retentionMs > 0 ? Math.round(retentionMs * 1_000_000) : 0, // nanoseconds
          allow_direct: true,
        })
        .catch((error: unknown) => {
          throw creationRefusal(error, {
            owner: "NatsEventStore",
            what: `JetStream stream ${JSON.stringify(stream)}`,
            subjects: `${prefix}.>`,
            subjectsOption: "subjectPrefix",
            subjectsValue: prefix,
            replicas,
          });
        });
    }
    checkSubjects(stream, prefix, info.config.subjects);
    // Every append is a compare-and-set: an existing replicated stream needs a server on which it holds.
    requireReplicatedCompareAndSet(client, eventStreamPlacement(this.#settings, info.config.num_replicas, true));
    this.#created = info.created;
    this.#maxAgeMs = info.config.max_age > 0 ? info.config.max_age / 1_000_000 : 0; // nanoseconds
    // An existing stream's own largest message bounds an event and a batch as the server's max_payload does.
    const maxMsgSize = info.config.max_msg_size;
    this.lowerMaxValueBytes(
      bucketValueLimit(
        this.maxValueBytes,
        this.#settings.maxValueBytesGiven,
        maxMsgSize,
        EVENT_ENVELOPE_BYTES,
        `NatsEventStore stream ${JSON.stringify(stream)}`,
        "stream",
      ),
    );
    if (maxMsgSize > 0) this.#maxBody = Math.min(this.#maxBody, maxMsgSize - APPEND_HEADER_BYTES);
    this.#handles = { js: nats.jetstream.jetstream(client), jsm };
    this.#capabilities = { ...this.#capabilities, durable: info.config.storage === NatsStorage.File };
    // Messages before the first one the stream holds are gone (retention, a purge): nothing to ingest there.
    this.#advance(info.state.first_seq - 1);
    await this.#start(info.state.messages > 0 ? info.state.last_seq : 0);
  }

  async #start(until: number): Promise<void> {
    // The stream holds only `<prefix>.>` (checked by `open`; a filter list needs nats-server 2.10).
    await this.#consume(await this.#jet.js.consumers.get(this.stream, { deliver_policy: "all" }));
    this.#progressAt = Date.now();
    this.#heardAt = Date.now();
    this.#watchdog = setInterval(() => this.#checkSilence(), SILENCE_CHECK_MS);
    this.#watchdog.unref?.();
    if (until > 0) await this.#waitIngested(until);
  }

  /** Makes `consumer` the one feeding the index; a consumer it replaces stops ingesting at once. */
  async #consume(consumer: Consumer): Promise<void> {
    // Short pulls and heartbeats: after a leader change the ordered consumer notices within seconds.
    const messages = await consumer.consume({ expires: 2_000, idle_heartbeat: 1_000 });
    this.#consumer = consumer;
    this.#messages = messages;
    this.#heard = true;
    void (async () => {
      for await (const s of messages.status()) if (SIGNS_OF_LIFE.has(s.type)) this.#heard = true;
    })().catch(() => undefined);
    void (async () => {
      try {
        for await (const m of messages) {
          // Replaced (see #checkSilence): the new consumer reads on from what this one's ingested.
          if (this.#messages !== messages) return;
          this.#heard = true;
          // A recreated consumer (a lost connection, the stream deleted meanwhile, replaced) resumes after the last
          // sequence this store read: before its first message is indexed, check that the stream is still the one read.
          if (m.info.deliverySequence === 1 && this.#delivered) {
            await this.#verify();
            if (this.#failure || this.closed || this.#messages !== messages) return;
          }
          this.#delivered = true;
          this.#ingest(m);
        }
      } catch (error) {
        if (this.#messages === messages) this.#fail(natsError(error, `reading event stream ${this.stream}`));
      }
    })();
  }

  /**
   * Every {@link SILENCE_CHECK_MS}: replaces the ordered consumer once it
   * gave no sign of life for {@link CONSUMER_SILENCE_MS}. A healthy one
   * delivers, or sends a heartbeat or a pull time-out each second while it
   * waits.
   */
  #checkSilence(): void {
    if (this.#heard) {
      this.#heard = false;
      this.#heardAt = Date.now();
      return;
    }
    if (this.#replacing || this.closed || this.#failure || this.#settings.client.isClosed()) return;
    if (Date.now() - this.#heardAt < CONSUMER_SILENCE_MS) return;
    this.#replacing = true;
    void this.#replace()
      .catch(() => undefined) // tried again at the next check
      .finally(() => {
        this.#replacing = false;
      });
  }

  /**
   * A new ordered consumer from the sequence after the last one indexed,
   * in place of the silent one. When the server does not answer, the next
   * silence check tries again.
   */
  async #replace(): Promise<void> {
    const old = { consumer: this.#consumer, messages: this.#messages };
    let consumer: Consumer;
    try {
      consumer = await this.#jet.js.consumers.get(this.stream, { opt_start_seq: this.#ingested + 1 });
    } catch {
      return;
    }
    if (this.closed || this.#failure) {
      await consumer.delete().catch(() => undefined);
      return;
    }
    await this.#consume(consumer);
    old.messages?.stop();
    // Its node may come back: it would keep the consumer until its inactivity threshold otherwise.
    void old.consumer?.delete().catch(() => undefined);
    // Closed meanwhile: #fail stopped the old one (and close() deleted it); the new one goes too.
    if (this.closed || this.#failure) {
      this.#messages?.stop();
      if (this.closed && this.#consumer === consumer) {
        this.#consumer = undefined;
        await consumer.delete().catch(() => undefined);
      }
    }
  }

  #ingest(m: Pick<JsMsg, "seq" | "subject" | "data">): void {
    if (m.seq <= this.#ingested) return;
    const where = `NATS stream ${this.stream}`;
    if (!m.subject.startsWith(`${this.prefix}.`)) {
      throw new CorruptionError(where, m.seq, `subject ${m.subject} is not under the store's prefix ${this.prefix}`);
    }
    const streamId = decodeToken(m.subject.slice(this.prefix.length + 1), where);
    let parsed: unknown;
    try {
      parsed = JSON.parse(TD.decode(m.data));
    } catch (error) {
      throw new CorruptionError(where, m.seq, "message is not JSON", { cause: error });
    }
    const body = parsed as { first?: unknown; events?: unknown } | null;
    if (
      typeof body !== "object" ||
      body === null ||
      !Array.isArray(body.events) ||
      body.events.length === 0 ||
      !Number.isSafeInteger(body.first) ||
      (body.first as number) < 1
    ) {
      throw new CorruptionError(
        where,
        m.seq,
        'message is not a statelog append ({"first":<position>,"events":[…]}, at least one event)',
      );
    }
    const first = body.first as number;
    const inputs = body.events.map((e: unknown, i) => {
      const stored = e as { timestamp?: unknown } | null;
      if (
        typeof stored !== "object" ||
        stored === null ||
        Array.isArray(stored) ||
        typeof stored.timestamp !== "string"
      ) {
        throw new CorruptionError(where, m.seq, `events[${i}] is not a stored event (an object with a timestamp)`);
      }
      return { ...stored, timestamp: new Date(stored.timestamp) };
    });
    let events: ReturnType<typeof prepareEvents>;
    try {
      events = prepareEvents(inputs as unknown as EventInput[], Number.MAX_SAFE_INTEGER);
    } catch (error) {
      throw new CorruptionError(where, m.seq, `message holds an event that is not valid: ${messageOf(error)}`, {
        cause: error,
      });
    }
    // Positions never restart: a stream whose first events are gone (retention) resumes at `first`.
    const known = this.log.streams.get(streamId);
    if (known && known.events.length > 0 && known.last < first - 1) {
      this.#skipped(known, first, m.subject, m.seq);
    }
    if ((!known && first > 1) || (known && known.last < first - 1)) {
      this.log.restoreStream(streamId, first, first - 1);
    }
    const request = { streamId, events, expectedVersion: undefined };
    const planned = this.log.plan([request], UNLIMITED)[0] as PlannedAppend;
    if (planned.ok) {
      this.log.commit(planned.records, planned.sizes);
      this.#recent.set(m.seq, planned.records);
      if (this.#recent.size > RECENT_MESSAGES) this.#recent.delete(this.#recent.keys().next().value as number);
      this.#lastMessage = m.seq;
      this.#lastSubject = m.subject;
    }
    this.#lastSeq.set(streamId, m.seq);
    this.#advance(m.seq);
  }

  /**
   * A message of `known`'s stream id whose first position skips some while
   * the index still holds older events of it. The server removes a
   * stream's oldest messages first (`max_age`): when it expired the skipped
   * ones before this store read them, it removed every older message too,
   * those holding this stream id's indexed events among them, and the
   * index removes them as well, by position (by the store's clock and the
   * events' own timestamps they may not be old enough yet: clocks differ).
   * That is taken for the cause when the stream has an age limit and the
   * last of those events is about as old as it (within
   * {@link expirySkewMs}). Anything else is a message deleted from the
   * middle of the stream, and reads and subscriptions would skip its events.
   * @throws CorruptionError when events of the stream id before the skipped positions are still indexed
   */
  #skipped(known: StreamState, first: number, subject: string, seq: number): void {
    const last = known.events.at(known.events.length - 1);
    const maxAge = this.#maxAgeMs;
    if (last && maxAge > 0 && last.timestamp.getTime() + maxAge <= this.now() + expirySkewMs(maxAge)) {
      this.expireThrough(last.globalPosition);
    }
    if (known.events.length === 0) return;
    throw new CorruptionError(
      `NATS stream ${this.stream}`,
      seq,
      `stream id ${JSON.stringify(known.id)} goes from position ${known.last} to ${first}: the messages holding ` +
        `positions ${known.last + 1} to ${first - 1} were deleted from the middle of the stream; remove its older ` +
        `messages too (purge subject ${subject} below sequence ${seq}), then reopen the store`,
    );
  }

  /** Marks everything up to `seq` as ingested and wakes the appends waiting for it. */
  #advance(seq: number): void {
    if (seq <= this.#ingested) return;
    this.#ingested = seq;
    this.#progressAt = Date.now();
    if (this.#waiters.length > 0) {
      const ready = this.#waiters.filter((w) => w.seq <= seq);
      this.#waiters = this.#waiters.filter((w) => w.seq > seq);
      for (const w of ready) w.resolve();
    }
  }

  #fail(error: Error): void {
    this.#failure = error;
    // The index stopped growing: reads and subscriptions fail too, instead of serving it as if it were current.
    if (!isClosedError(error)) this.failed(error);
    this.#messages?.stop();
    clearInterval(this.#watchdog);
    clearTimeout(this.#refill);
    this.#refill = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(error);
  }

  /**
   * Fails the store for good: the stream no longer holds what the index
   * was read from. The first failure stays.
   */
  #reset(why: string): Error {
    if (this.#failure) return this.#failure;
    const error = new CorruptionError(
      `NATS stream ${this.stream}`,
      undefined,
      `${why}; this store's index no longer matches it: reopen the store`,
    );
    this.#fail(error);
    return error;
  }

  /**
   * Resolves once the index holds stream sequence `seq`.
   * @throws UnavailableError when nothing was read for `catchUpTimeoutMs` meanwhile (the server stopped answering)
   */
  #waitIngested(seq: number): Promise<void> {
    if (this.#ingested >= seq) return Promise.resolve();
    if (this.#failure) return Promise.reject(this.#failure);
    let waiter!: Waiter;
    const waiting = new Promise<void>((resolve, reject) => {
      waiter = { seq, resolve, reject };
      this.#waiters.push(waiter);
    });
    // If the consumer stalls (a leader change), read the missing messages directly after a moment.
    const timer = setTimeout(() => this.#fill(seq), 500);
    // Time without progress, not in all: a long stream takes as long as it takes while its messages keep coming.
    const limit = this.#settings.catchUpTimeoutMs;
    const started = Date.now();
    const expire = () => {
      const idle = Date.now() - Math.max(started, this.#progressAt);
      if (idle < limit) {
        deadline = setTimeout(expire, limit - idle);
        return;
      }
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      waiter.reject(
        new UnavailableError(
          `NATS event stream ${this.stream}: nothing was read for ${limit} ms (catchUpTimeoutMs) while waiting ` +
            `for sequence ${seq} (read up to ${this.#ingested}); the server stopped answering (what it ` +
            `acknowledged is stored; this store could not read it)`,
        ),
      );
    };
    let deadline = setTimeout(expire, limit);
    return waiting.finally(() => {
      clearTimeout(timer);
      clearTimeout(deadline);
    });
  }

  /**
   * Reads messages up to `seq` with leader-served gets and ingests them
   * (the ordered consumer skips what was ingested meanwhile). One fill at
   * a time: asked while one runs, that one reads on to `seq` too.
   */
  #fill(seq: number): void {
    this.#fillTo = Math.max(this.#fillTo, seq);
    // Nothing to read (a refill after the consumer delivered): the fill would end within this call, before
    // `#filling` is set to it, which would then stay set and keep every later fill from starting.
    // Not `closed`: while the store closes, the appends close() waits for may need a fill (release() then fails the
    // store, which stops fills).
    if (this.#filling || this.#failure || this.#ingested >= this.#fillTo) return;
    this.#filling = (async () => {
      try {
        // What follows the last message read is this index's only if the stream is still the one it read.
        if (!(await this.#checkLastMessage())) return;
        while (this.#ingested < this.#fillTo && !this.#failure) {
          const next = this.#ingested + 1;
          const sm = await this.#jet.jsm.streams.getMessage(this.stream, { seq: next }).catch(() => undefined);
          if (sm === undefined) break; // the server is not answering: read again in a moment (below)
          if (sm === null) {
            // Nothing there: removed (retention or a purge, from the start; a deleted message), or not applied yet
            // by the peer that answered (a newly elected leader). Only what the stream says was removed is passed
            // over: a message passed over that is there would be missing from this index for good. The info comes
            // after the get, so a stream that holds `next` by then does not prove it removed: read again instead.
            const info = await this.#jet.jsm.streams
              .info(this.stream, { deleted_details: true })
              .catch(() => undefined);
            if (info === undefined) break;
            if (next < info.state.first_seq) {
              this.#advance(info.state.first_seq - 1);
              continue;
            }
            // Passed over with every deleted message right after it: one info per run of them, not per message.
            const deleted = new Set(info.state.deleted ?? []);
            if (!deleted.has(next)) break; // not there yet where the get was answered: again in a moment (below)
            let last = next;
            while (deleted.has(last + 1)) last++;
            this.#advance(last);
            continue;
          }
          this.#ingest(sm);
        }
      } catch (error) {
        this.#fail(natsError(error, `reading event stream ${this.stream}`));
      } finally {
        this.#filling = undefined;
        // Stopped short (no answer): again in a moment while a waiter that asked for a fill still waits.
        const to = this.#fillTo;
        if (this.#ingested < to && !this.#failure && this.#waiters.some((w) => w.seq <= to)) {
          clearTimeout(this.#refill);
          this.#refill = setTimeout(() => this.#fill(to), 500);
        }
      }
    })();
  }

  /** Waits until the index holds everything the server has stored now. */
  async #catchUp(): Promise<void> {
    const before = this.#ingested;
    const info = await this.#checkStream(await this.#info(), before);
    if (this.#failure) throw this.#failure;
    // Messages before the first one the stream holds are gone (retention, a purge): nothing to wait for there.
    this.#advance(info.state.first_seq - 1);
    if (info.state.messages > 0) await this.#waitIngested(info.state.last_seq);
  }

  /**
   * The stream's info, asked again while the server does not answer, for
   * up to `catchUpTimeoutMs`.
   * @throws UnavailableError when the server did not answer in time, or answered with an error (no such stream…)
   */
  async #info(): Promise<StreamInfo> {
    const limit = this.#settings.catchUpTimeoutMs;
    const deadline = Date.now() + limit;
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
      });
      let failure: unknown;
      try {
        const info = await Promise.race([this.#jet.jsm.streams.info(this.stream), late]);
        if (info) return info;
      } catch (error) {
        // The server answered (the stream is gone…), or the connection is closed: asking again would not help.
        if (isJetStreamApiError(error) || this.#settings.client.isClosed()) {
          throw natsError(error, `reading the state of stream ${this.stream}`);
        }
        failure = error;
      } finally {
        clearTimeout(timer);
      }
      if (failure === undefined || Date.now() >= deadline) {
        throw new UnavailableError(
          `NATS event stream ${this.stream}: the server did not answer within ${limit} ms (catchUpTimeoutMs)` +
            (failure === undefined ? "" : `: ${messageOf(failure)}`),
          failure === undefined ? undefined : { cause: failure },
        );
      }
      await sleep(Math.min(250, deadline - Date.now()));
    }
  }

  /**
   * Fails the store (and returns `info` otherwise) when the stream is not
   * the one the index was read from: ending below `before`, what the index
   * had read when `info` was asked for, or holding another message at the
   * last sequence it read. A low last sequence is asked again a few times
   * first (a new stream leader may not have applied all its predecessor
   * committed), unless the stream's creation time changed too. A changed
   * creation time alone proves nothing (nats-server gives a stream a new
   * one without recreating it, e.g. a restart after a configuration
   * update): the message at the last sequence read decides.
   * @throws UnavailableError when the server stops answering meanwhile
   */
  async #checkStream(info: StreamInfo, before: number): Promise<StreamInfo> {
    let current = info;
    for (let check = 1; ; check++) {
      const created = current.created !== this.#created;
      if (created && this.#ingested === 0) {
        // Nothing read yet: the index matches the new stream as well.
        this.#created = current.created;
        return current;
      }
      if (current.state.last_seq >= before) {
        // Taken for this stream's only once the message is known to be the same (else compared again next time).
        if (created && (await this.#atLastMessage()) === LastMessage.Same) this.#created = current.created;
        return current;
      }
      if (created) {
        this.#reset(
          `it was deleted and created again (created at ${current.created}, this store read the one created at ` +
            `${this.#created}; its last sequence is ${current.state.last_seq}, below the ${before} this store had read)`,
        );
        return current;
      }
      if (check === LOW_LAST_SEQUENCE_CHECKS) {
        this.#reset(
          `its last sequence is ${current.state.last_seq}, below the ${before} this store had read: it lost ` +
            `messages (a memory stream emptied by a restart, writes lost in a crash)`,
        );
        return current;
      }
      await sleep(LOW_LAST_SEQUENCE_PAUSE_MS);
      current = await this.#info();
    }
  }

  /**
   * Whether the server still holds, at the sequence of the last message
   * the index read, that message (or none: removed since). Another message
   * there means the stream's sequences started again: the store fails.
   * True as well when the server does not answer (the caller's own reads
   * retry or fail then).
   */
  async #checkLastMessage(): Promise<boolean> {
    return (await this.#atLastMessage()) !== LastMessage.Other;
  }

  /**
   * What the server holds at the sequence of the last message the index
   * read: that message, another one (the stream's sequences started
   * again: the store fails), or nothing known (removed since, nothing read
   * yet, or no answer).
   */
  async #atLastMessage(): Promise<LastMessage> {
    // Taken before the question: the consumer may index further messages while it is asked.
    const seq = this.#lastMessage;
    const subject = this.#lastSubject;
    const records = this.#recent.get(seq);
    if (!records || records.length === 0) return LastMessage.Unknown;
    const sm = await this.#jet.jsm.streams.getMessage(this.stream, { seq }).catch(() => null);
    if (!sm) return LastMessage.Unknown;
    let ids: unknown[] | undefined;
    try {
      const events = (JSON.parse(TD.decode(sm.data)) as { events?: unknown }).events;
      if (Array.isArray(events)) ids = events.map((e) => (e as { id?: unknown } | null)?.id);
    } catch {
      // not an append: another message
    }
    const same =
      sm.subject === subject && ids?.length === records.length && ids.every((id, i) => id === records[i]?.id);
    if (same) return LastMessage.Same;
    this.#reset(
      `it holds another message at sequence ${seq} than the one this store read there: its sequences started ` +
        `again (emptied by a restart, or deleted and created again)`,
    );
    return LastMessage.Other;
  }

  /**
   * After the ordered consumer was recreated, before its first message is
   * indexed: checks the stream (as `catchUp` does). Nothing is indexed
   * until it could: a message of a stream made anew would get positions
   * planned on the old index and reach subscribers. While the server does
   * not answer (or says the stream is gone), it asks again, until the
   * store closes.
   */
  async #verify(): Promise<void> {
    const before = this.#ingested;
    for (;;) {
      try {
        await this.#checkStream(await this.#info(), before);
        break;
      } catch {
        if (this.closed || this.#failure) return;
        await sleep(LOW_LAST_SEQUENCE_PAUSE_MS);
      }
    }
    if (!this.#failure) await this.#checkLastMessage();
  }

  /**
   * After a lost compare-and-set on `subject`: the last sequence the
   * server holds for it, which is not the cached one when the subject's
   * last message is gone (retention, a purge): 0 then. Asked again while
   * the cluster cannot answer (a leader election): {@link retryingGet}.
   */
  async #refreshLastSeq(streamId: string, subject: string, signal: AbortSignal | undefined): Promise<void> {
    const last = await retryingGet(
      () => this.#jet.jsm.streams.getMessage(this.stream, { last_by_subj: subject }),
      signal,
    ).catch((error: unknown) => {
      throw natsError(error, `append to ${streamId}`);
    });
    if (!last) this.#lastSeq.delete(streamId);
    // A newer message of another process: the index must hold it before an append plans on it (ingesting it sets
    // the subject's last sequence), or the append would pass the compare-and-set with positions planned on less.
    else if (last.seq > this.#ingested) await this.#waitIngested(last.seq);
    else this.#lastSeq.set(streamId, last.seq);
  }

  protected store(request: AppendRequest): Promise<PlannedAppend> {
    // Appends that create a stream id compare the whole stream's last sequence (maxStreams): run in parallel, each
    // would lose to the others and retry, N of them about N² publishes. They take one chain of their own.
    const creates = this.limits.maxStreams > 0 && !this.log.streams.has(request.streamId);
    const chain = creates ? NEW_STREAMS : request.streamId;
    const previous = this.#chains.get(chain) ?? Promise.resolve();
    const next = previous.then(
      () => this.#append(request),
      () => this.#append(request),
    );
    this.#chains.set(chain, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.#chains.get(chain) === next) this.#chains.delete(chain);
      });
    return next;
  }

  async #append(request: AppendRequest): Promise<PlannedAppend> {
    const subject = `${this.prefix}.${encodeToken(request.streamId)}`;
    for (let attempt = 0; ; attempt++) {
      this.check();
      if (this.#failure) throw this.#failure;
      let planned = this.log.plan([request], this.limits)[0] as PlannedAppend;
      if (!planned.ok || request.events.length === 0) {
        // A conflict or limit seen on a possibly stale index: confirm on the caught-up one.
        await this.#catchUp();
        planned = this.log.plan([request], this.limits)[0] as PlannedAppend;
        if (!planned.ok || request.events.length === 0) return planned;
      }
      const body = `{"first":${planned.records[0]?.position},"events":[${request.events
        .map(
          (e) =>
            `{"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)},"timestamp":"${e.timestamp.toISOString()}","data":${e.json}${e.metaJson === undefined ? "" : `,"metadata":${e.metaJson}`}}`,
        )
        .join(",")}]}`;
      const size = Buffer.byteLength(body, "utf8");
      if (size > this.#maxBody) {
        throw new TooLargeError(
          size,
          this.#maxBody,
          `a batch of ${request.events.length} event(s) as one NATS message`,
        );
      }
      const isNew = !this.log.streams.has(request.streamId);
      const before = this.#ingested;
      let seq: number;
      try {
        const ack = await this.#jet.js.publish(subject, body, {
          expect: {
            lastSubjectSequence: this.#lastSeq.get(request.streamId) ?? 0,
            // A new stream counts against maxStreams: make the whole stream the compare-and-set then.
            ...(isNew && this.limits.maxStreams > 0 ? { lastSequence: this.#ingested } : {}),
          },
        });
        seq = ack.seq;
      } catch (error) {
        if (!isWrongLastSequence(error) || attempt > 1000) throw natsError(error, `append to ${request.streamId}`);
        await this.#catchUp();
        await this.#refreshLastSeq(request.streamId, subject, request.signal);
        continue;
      }
      // A new message takes a sequence after every one the index read: one it read already means the stream
      // started its sequences again.
      if (seq <= before) {
        throw this.#stored(
          request.streamId,
          seq,
          this.#reset(
            `it stored an append at sequence ${seq}, which this store had already read: its sequences started ` +
              `again (emptied by a restart, or deleted and created again)`,
          ),
        );
      }
      await this.#waitIngested(seq);
      const first = (planned.records[0] as { position: number }).position;
      let records = this.#recent.get(seq);
      if (records === undefined) {
        // Ingested longer ago than the recent messages reach (many others came meanwhile): the index holds them,
        // with the global positions the other messages gave them, unless retention expired them already.
        const stream = this.log.streams.get(request.streamId);
        const stored =
          stream && first > stream.first - 1 ? this.log.streamAfter(stream, first - 1, request.events.length) : [];
        // Read and gone again (expired before this store read it): the compare-and-set held, so the stream has
        // exactly the planned positions.
        if (stored.length === 0) return planned;
        records = stored;
      }
      if (records.length !== request.events.length || records[0]?.position !== first) {
        const failure = this.#reset(
          `the index gave the append at sequence ${seq} position ${records[0]?.position} instead of ${first}, which its compare-and-set held`,
        );
        throw this.#stored(request.streamId, seq, failure);
      }
      return { ok: true, records, sizes: request.events.map((e) => e.size), request };
    }
  }

  /** The error of an append the server stored while the store failed: appending it again would store it twice. */
  #stored(streamId: string, seq: number, failure: Error): Error {
    return new CorruptionError(
      `NATS stream ${this.stream}`,
      seq,
      `the append to ${JSON.stringify(streamId)} is stored (at this sequence), but the store failed: ${failure.message}`,
      { cause: failure },
    );
  }

  /** The index is in memory: a snapshot records the point it covers; JetStream holds the data. */
  protected async takeSnapshot(): Promise<SnapshotInfo> {
    return { globalPosition: this.log.lastGlobal, events: this.log.global.length, bytes: 0 };
  }

  /**
   * Waits for the appends under way, as the file event store's close waits
   * for its writes: one the server acknowledged resolves once the index
   * ingested it (or fails with an `UnavailableError` after
   * `catchUpTimeoutMs` without progress: it is stored then), one not
   * published yet fails with a `ClosedError` without publishing (each
   * attempt checks). Rejecting an acknowledged append would tell its caller
   * it failed while it is stored: appended again, it would be there twice.
   * No append starts meanwhile (`append` checks first, synchronously), so
   * the chains' last appends are the last ones. Then stops the ordered
   * consumer and deletes it on the server, where it would stay, inactive,
   * for five minutes (errors ignored: a closed connection, a server gone).
   */
  protected override async release(): Promise<void> {
    await Promise.allSettled([...this.#chains.values()]);
    this.#fail(new ClosedError(`event store ${JSON.stringify(this.name)}`));
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (consumer !== undefined && !this.#settings.client.isClosed()) await consumer.delete().catch(() => undefined);
  }

  /**
   * Waits until every append the server stored so far is readable here
   * (after other processes' appends), within `catchUpTimeoutMs`.
   */
  async catchUp(options?: EventCallOptions): Promise<void> {
    this.check();
    const signal = options?.signal;
    throwIfAborted(signal);
    if (signal === undefined) return this.#catchUp();
    // An abort ends the call, not the index's ingest (which goes on for every later read).
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(new AbortError(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([this.#catchUp(), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Deletes the JetStream stream and closes the store. */
  async destroy(): Promise<void> {
    await this.close();
    await this.#jet.jsm.streams.delete(this.stream).catch((error: unknown) => {
      throw natsError(error, `deleting stream ${this.stream}`);
    });
  }
}
