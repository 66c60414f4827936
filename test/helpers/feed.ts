/** Helpers of the change-feed tests of the backends (beyond the contract suite). */
import type { FeedBatch, FeedCursor, FeedEvent, FeedSource, Store } from "../../src/index.js";

/**
 * A feed source whose reads never come back (a backend that does not
 * answer) until the feed ends; `onClose` is told when the feed released it.
 */
export function silentSource(onClose?: () => void): FeedSource {
  return {
    read: (_cursor, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    wait: async () => undefined,
    close: onClose,
  };
}

/** The events of a feed up to and including its barrier. */
export async function untilBarrier(iterator: AsyncIterator<FeedEvent>): Promise<FeedEvent[]> {
  const events: FeedEvent[] = [];
  for (;;) {
    const r = await iterator.next();
    if (r.done) throw new Error("the feed ended before its barrier");
    events.push(r.value);
    if (r.value.type === "caught-up") return events;
  }
}

/** The barrier of a new feed of `namespace`: where the store stands now. */
export async function barrierOf(store: Store, namespace: string): Promise<FeedCursor> {
  const feed = (store.watch as NonNullable<Store["watch"]>).call(store, namespace);
  try {
    const { position, epoch } = (await untilBarrier(feed[Symbol.asyncIterator]())).at(-1) as FeedEvent;
    return { position, epoch };
  } finally {
    feed.close();
  }
}

/** A change that sets `namespace`/item/`entityId` to `entity`. */
export const item = (namespace: string, entityId: string, entity: unknown) => ({
  namespace,
  changeType: "set" as const,
  entityType: "item",
  entityId,
  entity,
});

/** What one read of a feed source returned: how many changes, and whether it said there was more. */
export interface SourceRead {
  readonly items: number;
  readonly more: boolean;
}

/**
 * Calls `after` with each batch the feed sources of `store` read from now
 * on (a store built on `BaseStore`: its `watch` goes through `openFeed`),
 * and the read's number (0 for a feed's first), before the feed gets it.
 */
export function afterSourceReads(store: Store, after: (batch: FeedBatch, n: number) => void | Promise<void>): void {
  type MakeSource = (pollIntervalMs: number, batchSize: number) => FeedSource;
  const target = store as unknown as { openFeed: (ns: string, options: unknown, make: MakeSource) => unknown };
  const openFeed = target.openFeed;
  target.openFeed = function (namespace, options, make) {
    return openFeed.call(this, namespace, options, (pollIntervalMs, batchSize) => {
      const source = make(pollIntervalMs, batchSize);
      const read = source.read.bind(source);
      let n = 0;
      source.read = async (cursor, signal) => {
        const batch = await read(cursor, signal);
        await after(batch, n++);
        return batch;
      };
      return source;
    });
  };
}

/** Records every read of the feed sources `store` makes from now on ({@link afterSourceReads}). */
export function recordSourceReads(store: Store): SourceRead[] {
  const reads: SourceRead[] = [];
  afterSourceReads(store, (batch) => {
    reads.push({ items: batch.items.length, more: batch.more === true });
  });
  return reads;
}

/**
 * Checks that a feed of `store` reads at most `batchSize` changes at a
 * time past the current state: 20 changes after a cursor (a resumed feed;
 * its `head` during the first piece must be the backend's position), then
 * 20 saved while its consumer takes nothing (a live feed). Returns the
 * reads the feed made.
 */
export async function piecesOf(
  store: Store,
  namespace: string,
  batchSize: number,
  /** Another namespace, one change of which is saved after each of `namespace`'s (they may share a partition). */
  other?: string,
): Promise<SourceRead[]> {
  await store.save([item(namespace, "a", 0)]);
  const from = await barrierOf(store, namespace);
  for (let i = 0; i < 20; i++) {
    await store.save([item(namespace, `k${i}`, i)]);
    if (other !== undefined) await store.save([item(other, `o${i}`, i)]);
  }
  const last = (await barrierOf(store, namespace)).position;
  const reads = recordSourceReads(store);
  const feed = (store.watch as NonNullable<Store["watch"]>).call(store, namespace, { from, batchSize });
  try {
    const iterator = feed[Symbol.asyncIterator]();
    const first = await iterator.next();
    // While it reads the first piece, the feed knows where the backend stands (its lag), not just the piece's end.
    if (feed.head !== last) throw new Error(`feed.head ${feed.head} after the first piece, the backend is at ${last}`);
    const resumed = [first.value as FeedEvent, ...(await untilBarrier(iterator))];
    const live: FeedEvent[] = [];
    for (let i = 0; i < 20; i++) await store.save([item(namespace, `l${i}`, i)]);
    while (live.length < 20) {
      const r = await iterator.next();
      if (r.done) throw new Error("the feed ended");
      live.push(r.value);
    }
    const ids = [...resumed, ...live].map((e) => (e.type === "change" ? e.change.entityId : e.type));
    const expected = [...Array.from({ length: 20 }, (_, i) => `k${i}`), "caught-up"];
    expected.push(...Array.from({ length: 20 }, (_, i) => `l${i}`));
    if (JSON.stringify(ids) !== JSON.stringify(expected)) throw new Error(`delivered ${JSON.stringify(ids)}`);
    return reads;
  } finally {
    feed.close();
  }
}
