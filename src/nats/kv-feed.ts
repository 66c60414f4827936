/**
 * The change feed of a `NatsKvStore` namespace (docs/nats.md, "Change
 * feeds"). A position is the bucket stream's sequence (the KV revision) of
 * the namespace's last change delivered (0 before any); the epoch is the
 * stream's creation time, so a bucket deleted and created again (which
 * numbers from 1 anew) is told apart. A running feed that sees the creation
 * time change checks the messages it delivered last before it believes it
 * (nats-server gives a stream a new creation time without creating it
 * again).
 *
 * - The initial part is a "last value per key" read of the namespace's
 *   subjects (as `load` does), complete once it reached the stream's last
 *   message under them and the leader's answers to the rechecks
 *   ({@link INITIAL_RECHECKS}): the barrier does not depend on the
 *   consumer's "nothing pending" report, so it comes for an empty
 *   namespace too.
 * - Each later read is a read of every message under the namespace's
 *   subjects after the cursor, again up to the last one the stream holds
 *   when the read begins. Reads never overlap and each starts after the
 *   last sequence delivered: no change is missed or repeated.
 * - A subscription to the namespace's subjects (taken before the first
 *   read) wakes the feed when a change is published; a check of the
 *   stream's last message under them every {@link NATS_FEED_CHECK_MS}
 *   covers notifications lost while the connection was re-established.
 * - KV delete and purge markers (e.g. `nats kv del`) are delivered as
 *   `unset` changes.
 */
import type { JetStreamClient, JetStreamManager, JsMsg, StoredMsg, StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  type Change,
  type FeedBatch,
  FeedBehindError,
  type FeedChange,
  type FeedCursor,
  FeedEventType,
  type FeedSource,
  type FeedStart,
  sleep,
} from "../index.js";
import { natsError } from "./errors.js";
import {
  isRetryable,
  keepLastPerKey,
  type ReadFilteredOptions,
  ReadMode,
  readFiltered,
  retryingRead,
} from "./reader.js";
import { LastMessage, LOW_LAST_SEQUENCE_CHECKS, LOW_LAST_SEQUENCE_PAUSE_MS } from "./stream-checks.js";

/** How often a waiting feed checks the stream for a change it was not notified of, in ms. */
export const NATS_FEED_CHECK_MS = 1_000;

/**
 * How many of the messages it delivered last (the newest of each key) a
 * feed remembers, to know its stream again after the stream's creation
 * time changed (see `KvFeedSource.#check`).
 */
const REMEMBERED_MESSAGES = 8;

/** A message the feed delivered: its sequence, and what tells it from another message there. */
interface Delivered {
  readonly seq: number;
  readonly subject: string;
  /** The time the stream received it, in ns since 1970 (read when needed: parsing it costs a split per message). */
  readonly time: () => bigint | undefined;
}

/**
 * How many times the initial read, once it delivered the leader's last
 * message under the namespace, asks the leader again
 * ({@link ReadFilteredOptions.rechecks}). Why one is not enough, and what
 * the initial part then holds:
 *
 * A "last per subject" consumer delivers, in stream order, the last
 * revision each key had on its peer when it was created, then every later
 * message. A revision written over (and removed, on a bucket keeping one
 * per key) before the consumer reached it is passed over; the newer one
 * comes later in the same read, unless the read ended before it. So the
 * first target, L0 (the leader's last when the read began, asked while
 * the consumer is created), is not an end: a key written again between
 * that answer and the consumer's creation has only its new revision, past
 * L0, in the consumer; a key written again during the read has its old
 * revision removed and its new one past L0.
 *
 * Once the read delivered d ≥ L0, it asks the leader again (answer L at
 * time t). If L ≤ d, no message under the namespace at t is after d: the
 * last revision of every key existing at t is at or before d, was still
 * stored when the consumer passed it (it is replaced after t only, and the
 * consumer passed it before the question) and so was delivered; the
 * initial part is the state at t. Otherwise the read reads on to L and, if
 * questions are left, asks again. When the last answer L is reached
 * (delivered d' ≥ L, the barrier's position), a key that existed before
 * the feed started is delivered unless, after each of the leader's
 * answers, it was written again before the consumer reached its previous
 * revision (removing it unseen): a revision the consumer passed over
 * before a question was removed by a write made before that question, so
 * at or before its answer, which the read reads on to. Then the write
 * that removed the key's last revision up to d' is after the last answer
 * and past the barrier: it comes in the live part.
 * A key not written during the read always comes; under continuous writes
 * the read still ends, after at most 1 + {@link INITIAL_RECHECKS} answers.
 * The consumer's peer may lag (a cluster): this holds all the same, as it
 * delivers in stream order a prefix of the leader's stream, and a consumer
 * created anew during the read takes one more question (its keys' last
 * revisions are taken at its creation, maybe past the target).
 * Each question more makes a miss rarer (the key must be written again in
 * every round); they cost a round trip each, and only while keys are saved.
 */
export const INITIAL_RECHECKS = 8;

/** What the feed needs from its store. */
export interface KvFeedContext {
  readonly namespace: string;
  readonly client: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The bucket's stream (`KV_<bucket>`). */
  readonly stream: string;
  /** The subjects of the namespace's entities (`$KV.<bucket>.<namespace>.>`). */
  readonly filter: string;
  readonly replicated: boolean;
  /** The most changes a read after the current state delivers (`WatchOptions.batchSize`). */
  readonly batchSize: number;
  /** Decodes a message of the namespace (and checks it as `load` does). */
  decode(m: JsMsg): Change;
}

const changeKey = (item: FeedChange): string => `${item.change.entityType}\u0000${item.change.entityId}`;

/** The feed source of one namespace of a NATS KV store. */
export class KvFeedSource implements FeedSource {
  #subscription: Subscription | undefined;
  /** A message was published under the filter since the last read began. */
  #dirty = false;
  #wake: (() => void) | undefined;
  #epoch: string | undefined;
  /** The last messages delivered, the newest of each subject, oldest first (at most {@link REMEMBERED_MESSAGES}). */
  readonly #delivered = new Map<string, Delivered>();

  constructor(private readonly ctx: KvFeedContext) {}

  async read(cursor: FeedStart | FeedCursor | undefined, signal: AbortSignal): Promise<FeedBatch> {
    const { ctx } = this;
    try {
      if (!this.#subscription) {
        // Subscribed (and the server told of it) before the first read: no later publish goes unnoticed.
        this.#subscription = ctx.client.subscribe(ctx.filter, { callback: () => this.#notify() });
        await ctx.client.flush();
      }
      this.#dirty = false;
      const asked = await this.#info(signal);
      const info = cursor === undefined ? asked : await this.#check(cursor, asked, signal);
      const epoch = info.created;
      this.#epoch = epoch;
      const items: FeedChange[] = [];
      const result = await readFiltered(
        ctx.js,
        ctx.jsm,
        ctx.stream,
        ctx.filter,
        (m, seq) => {
          items.push({ type: FeedEventType.Change, change: ctx.decode(m), position: seq, epoch });
          this.#remember({ seq, subject: m.subject, time: () => m.timestampNanos });
        },
        cursor === undefined
          ? { untilLast: true, rechecks: INITIAL_RECHECKS, signal, replicated: ctx.replicated }
          : {
              untilLast: true,
              mode: ReadMode.All,
              startSequence: cursor.position + 1,
              maxMessages: ctx.batchSize,
              signal,
              replicated: ctx.replicated,
            },
      );
      const position = Math.max(cursor?.position ?? 0, result.lastSequence);
      // A key written again during the initial read may come twice (its older revision first): its last one wins.
      const state = cursor === undefined && result.lagged ? keepLastPerKey(items, changeKey) : items;
      // A piece of a read: the namespace's last revision, as the leader gave it, is where the backend stands.
      const head = result.limited ? Math.max(position, result.target) : position;
      return { items: state, cursor: { position, epoch }, head, more: result.limited };
    } catch (error) {
      throw natsError(error, `change feed of namespace ${JSON.stringify(ctx.namespace)}`);
    }
  }

  async wait(cursor: FeedCursor, signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !this.#dirty) {
      const woken = await new Promise<boolean>((resolve) => {
        const done = (notified: boolean) => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          this.#wake = undefined;
          resolve(notified);
        };
        const onAbort = () => done(true);
        const timer = setTimeout(() => done(false), NATS_FEED_CHECK_MS);
        this.#wake = () => done(true);
        signal.addEventListener("abort", onAbort, { once: true });
      });
      if (woken) return;
      const last = await this.#lastUnderFilter();
      // Unknown (the server does not answer): while the connection is being re-established, keep waiting; once
      // it is closed, the next read reports it.
      if (last === undefined ? this.ctx.client.isClosed() : last > cursor.position) return;
    }
  }

  close(): void {
    this.#subscription?.unsubscribe();
    this.#wake?.();
  }

  #notify(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  /**
   * The stream's last sequence under the filter (0 when none); `undefined`
   * when the server did not answer (a time-out while it is away), and
   * infinity for any other error (a deleted bucket): the next read reports it.
   */
  async #lastUnderFilter(): Promise<number | undefined> {
    try {
      const last = await this.ctx.jsm.streams.getMessage(this.ctx.stream, { last_by_subj: this.ctx.filter });
      return last?.seq ?? 0;
    } catch (error) {
      return isRetryable(error) ? undefined : Number.POSITIVE_INFINITY;
    }
  }

  /** The bucket stream's info, retried as the read's own requests are: a server that restarts answers again after a while. */
  #info(signal: AbortSignal): Promise<StreamInfo> {
    return retryingRead(() => this.ctx.jsm.streams.info(this.ctx.stream), signal);
  }

  /**
   * Checks that the bucket still holds what follows `cursor`, and returns
   * the stream info to read with (`info`, or a later one).
   * - Another creation time than the cursor's epoch: in a new feed
   *   (resuming `from` a cursor), the bucket was deleted and created again.
   *   A running feed does not take it as proof (nats-server gives a stream
   *   a new creation time without creating it again, e.g. at a restart
   *   after a configuration update): the messages it delivered last decide
   *   (`#sameStream`), and it goes on with the new epoch when they are still
   *   there. At position 0 it goes on in any case: it delivered nothing a
   *   renumbering could make wrong, and every change after 0 is every
   *   change of the bucket, old or new.
   * - A position past the stream's last sequence: asked again a few times
   *   first (a newly elected stream leader may answer before it applied
   *   all that its predecessor committed), then the bucket was deleted and
   *   created again; at once with another creation time as well.
   * - When resuming from a position > 0: the stream's first sequence past
   *   it means every revision up to it is gone (a purge of the stream, an
   *   age or size limit), so the state the position stands for may have
   *   lost entities without a delete marker. NATS cannot tell this from
   *   revisions all replaced by newer ones (the bucket's `history`): that
   *   case is reported too, and starting from the current state is then
   *   always right.
   */
  async #check(cursor: FeedStart | FeedCursor, info: StreamInfo, signal: AbortSignal): Promise<StreamInfo> {
    const { position, epoch } = cursor;
    const running = this.#epoch !== undefined;
    const behind = (reason: string): never => {
      throw new FeedBehindError(this.ctx.namespace, position, reason);
    };
    const recreated = `the bucket's stream ${this.ctx.stream} was created again since (its sequences are renumbered)`;
    let current = info;
    let created = false;
    for (let check = 1; ; check++) {
      created = epoch !== undefined && epoch !== current.created && !(epoch === "" && position === 0);
      const last = current.state.last_seq;
      if (created && (!running || position > last)) behind(recreated);
      if (position <= last) break;
      if (check === LOW_LAST_SEQUENCE_CHECKS) {
        behind(`the bucket's stream ends at sequence ${last} (was the bucket created again?)`);
      }
      await sleep(LOW_LAST_SEQUENCE_PAUSE_MS, signal);
      current = await this.#info(signal);
    }
    // A stream holding a message older than its creation time was not created again (a restored backup aside):
    // decided without the remembered messages, which a key written again since may all have replaced.
    if (
      created &&
      position > 0 &&
      !olderThanCreated(current) &&
      (await this.#sameStream(signal)) !== LastMessage.Same
    ) {
      behind(recreated);
    }
    const first = current.state.first_seq;
    if (!running && position > 0 && first > position) {
      behind(`the bucket's stream no longer holds sequences before ${first} (purged, expired or replaced)`);
    }
    if (!running && position > 0) await this.#rememberAt(position, signal);
    return current;
  }

  /**
   * Whether the stream holds the messages this feed delivered last: the
   * newest of them it still holds decides (the same subject and time: the
   * same message at the same sequence; another message there: the stream
   * was created again). None held (each key written again since, or a
   * stream created again) is `Unknown`.
   */
  async #sameStream(signal: AbortSignal): Promise<LastMessage> {
    for (const delivered of [...this.#delivered.values()].reverse()) {
      const held = await retryingRead(
        () => this.ctx.jsm.streams.getMessage(this.ctx.stream, { seq: delivered.seq }),
        signal,
      );
      if (!held) continue;
      const time = nanosOf(held);
      return held.subject === delivered.subject && time !== undefined && time === delivered.time()
        ? LastMessage.Same
        : LastMessage.Other;
    }
    return LastMessage.Unknown;
  }

  /** Called for every message delivered (a large initial read too): a few map operations. */
  #remember(message: Delivered): void {
    const delivered = this.#delivered;
    delivered.delete(message.subject);
    delivered.set(message.subject, message);
    if (delivered.size > REMEMBERED_MESSAGES) delivered.delete(delivered.keys().next().value as string);
  }

  /**
   * A feed resumed from a position remembers the message there (if the
   * stream still holds it), to know its stream again by it before it
   * delivered any; without an answer it remembers none.
   */
  async #rememberAt(position: number, signal: AbortSignal): Promise<void> {
    const held = await this.ctx.jsm.streams.getMessage(this.ctx.stream, { seq: position }).catch(() => null);
    const time = held ? nanosOf(held) : undefined;
    if (held && time !== undefined && !signal.aborted) {
      this.#remember({ seq: position, subject: held.subject, time: () => time });
    }
  }
}

/** Whether the stream holds a message received before the stream's creation time, as it reports it. */
function olderThanCreated(info: StreamInfo): boolean {
  const first = Date.parse(info.state.first_ts);
  return info.state.messages > 0 && !Number.isNaN(first) && first < Date.parse(info.created);
}

/** The time a stored message was received, in ns since 1970 (`undefined` when its timestamp does not parse). */
function nanosOf(message: StoredMsg): bigint | undefined {
  // RFC 3339 with up to 9 decimals (nats-server's form): the decimals past ms do not fit a Date.
  const parts = /^(.+T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(message.timestamp);
  if (!parts) return undefined;
  const seconds = Date.parse(`${parts[1]}${parts[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000n + BigInt((parts[2] ?? "").padEnd(9, "0"));
}
