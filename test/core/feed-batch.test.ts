/**
 * Change feeds read in pieces of `batchSize` changes past the current
 * state (a resumed feed, a live feed behind its consumer): the pieces a
 * source returns, and what `ChangeFeed` makes of them (one read, the
 * barrier after the last piece, no wait between pieces).
 */
import { unlinkSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { FileStore } from "../../src/file/index.js";
import {
  ChangeFeed,
  type FeedBatch,
  type FeedCursor,
  type FeedEvent,
  type FeedSource,
  isFeedBehindError,
  type Store,
} from "../../src/index.js";
import { MemoryStore } from "../../src/memory/index.js";
import { UnionStore } from "../../src/union/index.js";
import { barrierOf, item, piecesOf, recordSourceReads, untilBarrier } from "../helpers/feed.js";
import { tempDir } from "../helpers/temp.js";

const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
const directory = () => tempDir("statelog-feed-batch-");
async function kept<S extends Store>(store: S | Promise<S>): Promise<S> {
  const s = await store;
  stores.push(s);
  return s;
}

describe("a store's feed reads at most batchSize changes at a time past the current state", () => {
  const backends: [string, () => Promise<Store>][] = [
    ["MemoryStore", () => kept(MemoryStore.open())],
    ["FileStore", () => kept(FileStore.open({ directory: directory() }))],
    [
      "UnionStore (memory, file)",
      async () =>
        kept(UnionStore.open({ stores: [await MemoryStore.open(), await FileStore.open({ directory: directory() })] })),
    ],
  ];
  for (const [name, open] of backends) {
    it(name, async () => {
      const reads = await piecesOf(await open(), "ns", 3);
      // The first read is the resumed part's first piece; every read past the state holds at most 3.
      expect(reads.every((r) => r.items <= 3)).toBe(true);
      // Twenty changes after the cursor: six full pieces that say there is more, then the last two.
      expect(reads.slice(0, 7)).toEqual([...Array(6).fill({ items: 3, more: true }), { items: 2, more: false }]);
    });
  }

  it("FileStore: lines longer than a read window (1 MiB) come whole, in order, with the short ones around them", async () => {
    const store = await kept(FileStore.open({ directory: directory(), maxValueBytes: 8 * 1024 * 1024 }));
    await store.save([item("ns", "a", 0)]);
    const from = await barrierOf(store, "ns");
    const big = (n: number) => "x".repeat(n * 1024 * 1024);
    const saved = [
      item("ns", "b", big(3)),
      item("ns", "c", 1),
      item("ns", "d", 2),
      item("ns", "e", big(1)),
      item("ns", "f", big(5)),
    ];
    for (const change of saved) await store.save([change]);
    const reads = recordSourceReads(store);
    const feed = store.watch("ns", { from, batchSize: 2 });
    const events = await untilBarrier(feed[Symbol.asyncIterator]());
    feed.close();
    const changes = events.flatMap((e) => (e.type === "change" ? [e.change] : []));
    expect(changes.map((c) => [c.entityId, c.entity])).toEqual(saved.map((c) => [c.entityId, c.entity]));
    expect(reads).toEqual([
      { items: 2, more: true },
      { items: 2, more: true },
      { items: 1, more: false },
    ]);
  });
});

describe("a FileStore feed across file replacements, in pieces", () => {
  const ids = (events: readonly FeedEvent[]) =>
    events.map((e) =>
      e.type === "change" ? `${e.change.entityId}=${(e.change as { entity: unknown }).entity}` : e.type,
    );
  /** The next `n` events of `iterator`. */
  async function take(iterator: AsyncIterator<FeedEvent>, n: number): Promise<FeedEvent[]> {
    const out: FeedEvent[] = [];
    while (out.length < n) {
      const r = await iterator.next();
      if (r.done) throw new Error("the feed ended");
      out.push(r.value);
    }
    return out;
  }

  it("compacted twice while a resumed feed reads: every change once, the newest last, batchSize at a time", async () => {
    const store = await kept(FileStore.open({ directory: directory(), autoCompact: false }));
    await store.save([item("ns", "a", 0)]);
    const from = await barrierOf(store, "ns");
    for (let i = 0; i < 20; i++) await store.save([item("ns", `k${i}`, i)]);
    const reads = recordSourceReads(store);
    const feed = store.watch("ns", { from, batchSize: 3 });
    const iterator = feed[Symbol.asyncIterator]();
    const first = await take(iterator, 3); // the first piece: k0..k2
    await store.compact("ns"); // every line copied as it is: k3.. still to deliver
    const second = await take(iterator, 3); // k3..k5, from the new file
    await store.save([item("ns", "k4", 40)]);
    await store.save([item("ns", "k10", 100)]);
    await store.compact("ns"); // again: k6.. still to deliver, k4 and k10 changed
    const rest = await untilBarrier(iterator);
    feed.close();
    const k = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `k${from + i}=${from + i}`);
    expect(ids([...first, ...second, ...rest])).toEqual([
      ...k(0, 6),
      ...k(6, 10),
      ...k(11, 20),
      "k4=40",
      "k10=100",
      "caught-up",
    ]);
    expect(reads.every((r) => r.items <= 3)).toBe(true);
    // Three epochs (the file, then two compacted ones), positions growing within each.
    const changes = [...first, ...second, ...rest].filter((e) => e.type === "change");
    expect(new Set(changes.map((e) => e.epoch)).size).toBe(3);
    for (let i = 1; i < changes.length; i++) {
      const [a, b] = [changes[i - 1] as FeedEvent, changes[i] as FeedEvent];
      if (a.epoch === b.epoch) expect(b.position).toBeGreaterThan(a.position);
    }
  });

  it("resumed from a cursor given while a replaced file came in pieces, then compacted: a key deleted after the cursor still comes", async () => {
    const store = await kept(FileStore.open({ directory: directory(), autoCompact: false }));
    const at = new Date(1_000_000);
    const unsetX = { namespace: "ns", changeType: "unset" as const, entityType: "item", entityId: "x", timestamp: at };
    await store.save([item("ns", "a", 0)]);
    const feed = store.watch("ns", { batchSize: 1 });
    const iterator = feed[Symbol.asyncIterator]();
    await untilBarrier(iterator);
    // A compaction, then more lines: x deleted twice with the same timestamp (two identical lines), others between.
    await store.save([item("ns", "b", 1)]);
    await store.compact("ns");
    for (const change of [unsetX, item("ns", "c", 2), item("ns", "e", 4), unsetX, item("ns", "d", 3)]) {
      await store.save([change]);
    }
    // The feed delivers the new file's changes in pieces: b, then c (past the first of x's lines), then it stops.
    const [, c] = await take(iterator, 2);
    feed.close();
    expect(c?.type === "change" && c.change.entityId).toBe("c");
    // Resumed after c: e comes, then the file is compacted before the feed reads x's last line.
    const resumed = store.watch("ns", { from: c as FeedEvent, batchSize: 1 });
    const again = resumed[Symbol.asyncIterator]();
    expect(ids(await take(again, 1))).toEqual(["e=4"]);
    await store.compact("ns");
    const rest = await untilBarrier(again);
    resumed.close();
    // x's deletion comes (the consumer never had it); so does d. Keys known only from before the cursor may come again.
    expect(ids(rest)).toEqual(expect.arrayContaining(["x=undefined", "d=3", "caught-up"]));
  });

  it("the file removed while pieces of it are still to deliver: FeedBehindError at the feed's own position", async () => {
    const store = await kept(FileStore.open({ directory: directory(), autoCompact: false }));
    const feed = store.watch("ns", { batchSize: 2 });
    const iterator = feed[Symbol.asyncIterator]();
    await untilBarrier(iterator);
    await store.save(Array.from({ length: 6 }, (_, i) => item("ns", `k${i}`, i))); // the file is created
    const first = await take(iterator, 2);
    unlinkSync(store.fileOf("ns")); // k0 and k1 were delivered: the feed stands at k1
    const error = await take(iterator, 1).catch((e: unknown) => e);
    feed.close();
    expect(isFeedBehindError(error)).toBe(true);
    expect((error as { position: number }).position).toBe(first.at(-1)?.position);
  });

  it("the namespace's file created under a running feed: its changes come batchSize at a time", async () => {
    const store = await kept(FileStore.open({ directory: directory(), autoCompact: false }));
    const reads = recordSourceReads(store);
    const feed = store.watch("ns", { batchSize: 2 });
    const iterator = feed[Symbol.asyncIterator]();
    expect(ids(await untilBarrier(iterator))).toEqual(["caught-up"]);
    await store.save(Array.from({ length: 10 }, (_, i) => item("ns", `k${i}`, i)));
    expect(ids(await take(iterator, 10))).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}=${i}`));
    feed.close();
    expect(reads).toEqual([
      { items: 0, more: false },
      ...Array(4).fill({ items: 2, more: true }),
      { items: 2, more: false },
    ]);
  });
});

/** A source of `total` changes, read `batchSize` at a time; `waits` counts the feed's waits. */
class PiecesSource implements FeedSource {
  waits = 0;
  constructor(
    readonly total: number,
    readonly batchSize: number,
  ) {}

  async read(cursor: FeedCursor | undefined): Promise<FeedBatch> {
    const after = cursor?.position ?? 0;
    const end = Math.min(this.total, after + this.batchSize);
    const items = Array.from({ length: end - after }, (_, i) => ({
      type: "change" as const,
      change: {
        namespace: "ns",
        changeType: "set" as const,
        entityType: "t",
        entityId: `k${after + i + 1}`,
        entity: {},
        timestamp: new Date(0),
      },
      position: after + i + 1,
      epoch: "",
    }));
    return { items, cursor: { position: end, epoch: "" }, head: this.total, more: end < this.total };
  }

  async wait(_cursor: FeedCursor, signal: AbortSignal): Promise<void> {
    this.waits++;
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }
}

describe("ChangeFeed with a source that reads in pieces", () => {
  it("delivers every piece before the barrier, counts them as one read and does not wait between them", async () => {
    const source = new PiecesSource(10, 3);
    const feed = new ChangeFeed("ns", source, undefined);
    const reads: number[] = [];
    feed.onRead((_cursor, n) => reads.push(n));
    const iterator = feed[Symbol.asyncIterator]();
    const events: FeedEvent[] = await untilBarrier(iterator);
    expect(events.map((e) => (e.type === "change" ? e.change.entityId : e.type))).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `k${i + 1}`),
      "caught-up",
    ]);
    expect(await feed.caughtUp).toEqual({ position: 10, epoch: "" });
    expect(source.waits).toBe(0);
    // The read counts once all four pieces were taken: when the consumer asks for what follows the barrier.
    const next = iterator.next();
    await new Promise((r) => setTimeout(r, 10));
    expect(reads).toEqual([1]);
    expect(feed.reads).toBe(1);
    expect(source.waits).toBe(1);
    feed.close();
    expect((await next).done).toBe(true);
  });
});

describe("watch options", () => {
  it("refuses a pollIntervalMs longer than a timer can wait (it would poll every millisecond)", async () => {
    for (const store of [await kept(MemoryStore.open()), await kept(FileStore.open({ directory: directory() }))]) {
      for (const pollIntervalMs of [2 ** 31, 1e12]) {
        expect(() => store.watch?.("ns", { pollIntervalMs })).toThrow(
          /pollIntervalMs: must be a number of milliseconds from 1 to 2147483647/,
        );
      }
      const feed = store.watch?.("ns", { pollIntervalMs: 2 ** 31 - 1 });
      expect(feed?.ended).toBe(false);
      feed?.close();
    }
  });
});
