/**
 * Reads a filtered slice of a JetStream stream to its current end with an
 * ephemeral, unacknowledged pull consumer: the consumer's creation reply
 * says how many messages are pending, so an empty slice costs one round
 * trip and a full one ends exactly when it is caught up (no idle time-out).
 * Only the subjects under `filter` are read; other keys of the bucket are
 * never scanned.
 *
 * On a replicated stream the consumer (R1, memory) may be placed on any
 * peer, including one that restarted and is still catching up, or a
 * follower that has not applied the latest acknowledged write yet. So the
 * read first asks the stream leader (a non-direct `STREAM.MSG.GET`, which
 * only the leader answers) for the last message under `filter`, and is
 * complete only once it delivered that sequence or a later one. A peer
 * that is behind gets a moment to catch up (the consumer is live), then
 * the read moves to a new consumer, which the server may place elsewhere.
 *
 * A consumer deleted on the server during the read (`nats consumer rm`, a
 * restart dropping the memory-stored consumer) is noticed by its missing
 * heartbeats (nats-server 2.9 tells a pull request being served nothing)
 * or a "consumer deleted" status; the read then goes on with a new
 * consumer after the last sequence it delivered, like after a lagging peer.
 */
import type {
  ConsumerConfig,
  ConsumerInfo,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
  LastForMsgRequest,
  MsgRequest,
  NextMsgRequest,
  StoredMsg,
} from "@nats-io/jetstream";
import { AbortError, type RetryPolicy, retrying, sleep, throwIfAborted, UnavailableError } from "../index.js";

/** Which messages of each subject {@link readFiltered} delivers. */
export const ReadMode = {
  /** The last message of every subject, in stream order (a KV "last value" read). */
  LastPerSubject: "last_per_subject",
  /** Every stored message, in stream order (a KV history read). */
  All: "all",
} as const;
export type ReadMode = (typeof ReadMode)[keyof typeof ReadMode];

/** Options of {@link readFiltered}. */
export interface ReadFilteredOptions {
  /** Which messages per subject. @default "last_per_subject" */
  mode?: ReadMode;
  /** Only headers, no payloads. @default false */
  headersOnly?: boolean;
  /** Start at this stream sequence (with mode "all"). */
  startSequence?: number;
  /** Messages per pull request. @default 1000 */
  batch?: number;
  /**
   * Attempts to create the consumer (and to ask for the leader's last
   * message) while the cluster cannot answer: time-outs, no responders, no
   * leader, "JetStream system temporarily unavailable" while a restarted
   * node rejoins. The waits between them are random, up to 250 ms and
   * doubling to at most 1 s: the default rides out about 5 s of an
   * election on average. @default 12
   */
  attempts?: number;
  /**
   * Whether the stream may have more than one replica. Then the read is
   * checked against the stream leader's last message under the filter (one
   * more request, sent alongside the consumer's creation) and never ends
   * before it. Pass `false` only for a stream known to have one replica:
   * its only peer serves every read (a last-value read then asks for the
   * last message under the filter before it creates its consumer, instead
   * of remembering every subject it delivered). @default true
   */
  replicated?: boolean;
  /**
   * How long a replicated read waits for lagging peers before it fails
   * with `UnavailableError`, in ms, counted from the first consumer found
   * behind (its lag grace included), and anew from a consumer given up
   * after it delivered more than the one before it: time spent on stale
   * consumers and between them, not the time a large read takes. A caught-up read never
   * waits. @default 30000
   */
  catchUpTimeoutMs?: number;
  /**
   * End the read once it delivered the stream's last message under the
   * filter as of the read's start (asked from the stream leader), without
   * waiting for the consumer to report nothing pending: nats-server
   * reports a wrong pending count for some filtered consumers (one
   * starting at a sequence, on a stream keeping several revisions per
   * subject, never reaches 0), and a change feed must not depend on it.
   * @default false
   */
  untilLast?: boolean;
  /**
   * With `untilLast`: how many more times a read that delivered the
   * leader's last message asks the leader for it again. The read ends once
   * what it delivered before a question reaches the answer, or once it
   * delivered the answer to its last question. In mode "last_per_subject"
   * the consumer passes over a revision written over (and, on a stream
   * keeping one message per subject, removed) before it reached it, and
   * delivers the newer one later: each question reads on to what the round
   * before may have passed over, so a subject that had a message when the
   * read began is left out only if, after each answer, it was written
   * again before the consumer reached its previous message (its last write
   * is then past the read's end). Ends under continuous writes, after at
   * most `rechecks` more answers. A consumer created anew during the read
   * takes at least one more question (it takes each subject's last message
   * at its creation, maybe past the target). @default 0
   */
  rechecks?: number;
  /**
   * In mode "all": end the read once it delivered this many messages
   * (`limited` is then true in the result); the next read starts after
   * its `lastSequence`. @default no limit
   */
  maxMessages?: number;
  /** Aborts the read. */
  signal?: AbortSignal | undefined;
}

/** What {@link readFiltered} did. */
export interface ReadFilteredResult {
  /** The highest stream sequence delivered (0 when nothing was). */
  lastSequence: number;
  /**
   * True when the read went on past a lagging peer's view of the stream, or,
   * in mode "last_per_subject", delivered a subject more than once (a newer
   * revision written during the read) or, on a one-replica stream
   * (`replicated: false`), may have (it delivered a message written after
   * the read began): each later delivery is a newer revision and wins
   * ({@link keepLastPerKey}). False guarantees every subject came once.
   */
  lagged: boolean;
  /** Consumers given up because their peer stayed behind (each followed by a new one). */
  restarts: number;
  /** The read ended at {@link ReadFilteredOptions.maxMessages}: the stream may hold more. */
  limited: boolean;
  /** The stream leader's last sequence under the filter, as last asked (0 when the read did not ask). */
  target: number;
}

/** What a read must deliver to be complete. */
interface Goal {
  /** The read is complete once it delivered this stream sequence (or a later one). */
  target: number;
  /** Whether {@link last} was asked once the consumer reported nothing pending. */
  verified: boolean;
  /** With `untilLast`: questions to the leader left once the target is reached ({@link ReadFilteredOptions.rechecks}). */
  rechecks: number;
  /** The sequence of the stream's last message under the filter (0 when none), from the leader. */
  last: () => Promise<number>;
  /** In mode "last_per_subject": the subjects delivered so far (a second delivery sets `lagged`). */
  subjects: Set<string> | undefined;
  /**
   * Instead of {@link subjects}, on a one-replica stream: the last sequence
   * under the filter, asked before the consumer was created. The consumer's
   * first pass (the last message of each subject as of its creation) holds
   * only sequences up to the stream's end then, which is at or after this
   * one: a subject can come again only at a later sequence, so a message
   * after this one sets `lagged` (it may be a new subject: `lagged` then
   * only costs the caller a pass of {@link keepLastPerKey}).
   */
  fresh: number;
  /** Messages the read may still deliver ({@link ReadFilteredOptions.maxMessages}). */
  remaining: number;
}

/** How long a consumer whose peer is behind may take to deliver the leader's last message, in ms. */
const LAG_GRACE_MS = 500;

/**
 * How often a read checks that its consumer delivered something, in ms.
 * One that delivered nothing for a whole period while it still reported
 * messages pending makes the read ask the stream leader whether it is
 * complete: nats-server's count can stay above 0 for good (a
 * last-per-subject consumer created on a peer that had not applied the
 * latest writes yet counts the revisions those writes replace, then
 * delivers the new ones and never reports nothing pending).
 */
const STALL_CHECK_MS = 1_000;

/**
 * The idle heartbeat a read's pull requests ask for, in ms: with two
 * missed, the client checks that the consumer still exists, so a deleted
 * one is noticed within about three of these. The server sends them only
 * while a request waits with nothing to deliver (nothing on a busy read).
 */
const HEARTBEAT_MS = 1_000;

/**
 * Calls `onMessage` for each matching message, in stream order (strictly
 * increasing sequences, never one twice), until the consumer reports
 * nothing pending and, on a replicated stream, the stream leader's last
 * matching message was delivered.
 */
export async function readFiltered(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  onMessage: OnMessage,
  options: ReadFilteredOptions = {},
): Promise<ReadFilteredResult> {
  throwIfAborted(options.signal);
  const signal = options.signal;
  const mode = options.mode ?? ReadMode.LastPerSubject;
  const start = options.startSequence;
  const attempts = options.attempts ?? READ_ATTEMPTS;
  const retry = readRetryPolicy(attempts);
  const result: ReadFilteredResult = { lastSequence: 0, lagged: false, restarts: 0, limited: false, target: 0 };
  /** Consumers that disappeared from the server during the read (deleted, dropped by a restart). */
  let lost = 0;
  const config = (from: number | undefined): Partial<ConsumerConfig> => ({
    filter_subject: filter,
    deliver_policy: from !== undefined ? "by_start_sequence" : mode === ReadMode.All ? "all" : "last_per_subject",
    ...(from !== undefined ? { opt_start_seq: from } : {}),
    ack_policy: "none",
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: 30_000 * 1_000_000, // nanoseconds
    headers_only: options.headersOnly ?? false,
  });
  const create = (from: number | undefined) =>
    retrying(retry, () => jsm.consumers.add(stream, config(from)), { signal });
  const lastUnderFilter = () =>
    retryingRead(() => jsm.streams.getMessage(stream, { last_by_subj: filter }), signal, attempts);
  const goal: Goal = {
    target: 0,
    verified: false,
    rechecks: options.untilLast ? (options.rechecks ?? 0) : 0,
    subjects: mode === ReadMode.LastPerSubject ? new Set() : undefined,
    fresh: Number.POSITIVE_INFINITY,
    remaining: mode === ReadMode.All ? (options.maxMessages ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY,
    last: async () => {
      const last = await lastUnderFilter();
      return last && last.seq >= (start ?? 0) ? last.seq : 0;
    },
  };
  let ci: ConsumerInfo;
  if (options.replicated === false && !options.untilLast) {
    // One peer: it serves every read, and the check below comes at the end.
    if (goal.subjects !== undefined && start === undefined) {
      // Remembering every subject costs about a microsecond each; one request before the consumer
      // is created bounds where a subject can come twice instead (see Goal.fresh).
      goal.fresh = await goal.last();
      goal.subjects = undefined;
    }
    ci = await create(start);
  } else {
    // The leader's last message under the filter: everything acknowledged before this call is at or before it.
    const [created, asked] = await Promise.allSettled([create(start), lastUnderFilter()]);
    if (asked.status === "rejected") {
      if (created.status === "fulfilled") jsm.consumers.delete(stream, created.value.name).catch(() => undefined);
      throw asked.reason;
    }
    if (created.status === "rejected") throw created.reason;
    ci = created.value;
    const last = asked.value;
    goal.target = last && last.seq >= (start ?? 0) ? last.seq : 0;
  }
  /**
   * When the read gives up on lagging peers: counted from the first consumer that stayed behind, and anew from one
   * that delivered more than the one before it (delivering a large slice is no lag).
   */
  let deadline = 0;
  /** What was delivered when the last consumer was given up: a consumer that delivered more starts the time anew. */
  let givenUpAt = -1;
  for (let info = ci; ; ) {
    const outcome = await consume(js, jsm, stream, info, goal, result, onMessage, options);
    result.target = goal.target;
    if (outcome === "caughtUp") return result;
    if (outcome === "lost") {
      // The consumer was deleted on the server: go on with a new one (below), a bounded number of times.
      lost++;
      if (lost > attempts) {
        throw new UnavailableError(
          `reading ${filter} from stream ${stream}: its consumer was deleted on the server ${lost} times ` +
            `during the read (reached sequence ${result.lastSequence})`,
        );
      }
      throwIfAborted(signal);
    } else {
      // This consumer stayed behind the target. If the target message is gone meanwhile (expired by a
      // TTL, purged, deleted), the leader's last is lower now: what was delivered is complete.
      const now = await goal.last();
      result.target = now;
      if (now <= result.lastSequence) return result;
      goal.target = now;
      // Its peer lags: try a new consumer (the server places it anew).
      result.lagged = true;
      const timeout = options.catchUpTimeoutMs ?? 30_000;
      if (result.lastSequence > givenUpAt) deadline = Date.now() - LAG_GRACE_MS + timeout;
      givenUpAt = result.lastSequence;
      if (Date.now() >= deadline) {
        const reached = `reached sequence ${result.lastSequence}, the leader has ${goal.target}`;
        throw new UnavailableError(
          outcome === "behind"
            ? `reading ${filter} from stream ${stream}: no up-to-date replica served it within ${timeout} ms (${reached})`
            : `reading ${filter} from stream ${stream}: its consumers delivered nothing short of the stream leader's ` +
                `last message for ${timeout} ms (${reached}; a replica down or far behind, or a stalled server or link)`,
        );
      }
      result.restarts++;
      await sleep(Math.min(1_000, 50 * 2 ** Math.min(result.restarts, 5)), signal);
      throwIfAborted(signal);
    }
    // "all" resumes after what was delivered; "last_per_subject" reads the last values again.
    const from = mode === ReadMode.All || start !== undefined ? result.lastSequence + 1 : undefined;
    // A new last-value consumer takes its keys' last revisions when it is created, maybe past the target
    // (see ReadFilteredOptions.rechecks): one more question to the leader once it reached the target.
    if (from === undefined && (options.rechecks ?? 0) > 0) goal.rechecks = Math.max(goal.rechecks, 1);
    info = await create(from !== undefined && start !== undefined ? Math.max(from, start) : from);
  }
}

/**
 * Delivers the consumer's messages newer than `result.lastSequence`:
 * "caughtUp" once it is caught up and reached `goal.target` (with
 * `untilLast`: once it reached it and the leader's answers to the
 * rechecks, {@link ReadFilteredOptions.rechecks}); "lost" when the
 * consumer disappeared from the server. On a replicated stream, a
 * consumer behind the target gets the lag grace ({@link LAG_GRACE_MS}),
 * then is given up: "behind" when it reported nothing pending (its peer
 * lags), "stalled" when it delivered nothing for {@link STALL_CHECK_MS}
 * (its peer is down or far behind, or the server or the link does not
 * deliver). A consumer is never given up for being slow while it still
 * reports messages pending and delivers, nor ever on a one-replica stream,
 * whose only peer is the leader: a slow link or a busy server delays it,
 * and another consumer would not be ahead. Deletes the consumer in every
 * case.
 *
 * The messages come to a callback, straight from the connection's parser
 * (no async iterator step per message); they are handled one at a time, in
 * the order the consumer delivers them.
 */
async function consume(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  ci: ConsumerInfo,
  goal: Goal,
  result: ReadFilteredResult,
  onMessage: OnMessage,
  options: ReadFilteredOptions,
): Promise<"caughtUp" | "behind" | "stalled" | "lost"> {
  const remove = () => {
    jsm.consumers.delete(stream, ci.name).catch(() => undefined);
  };
  const reached = () => result.lastSequence >= goal.target;
  const untilLast = options.untilLast === true;
  const replicated = options.replicated !== false;
  // Done before delivering: a read to the end of a consumer with nothing pending, or a read to the leader's last
  // with no question left, or whose leader had nothing under the filter (no key to miss, no message to wait for).
  if (reached() && (untilLast ? goal.rechecks === 0 || goal.target === 0 : ci.num_pending === 0)) {
    remove();
    return "caughtUp";
  }
  const signal = options.signal;
  /** How the read of this consumer ended: set once, by whatever ends it first. */
  let end:
    | { outcome: "caughtUp" | "behind" | "stalled" | "lost" | "aborted" }
    | { outcome: "failed"; error: unknown }
    | undefined;
  let messages: ConsumerMessages | undefined;
  const finish = (how: NonNullable<typeof end>) => {
    end ??= how;
    messages?.stop();
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Set once this consumer's read is over (its `finally` ran): callbacks still in flight change nothing then. */
  let over = false;
  /** A consumer info request of {@link stalled} is under way. */
  let inquiring = false;
  /**
   * The consumer is behind the target: it reported nothing pending, or
   * delivered nothing for a while. On a replicated stream its peer may
   * still be applying the rest: it gets the lag grace (any delivery ends
   * it), then is given up. One replica has no other peer: it is kept (the
   * stall check asks the leader again).
   */
  const lagging = (outcome: "behind" | "stalled") => {
    if (replicated) timer ??= setTimeout(() => finish({ outcome }), LAG_GRACE_MS);
  };
  /** Asking the leader for its last message: until it answers, the read does not end. */
  let verifying = false;
  /**
   * Asks the leader for its last message under the filter. The read is
   * complete when what was delivered before the question reaches it: a
   * revision the consumer had not reached when the leader answered may be
   * replaced (and removed) afterwards, its replacement after that last
   * message, so deliveries during the question prove nothing. Short of it,
   * `then` decides (only once nothing reached it during the question: the
   * next check does then, or, with `untilLast`, the next recheck).
   */
  const askLeader = (then: () => void) => {
    verifying = true;
    const asked = result.lastSequence;
    goal.last().then(
      (last) => {
        // The read of this consumer ended meanwhile (aborted, failed, or the consumer gone): the goal is the next
        // consumer's now, and an older answer must not lower its target.
        if (end !== undefined || over) return;
        verifying = false;
        // The leader's last now: below the target when the target message is gone (expired, purged, replaced).
        goal.target = last;
        if (asked >= last) finish({ outcome: "caughtUp" });
        else if (!reached()) then();
        else if (untilLast) atTarget();
        else if (dry) ranDry(); // its last delivery reported nothing pending during the question
      },
      (error: unknown) => finish({ outcome: "failed", error }),
    );
  };
  /** With `untilLast`: the target is reached; the read ends, or asks the leader again and reads on to its answer. */
  const atTarget = () => {
    if (goal.rechecks === 0) finish({ outcome: "caughtUp" });
    else if (!verifying) {
      goal.rechecks--;
      askLeader(() => undefined);
    }
  };
  /**
   * A consumer that delivered nothing for a while, short of the leader's
   * last message: gone from the server ("lost", noticed here sooner than by
   * its heartbeats), or on a peer that lags or is down (the lag grace, then
   * "stalled"; nats.js asks a dead peer for the consumer's info forever).
   */
  const stalled = () => {
    if (inquiring) return; // one at a time: on a dead node each waits for its time-out
    inquiring = true;
    jsm.consumers.info(stream, ci.name).then(
      () => {
        inquiring = false;
        if (end === undefined && !over) lagging("stalled");
      },
      (error: unknown) => {
        inquiring = false;
        if (isConsumerGone(error)) finish({ outcome: "lost" });
        else if (end === undefined && !over) lagging("stalled");
      },
    );
  };
  const ranDry = () => {
    if (!reached()) {
      // One replica is the leader: the target message is gone (expired, purged, replaced) unless more is coming.
      if (replicated) lagging("behind");
      else askLeader(() => undefined);
      return;
    }
    if (untilLast) return; // atTarget decides
    if (!goal.verified) {
      // nats-server (2.9) can report nothing pending on a last-per-subject consumer while a key
      // it was to deliver was replaced by a newer revision during the read: the old one is skipped,
      // the new one comes later. Once, read on to the last message under the filter now.
      goal.verified = true;
      askLeader(() => lagging("behind"));
      return;
    }
    finish({ outcome: "caughtUp" });
  };
  /** Messages delivered by this consumer, and as many when the stall check last looked. */
  let deliveries = 0;
  let seen = 0;
  /** Whether the last delivery reported nothing pending. */
  let dry = false;
  let stall: ReturnType<typeof setInterval> | undefined;
  /** Every {@link STALL_CHECK_MS}: nothing delivered meanwhile, and no check or lag grace under way, asks the leader. */
  const watchStall = () => {
    stall = setInterval(() => {
      if (deliveries === seen && end === undefined && !verifying && timer === undefined) askLeader(stalled);
      seen = deliveries;
    }, STALL_CHECK_MS);
  };
  const { subjects, fresh } = goal;
  const delivery: Delivery = { seq: 0, pending: 0 };
  const onMessageOf = (m: JsMsg) => {
    if (end !== undefined) return;
    deliveries++;
    try {
      readDelivery(m, delivery);
      dry = delivery.pending === 0;
      if (delivery.seq > result.lastSequence) {
        if (timer !== undefined) {
          // Progress after running dry: the peer is catching up; give it the full grace again.
          clearTimeout(timer);
          timer = undefined;
          result.lagged = true;
        }
        // A subject delivered again (a newer revision written during the read, or after a restart).
        if (subjects !== undefined) {
          if (subjects.size === subjects.add(m.subject).size) result.lagged = true;
        } else if (delivery.seq > fresh) {
          result.lagged = true;
        }
        result.lastSequence = delivery.seq;
        onMessage(m, delivery.seq);
        if (--goal.remaining === 0) {
          result.limited = true;
          finish({ outcome: "caughtUp" });
          return;
        }
        if (untilLast && reached()) {
          atTarget();
          return;
        }
      }
      if (delivery.pending === 0 && !verifying) ranDry();
    } catch (error) {
      finish({ outcome: "failed", error });
    }
  };
  const onAbort = () => finish({ outcome: "aborted" });
  signal?.addEventListener("abort", onAbort, { once: true });
  let closed: Error | undefined;
  try {
    if (signal?.aborted) onAbort();
    messages = await js.consumers.getConsumerFromInfo(ci).consume({
      max_messages: Math.min(options.batch ?? 1000, goal.remaining),
      callback: onMessageOf,
      // Without these, a deleted consumer leaves the read waiting forever: the client notices it only
      // after two missed heartbeats (15 s each by default), then retries its consumer info endlessly.
      idle_heartbeat: HEARTBEAT_MS,
      abort_on_missing_resource: true,
    });
    if (end !== undefined) messages.stop();
    // The lag grace starts once the consumer is pulling: setting it up can take longer than the grace
    // (a busy cluster), which must not count as its peer staying behind. Nor does a consumer still
    // counting messages pending lag: its deliveries may take long (a slow link, a busy server or
    // client); the stall check notices one that delivers nothing.
    else {
      if (untilLast && reached()) {
        atTarget(); // a new consumer of a read that had reached the target
      } else if (ci.num_pending === 0) {
        ranDry();
      }
      watchStall();
    }
    closed = (await messages.closed()) ?? undefined;
  } catch (error) {
    end ??= { outcome: "failed", error };
  } finally {
    over = true;
    clearTimeout(timer);
    clearInterval(stall);
    signal?.removeEventListener("abort", onAbort);
    messages?.stop();
    remove();
  }
  switch (end?.outcome) {
    case "failed":
      throw end.error;
    case "aborted":
      throw new AbortError(signal?.reason);
    case "caughtUp":
    case "behind":
    case "stalled":
    case "lost":
      return end.outcome;
    default:
      // The consumer stopped by itself: it was deleted (the client's reason says so), or something else ended it.
      if (isConsumerGone(closed)) return "lost";
      if (closed !== undefined) throw closed;
      throw new UnavailableError(`reading ${ci.config.filter_subject} from stream ${stream} ended before it caught up`);
  }
}

/** What {@link readFiltered} passes on per message: the message and its stream sequence. */
export type OnMessage = (m: JsMsg, seq: number) => void;

/** The stream sequence of a delivered message and how many the consumer still has pending. */
export interface Delivery {
  seq: number;
  pending: number;
}

/** The dots of a reply subject (scratch space of {@link readDelivery}). */
const DOTS = new Int32Array(12);

/**
 * Fills `out` from the reply subject of a JetStream message: what
 * `JsMsg.info` parses, without splitting the subject into strings and
 * building the whole delivery info (the hot path of a large read). Reply
 * subjects are `$JS.ACK.<stream>.<consumer>.<delivered>.<streamSeq>.<consumerSeq>.<timestamp>.<pending>`,
 * or, from newer servers, with a domain and an account hash after `$JS.ACK`
 * (and maybe more tokens at the end). Anything else goes through
 * `JsMsg.info` (which throws for a message that is not from JetStream).
 * The result equals `info.streamSequence` and `info.pending`.
 * Internal (exported for its tests).
 */
export function readDelivery(m: Pick<JsMsg, "info"> & { readonly reply?: string }, out: Delivery): void {
  // nats.js's JsMsg implementation exposes the reply subject (not in its interface): without it, `info`.
  const reply = typeof m.reply === "string" ? m.reply : "";
  let dots = 0;
  for (let i = reply.indexOf("."); i >= 0; i = reply.indexOf(".", i + 1)) {
    if (dots < DOTS.length) DOTS[dots] = i;
    dots++;
  }
  // Tokens: dots + 1. Nine: the format without domain; eleven or more: with domain and account hash.
  const shifted = dots >= 10 ? 2 : 0;
  const known = (dots === 8 || dots >= 10) && reply.startsWith("$JS.ACK.");
  const seq = known ? tokenNumber(reply, 5 + shifted, dots) : Number.NaN;
  const pending = Number.isNaN(seq) ? Number.NaN : tokenNumber(reply, 8 + shifted, dots);
  if (Number.isNaN(pending)) {
    const info = m.info;
    out.seq = info.streamSequence;
    out.pending = info.pending;
    return;
  }
  out.seq = seq;
  out.pending = pending;
}

/** Token `index` of a subject whose dots are in {@link DOTS} as a decimal number, or NaN. */
function tokenNumber(subject: string, index: number, dots: number): number {
  const from = (DOTS[index - 1] as number) + 1;
  const to = index < dots ? (DOTS[index] as number) : subject.length;
  if (from >= to || to - from > 15) return Number.NaN;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = subject.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return value;
}

/** The default of {@link ReadFilteredOptions.attempts}. */
export const READ_ATTEMPTS = 12;

/**
 * The retry policy of a read's requests: `attempts` in all, while the
 * cluster cannot answer ({@link isRetryable}), waiting a random time up to
 * 250 ms, doubling to at most 1 s. Internal (exported for its tests).
 */
export function readRetryPolicy(attempts: number): Required<RetryPolicy> {
  return { maxAttempts: attempts, backoffMs: 250, maxBackoffMs: 1_000, retryOn: isRetryable };
}

/**
 * One read request (a get, a stream info) under {@link readRetryPolicy}:
 * asked again while the cluster cannot answer ({@link isRetryable}: an
 * election of the stream leader, a restarted node rejoining), as
 * {@link readFiltered}'s own requests are. A get of a missing message
 * answers `null` (the client's "no message found"): an answer, never
 * retried. `signal` ends the call at once with an `AbortError`, also while
 * a request is under way (a read changes nothing on the server).
 * @throws the client's last error (callers wrap it with `natsError`), or `AbortError`
 */
export function retryingRead<T>(
  request: () => Promise<T>,
  signal?: AbortSignal,
  attempts: number = READ_ATTEMPTS,
): Promise<T> {
  return retrying(readRetryPolicy(attempts), () => untilAborted(request, signal), { signal });
}

/**
 * How long a user's single read ({@link retryingGet}) keeps asking, in ms:
 * an election takes a few seconds, and a request the server leaves
 * unanswered takes the client's 5 s time-out, so a read asks up to about
 * three times in a row that time out. (A bucket deleted under a one-replica
 * store answers its direct gets with nothing at all: the read fails after
 * this long, not after twelve time-outs.)
 */
export const GET_RETRY_WINDOW_MS = 15_000;

/**
 * A read a user's call waits on (a get of one key, a stream info), under
 * {@link retryingRead}'s rule for up to {@link GET_RETRY_WINDOW_MS}: no new
 * attempt starts after that.
 * @throws the client's last error (callers wrap it with `natsError`), or `AbortError`
 */
export function retryingGet<T>(request: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + GET_RETRY_WINDOW_MS;
  const policy = {
    ...readRetryPolicy(READ_ATTEMPTS),
    retryOn: (e: unknown) => isRetryable(e) && Date.now() < deadline,
  };
  return retrying(policy, () => untilAborted(request, signal), { signal });
}

/** `request()`, or an `AbortError` as soon as `signal` aborts (none sent once it has). */
function untilAborted<T>(request: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return request();
  if (signal.aborted) return Promise.reject(new AbortError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    request().then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The items whose key occurs last, in the order of those last occurrences:
 * what a "last_per_subject" read that {@link ReadFilteredResult.lagged} means.
 */
export function keepLastPerKey<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as T;
    const key = keyOf(item);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(item);
  }
  return out.reverse();
}

/**
 * Whether the client stopped a consume because its consumer is gone from
 * the server: a "409 Consumer Deleted" status to a waiting pull request,
 * or "consumer not found" (JetStream API error 10014) when it checked after
 * missed heartbeats or a reconnect.
 */
function isConsumerGone(error: unknown): boolean {
  const { name, code, message } = (error ?? {}) as { name?: unknown; code?: unknown; message?: unknown };
  if (name === "ConsumerNotFoundError" || code === CONSUMER_NOT_FOUND) return true;
  return code === 409 && typeof message === "string" && /consumer deleted/i.test(message);
}

/** JetStream's API error code for "consumer not found". */
const CONSUMER_NOT_FOUND = 10014;

export function isRetryable(error: unknown): boolean {
  // The client's TimeoutError says "timeout"; the others come as JetStream API errors (10008: "JetStream
  // system temporarily unavailable", while a restarted node rejoins).
  return /timeout|no responders|leader|temporarily unavailable/i.test(`${(error as Error)?.name} ${String(error)}`);
}

/**
 * One stored message of `stream` (a key's last: `last_by_subj`; the next
 * after a sequence: `next_by_subj`, `seq`): a direct get when `direct` (a
 * bucket of one replica that allows them: fastest), otherwise a get the
 * stream leader answers (a replica could answer stale). STREAM.MSG.GET
 * accepts `next_by_subj` since nats-server 2.9; the client's type lists only
 * `seq` and `last_by_subj`. Asked again while the cluster cannot answer (a
 * leader election): {@link retryingGet}.
 */
export function getStored(
  jsm: JetStreamManager,
  stream: string,
  direct: boolean,
  query: LastForMsgRequest | NextMsgRequest,
  signal: AbortSignal | undefined,
): Promise<StoredMsg | null> {
  return retryingGet(
    () =>
      direct ? jsm.direct.getMessage(stream, query) : jsm.streams.getMessage(stream, query as unknown as MsgRequest),
    signal,
  );
}
