/**
 * Reading a subscription up to what is stored now: the events until it
 * first catches up (or until `done` says so), then it is closed. A head
 * remembered before subscribing is not enough to stop at: events up to it
 * may have been removed by retention meanwhile (or before, when every
 * event of the store expired), and a subscription waits for live events
 * forever once it has delivered every stored one.
 */
import type { EventSubscription, RecordedEvent } from "../events/index.js";

/**
 * The events of `subscription` until it has delivered every stored one
 * (its `caughtUp`), or until `done(event)` is true after an event; then
 * closes it.
 */
export async function* untilCaughtUp(
  subscription: EventSubscription,
  done: (event: RecordedEvent) => boolean = () => false,
): AsyncGenerator<RecordedEvent> {
  const events = subscription[Symbol.asyncIterator]();
  // caughtUp resolves once a read found nothing more: every event fetched before it was delivered.
  const caughtUp = subscription.caughtUp.then(() => undefined);
  try {
    for (;;) {
      const next = await Promise.race([events.next(), caughtUp]);
      if (next === undefined || next.done) return;
      yield next.value;
      if (done(next.value)) return;
    }
  } finally {
    subscription.close();
  }
}
