/**
 * A store's close() waits until the sources of its change feeds released
 * what they hold (a Kafka feed: its own consumer), those still open and
 * those ended just before.
 */
import { describe, expect, it } from "vitest";
import {
  BaseStore,
  type Change,
  type ChangeFeed,
  type FeedBatch,
  type FeedSource,
  type StoreCapabilities,
} from "../../src/index.js";

/** A feed source with nothing to read, whose close takes 50 ms and is logged. */
class SlowSource implements FeedSource {
  constructor(
    readonly name: string,
    readonly log: string[],
  ) {}

  async read(): Promise<FeedBatch> {
    return { items: [], cursor: { position: 0, epoch: "" } };
  }

  async wait(_cursor: unknown, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }

  async close(): Promise<void> {
    await new Promise((r) => setTimeout(r, 50));
    this.log.push(`${this.name} released`);
  }
}

class FeedStore extends BaseStore {
  readonly capabilities: StoreCapabilities = { compact: false, listNamespaces: false, durable: false, watch: true };
  readonly log: string[] = [];

  constructor() {
    super("feed store");
  }

  async save(): Promise<void> {}

  async load(): Promise<Change[]> {
    return [];
  }

  watch(namespace: string): ChangeFeed {
    return this.openFeed(namespace, undefined, () => new SlowSource(namespace, this.log));
  }

  protected async closeResources(): Promise<void> {
    this.log.push("resources closed");
  }
}

describe("BaseStore.close and change feeds", () => {
  it("waits until every feed's source released what it holds, open feeds and feeds just ended", async () => {
    const store = new FeedStore();
    const ended = store.watch("ended");
    const open = store.watch("open");
    for await (const event of ended) if (event.type === "caught-up") break; // ends the feed: its release begins
    const opened = open[Symbol.asyncIterator]();
    expect((await opened.next()).value?.type).toBe("caught-up");
    const waiting = opened.next();
    await store.close();
    store.log.push("close resolved");
    expect(store.log).toEqual(["ended released", "open released", "resources closed", "close resolved"]);
    expect((await waiting).done).toBe(true);
  });
});
