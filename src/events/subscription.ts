/**
 * Subscriptions, pull-based: a subscriber copies at most `bufferSize`
 * events from the index at a time and asks for more when it has delivered
 * them, so it can never skip an event, receive one twice, or make the store
 * buffer for it. When nothing is left it waits for the next commit.
 */
import { checkSignal, ValidationError } from "../index.js";
import { isBehindRetentionError } from "./errors.js";
import type { EventLog } from "./log.js";
import type { EventSubscription, RecordedEvent, SubscribeOptions } from "./types.js";

/** What a subscription needs from its store. */
export interface SubscriptionSource {
  readonly log: EventLog;
  /** Events after `position`, at most `limit`. @throws BehindRetentionError */
  fetch(position: number, limit: number): RecordedEvent[];
  /** Position of an event in this subscription's order (stream or global). */
  positionOf(event: RecordedEvent): number;
  /** The stream to wait on, undefined for all. */
  readonly streamId: string | undefined;
  /** True once the store is closed. */
  isClosed(): boolean;
  /** Called when the subscription ends (for stats). */
  onEnd(subscription: Subscription): void;
  /** Counts delivered events. */
  onDelivered(count: number): void;
  /** Reports a subscriber ended by retention. */
  onDropped(position: number, firstAvailable: number): void;
}

/** Default buffer of a subscriber, in events (`SubscribeOptions.bufferSize`). */
const SUBSCRIPTION_BUFFER = 256;

/** A live subscription over a {@link SubscriptionSource}; `BaseEventStore.subscribe` and `subscribeAll` create them. */
export class Subscription implements EventSubscription {
  readonly caughtUp: Promise<boolean>;
  #resolveCaughtUp!: (value: boolean) => void;
  #position: number;
  #buffer: RecordedEvent[] = [];
  #index = 0;
  #ended = false;
  #live = false;
  /** How events are taken: one at a time by the async iterator, or in batches by {@link nextBatch}; fixed by the first call. */
  #mode: "iterator" | "batches" | undefined;
  #wake: (() => void) | undefined;
  #cancelWait: (() => void) | undefined;
  #pending: Promise<IteratorResult<RecordedEvent>> = Promise.resolve({ done: true, value: undefined });
  #pendingBatch: Promise<readonly RecordedEvent[]> = Promise.resolve([]);
  readonly #source: SubscriptionSource;
  readonly #bufferSize: number;
  readonly #signal: AbortSignal | undefined;
  readonly #accepts: ((event: RecordedEvent) => boolean) | undefined;
  readonly #onCheckpoint: ((position: number) => void) | undefined;
  /** The last position delivered or reported to `onCheckpoint`. */
  #reported: number;
  readonly #onAbort = () => this.close();

  constructor(source: SubscriptionSource, from: number, options: SubscribeOptions | undefined) {
    const bufferSize = options?.bufferSize;
    const signal = options?.signal;
    checkSignal(signal);
    const size = bufferSize ?? SUBSCRIPTION_BUFFER;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new ValidationError("bufferSize", `must be an integer >= 1, got ${String(bufferSize)}`);
    }
    this.#source = source;
    this.#position = from;
    this.#bufferSize = size;
    this.#signal = signal;
    this.#accepts = eventFilter(options);
    this.#onCheckpoint = options?.onCheckpoint;
    this.#reported = from;
    this.caughtUp = new Promise((resolve) => {
      this.#resolveCaughtUp = resolve;
    });
    if (signal?.aborted) this.#end();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get position(): number {
    return this.#position;
  }

  get isLive(): boolean {
    return this.#live && !this.#ended;
  }

  close(): void {
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#live = false;
    this.#buffer = [];
    this.#index = 0;
    this.#cancelWait?.();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#resolveCaughtUp(false);
    this.#source.onEnd(this);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#end();
  }

  #take(mode: "iterator" | "batches"): void {
    if (this.#mode === undefined) this.#mode = mode;
    else if (mode === "iterator" || this.#mode !== mode)
      throw new ValidationError("subscription", "can be iterated only once, either with for await or with nextBatch()");
  }

  [Symbol.asyncIterator](): AsyncIterator<RecordedEvent> {
    this.#take("iterator");
    return {
      // Calls are chained so that concurrent next() calls still deliver in order.
      next: () => {
        this.#pending = this.#pending.then(
          () => this.#next(),
          () => this.#next(),
        );
        return this.#pending;
      },
      return: async () => {
        this.#end();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * The next events, in order: every event already fetched and not yet
   * delivered (at least one; filtered ones left out), waiting for new ones
   * when there are none; `[]` once the subscription ended. The same
   * guarantees as the iterator (no gap, no duplicate, `onCheckpoint`), one
   * call per batch instead of one `await` per event. A subscription is
   * read either with `for await` or with `nextBatch()`, not both.
   * @throws BehindRetentionError when events it still had to deliver were removed by retention
   */
  nextBatch(): Promise<readonly RecordedEvent[]> {
    this.#take("batches");
    this.#pendingBatch = this.#pendingBatch.then(
      () => this.#nextBatch(),
      () => this.#nextBatch(),
    );
    return this.#pendingBatch;
  }

  async #nextBatch(): Promise<readonly RecordedEvent[]> {
    for (;;) {
      if (this.#ended || this.#source.isClosed()) {
        this.#end();
        return [];
      }
      const buffer = this.#buffer;
      const from = this.#index;
      if (from < buffer.length) {
        this.#buffer = [];
        this.#index = 0;
        const source = this.#source;
        this.#position = source.positionOf(buffer[buffer.length - 1] as RecordedEvent);
        const accepts = this.#accepts;
        let batch: RecordedEvent[];
        if (accepts === undefined) batch = from === 0 ? buffer : buffer.slice(from);
        else {
          batch = [];
          for (let i = from; i < buffer.length; i++) {
            const event = buffer[i] as RecordedEvent;
            if (accepts(event)) batch.push(event);
          }
          if (batch.length === 0) continue;
        }
        this.#reported = source.positionOf(batch[batch.length - 1] as RecordedEvent);
        source.onDelivered(batch.length);
        return batch;
      }
      await this.#refill();
    }
  }

  async #next(): Promise<IteratorResult<RecordedEvent>> {
    for (;;) {
      if (this.#ended || this.#source.isClosed()) {
        this.#end();
        return { done: true, value: undefined };
      }
      if (this.#index < this.#buffer.length) {
        const event = this.#buffer[this.#index++] as RecordedEvent;
        this.#position = this.#source.positionOf(event);
        if (this.#accepts && !this.#accepts(event)) continue;
        this.#reported = this.#position;
        this.#source.onDelivered(1);
        return { done: false, value: event };
      }
      await this.#refill();
    }
  }

  /**
   * Fetches the next events into the buffer, or, when there are none,
   * reports the checkpoint and waits for the next commit (or the end).
   * @throws BehindRetentionError (the subscription ends)
   */
  async #refill(): Promise<void> {
    try {
      this.#buffer = this.#source.fetch(this.#position, this.#bufferSize);
    } catch (error) {
      if (isBehindRetentionError(error)) this.#source.onDropped(error.position, error.firstAvailable);
      this.#end();
      throw error;
    }
    this.#index = 0;
    if (this.#buffer.length > 0) {
      this.#live = false;
      return;
    }
    // From 0, a reader starts at the oldest stored event: with none left (retention), it is at the head, and
    // that is its position and checkpoint (nothing it could still deliver lies before it).
    const start = this.#source.log.startOf(this.#source.streamId);
    if (this.#position < start) this.#position = start;
    this.#live = true;
    // Listening before the checkpoint is reported: an append made by the observer wakes this wait, and a close or
    // an abort from it ends the wait (both were missed when the wait began after the observer returned).
    const woken = new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#cancelWait = this.#source.log.onNext(this.#source.streamId, resolve);
    });
    if (this.#position > this.#reported) {
      this.#reported = this.#position;
      try {
        this.#onCheckpoint?.(this.#position);
      } catch {
        // A checkpoint observer must not break the subscription.
      }
    }
    this.#resolveCaughtUp(true);
    await woken;
    this.#wake = undefined;
    this.#cancelWait?.();
    this.#cancelWait = undefined;
  }
}

/**
 * The filter of `SubscribeOptions.types` and `streamPrefix`, undefined when
 * there is none.
 * @throws ValidationError for a filter that is not a list of strings or a string
 */
function eventFilter(options: SubscribeOptions | undefined): ((event: RecordedEvent) => boolean) | undefined {
  const types = options?.types;
  const prefix = options?.streamPrefix;
  if (types !== undefined && (!Array.isArray(types) || types.some((t) => typeof t !== "string" || t === ""))) {
    throw new ValidationError("types", "must be an array of non-empty event types");
  }
  if (prefix !== undefined && typeof prefix !== "string") {
    throw new ValidationError("streamPrefix", `must be a string, got ${typeof prefix}`);
  }
  const onCheckpoint = options?.onCheckpoint;
  if (onCheckpoint !== undefined && typeof onCheckpoint !== "function") {
    throw new ValidationError("onCheckpoint", "must be a function");
  }
  const typeSet = types === undefined ? undefined : new Set(types);
  if (typeSet === undefined && !prefix) return undefined;
  return (event) =>
    (typeSet === undefined || typeSet.has(event.type)) && (!prefix || event.streamId.startsWith(prefix));
}
