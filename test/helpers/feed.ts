/** Helpers of the change-feed tests of the backends (beyond the contract suite). */
import type { FeedCursor, FeedEvent, FeedSource, Store } from "../../src/index.js";

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
