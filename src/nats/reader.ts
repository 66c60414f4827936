/**
 * Reads a filtered slice of a JetStream stream to its current end with an
 * ephemeral, unacknowledged pull consumer: the consumer's creation reply
 * says how many messages are pending, so an empty slice costs one round
 * trip and a full one ends exactly when it is caught up (no idle time-out).
 * Only the subjects under `filter` are read; other keys of the bucket are
 * never scanned.
 */
import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { errors, nanos } from "@nats-io/transport-node";
import { AbortError, throwIfAborted, UnavailableError } from "../core/errors.js";

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
  /** Attempts to create the consumer when the server times out (a cluster election). @default 3 */
  attempts?: number;
  /** Aborts the read. */
  signal?: AbortSignal | undefined;
}

/**
 * Calls `onMessage` for each matching message, in stream order, until the
 * consumer reports nothing pending.
 */
export async function readFiltered(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  onMessage: (m: JsMsg) => void,
  options: ReadFilteredOptions = {},
): Promise<void> {
  throwIfAborted(options.signal);
  const mode = options.mode ?? ReadMode.LastPerSubject;
  const start = options.startSequence;
  const config = {
    filter_subject: filter,
    deliver_policy:
      start !== undefined
        ? DeliverPolicy.StartSequence
        : mode === ReadMode.All
          ? DeliverPolicy.All
          : DeliverPolicy.LastPerSubject,
    ...(start !== undefined ? { opt_start_seq: start } : {}),
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(30_000),
    headers_only: options.headersOnly ?? false,
  };
  // Creating a consumer can time out while a cluster elects a leader: retry a few times.
  let ci: ConsumerInfo | undefined;
  for (let attempt = 1; ci === undefined; attempt++) {
    try {
      ci = await jsm.consumers.add(stream, config);
    } catch (error) {
      if (attempt >= (options.attempts ?? 3) || !isRetryable(error)) throw error;
      throwIfAborted(options.signal);
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
  const remove = () => {
    jsm.consumers.delete(stream, ci.name).catch(() => undefined);
  };
  if (ci.num_pending === 0) {
    remove();
    return;
  }
  const consumer = js.consumers.getConsumerFromInfo(ci);
  const messages = await consumer.consume({ max_messages: options.batch ?? 1000 });
  let aborted = false;
  let caughtUp = false;
  const onAbort = () => {
    aborted = true;
    messages.stop();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const m of messages) {
      onMessage(m);
      if (m.info.pending === 0) {
        caughtUp = true;
        break;
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    messages.stop();
    remove();
  }
  if (aborted) throw new AbortError(options.signal?.reason);
  if (!caughtUp) throw new UnavailableError(`reading ${filter} from stream ${stream} ended before it caught up`);
}

function isRetryable(error: unknown): boolean {
  return error instanceof errors.TimeoutError || /timeout|no responders|leader/i.test(String(error));
}
