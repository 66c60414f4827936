/**
 * The change feed conformance suite: `store.watch(namespace)` on every
 * store that declares `capabilities.watch` (shown as skipped otherwise):
 * the initial state and the barrier (also for an empty namespace), live
 * changes, resuming `from` a cursor, reads in pieces (`batchSize`),
 * ending, the behind error, and a
 * model-based test of no gap, no duplicate and barrier correctness under
 * concurrent writers (also for a feed started while they write).
 */
import {
  type Change,
  type ChangeFeed,
  type FeedCursor,
  type FeedEvent,
  isFeedBehindError,
  isValidationError,
  type Store,
} from "../index.js";
import { checkContractOptions, set, summary, uniqueName, unset } from "./fixtures.js";
import { loadFastCheck } from "./peers.js";
import { afterEach, describe, expect, it } from "./vitest.js";

/** Options of {@link describeChangeFeedContract}. */
export interface ChangeFeedContractOptions {
  /**
   * Another store on the same data (another process's view, as far as one
   * process can have it): its saves must reach the first store's feeds.
   * @default none (all writers use the one store)
   */
  peer?: (store: Store) => Promise<Store>;
  /**
   * Makes `namespace` of `store` drop what follows `cursor` (compaction,
   * a purge, a clear) and returns the cursor to resume from, which must
   * then fail with `FeedBehindError`. Without it the test is skipped.
   */
  makeBehind?: (store: Store, namespace: string, cursor: FeedCursor) => Promise<FeedCursor>;
  /** Runs of the model-based test. @default 25 */
  propertyRuns?: number;
  /** How long to wait for one event, in milliseconds. @default 10000 */
  eventTimeoutMs?: number;
  /** Per-test timeout, in milliseconds. @default 60000 */
  timeoutMs?: number;
}

/** Reads a feed one event at a time, with a timeout per event. */
class FeedReader {
  readonly #iterator: AsyncIterator<FeedEvent>;
  constructor(
    readonly feed: ChangeFeed,
    private readonly timeoutMs: number,
  ) {
    this.#iterator = feed[Symbol.asyncIterator]();
  }

  /** The next event, or `undefined` when the feed ended. */
  async next(): Promise<FeedEvent | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no feed event within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      const r = await Promise.race([this.#iterator.next(), timeout]);
      return r.done ? undefined : r.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The changes up to the barrier, and the barrier. */
  async untilBarrier(): Promise<{ changes: FeedEvent[]; barrier: FeedEvent }> {
    const changes: FeedEvent[] = [];
    for (;;) {
      const event = await this.next();
      if (!event) throw new Error("the feed ended before its barrier");
      if (event.type === "caught-up") return { changes, barrier: event };
      changes.push(event);
    }
  }

  /** The next `n` events, which must all be changes. */
  async changes(n: number): Promise<Change[]> {
    const out: Change[] = [];
    while (out.length < n) {
      const event = await this.next();
      if (!event) throw new Error("the feed ended");
      if (event.type !== "change") throw new Error(`expected a change, got ${event.type}`);
      out.push(event.change);
    }
    return out;
  }
}

const keyOf = (c: Change): string => `${c.entityType}/${c.entityId}`;

/** The state a list of changes leads to: key → summary, in key order (order of writes is not compared). */
function stateOf(changes: Iterable<Change>, into = new Map<string, unknown>()): Map<string, unknown> {
  for (const c of changes) into.set(keyOf(c), summary([c])[0]);
  return into;
}
const sorted = (m: Map<string, unknown>): [string, unknown][] => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

/** Checks that positions grow strictly within an epoch. */
function checkPositions(events: readonly FeedEvent[], last?: FeedCursor): FeedCursor | undefined {
  let prev = last;
  for (const e of events) {
    if (e.type !== "change") continue;
    if (prev && prev.epoch === e.epoch) expect(e.position).toBeGreaterThan(prev.position);
    prev = e;
  }
  return prev;
}

/**
 * Registers the change feed conformance tests for one backend.
 * @param name shown in the test names
 * @param factory creates a fresh store (tests use unique namespaces)
 */
export function describeChangeFeedContract(
  name: string,
  factory: () => Store | Promise<Store>,
  options: ChangeFeedContractOptions = {},
): void {
  checkContractOptions("describeChangeFeedContract", options, [
    "peer",
    "makeBehind",
    "propertyRuns",
    "eventTimeoutMs",
    "timeoutMs",
  ]);
  const timeout = options.timeoutMs ?? 60_000;
  const eventTimeout = options.eventTimeoutMs ?? 10_000;
  const open: Store[] = [];
  const feeds: ChangeFeed[] = [];

  async function fresh(ctx: { skip: (note: string) => void }): Promise<Store> {
    const store = await factory();
    open.push(store);
    if (!store.capabilities.watch || !store.watch) ctx.skip(`${name} does not declare watch`);
    return store;
  }
  function watch(store: Store, namespace: string, from?: FeedCursor | number, batchSize?: number): FeedReader {
    const feed = (store.watch as NonNullable<Store["watch"]>).call(store, namespace, {
      ...(from === undefined ? {} : { from }),
      ...(batchSize === undefined ? {} : { batchSize }),
    });
    feeds.push(feed);
    return new FeedReader(feed, eventTimeout);
  }

  describe(`Change feed contract: ${name}`, { timeout }, () => {
    afterEach(async () => {
      for (const feed of feeds.splice(0)) feed.close();
      const stores = open.splice(0);
      await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    });

    it("an empty namespace: the barrier comes first, with no change", async (ctx) => {
      const store = await fresh(ctx);
      const reader = watch(store, uniqueName("feed-empty"));
      const first = await reader.next();
      expect(first?.type).toBe("caught-up");
      expect(await reader.feed.caughtUp).toEqual({ position: first?.position, epoch: first?.epoch });
    });

    it("delivers the current state (as load returns it), the barrier, then live changes of its namespace only", async (ctx) => {
      const store = await fresh(ctx);
      const ns = uniqueName("feed-state");
      const other = uniqueName("feed-other");
      await store.save([set(ns, "t", "a", { v: 1 }), set(ns, "t", "b", { v: 1 }), set(other, "t", "a", { v: 9 })]);
      await store.save([set(ns, "t", "a", { v: 2 }), unset(ns, "t", "b"), set(ns, "u", "c", { v: 3 })]);
      const reader = watch(store, ns);
      const { changes, barrier } = await reader.untilBarrier();
      const initial = changes.map((e) => (e as { change: Change }).change);
      expect(sorted(stateOf(initial))).toEqual(sorted(stateOf(await store.load(ns))));
      const last = checkPositions(changes);
      if (last && last.epoch === barrier.epoch) expect(barrier.position).toBeGreaterThanOrEqual(last.position);
      await store.save([set(other, "t", "z", { v: 0 })]);
      await store.save([set(ns, "t", "d", { v: 4 }), unset(ns, "t", "a")]);
      const live = await reader.changes(2);
      expect(summary(live)).toEqual([
        ["t", "d", "set", { v: 4 }],
        ["t", "a", "unset"],
      ]);
      expect(live.every((c) => c.namespace === ns)).toBe(true);
    });

    it("resumes from a cursor: only the changes after it, then the barrier", async (ctx) => {
      const store = await fresh(ctx);
      const ns = uniqueName("feed-from");
      await store.save([set(ns, "t", "a", { v: 1 })]);
      const first = watch(store, ns);
      const { barrier } = await first.untilBarrier();
      first.feed.close();
      await store.save([set(ns, "t", "b", { v: 2 })]);
      await store.save([set(ns, "t", "c", { v: 3 })]);
      const resumed = watch(store, ns, barrier);
      const { changes } = await resumed.untilBarrier();
      expect(summary(changes.map((e) => (e as { change: Change }).change))).toEqual([
        ["t", "b", "set", { v: 2 }],
        ["t", "c", "set", { v: 3 }],
      ]);
      const atEnd = watch(store, ns, resumed.feed.cursor);
      expect((await atEnd.next())?.type).toBe("caught-up");
    });

    it("reads in pieces of batchSize: every change once, in order, the barrier after the last piece", async (ctx) => {
      const store = await fresh(ctx);
      const ns = uniqueName("feed-batch");
      await store.save([set(ns, "t", "a", { v: 0 })]);
      const first = watch(store, ns);
      const { barrier } = await first.untilBarrier();
      first.feed.close();
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      for (const k of keys) await store.save([set(ns, "t", k, { v: 1 })]);
      const ids = (events: readonly FeedEvent[]) =>
        events.map((e) => (e.type === "change" ? e.change.entityId : e.type));
      // Resumed: twenty changes after the cursor, read three at a time, then the barrier.
      const resumed = watch(store, ns, barrier, 3);
      const { changes, barrier: caughtUp } = await resumed.untilBarrier();
      expect(ids(changes)).toEqual(keys);
      const last = checkPositions(changes, barrier);
      expect(await resumed.feed.caughtUp).toEqual({ position: caughtUp.position, epoch: caughtUp.epoch });
      // Live: twenty saves while the consumer takes nothing, then all of them, once each, in order.
      const live = keys.map((k) => `${k}-live`);
      for (const k of live) await store.save([set(ns, "t", k, { v: 2 })]);
      const more: FeedEvent[] = [];
      while (more.length < live.length) {
        const event = await resumed.next();
        if (!event) throw new Error("the feed ended");
        more.push(event);
      }
      expect(ids(more)).toEqual(live);
      checkPositions(more, last);
    });

    it("ends when closed, when its signal aborts, and when the store closes", async (ctx) => {
      const store = await fresh(ctx);
      const ns = uniqueName("feed-end");
      const closed = watch(store, ns);
      await closed.untilBarrier();
      const pending = closed.next();
      closed.feed.close();
      expect(await pending).toBeUndefined();

      const controller = new AbortController();
      const aborted = new FeedReader(
        (store.watch as NonNullable<Store["watch"]>).call(store, ns, { signal: controller.signal }),
        eventTimeout,
      );
      await aborted.untilBarrier();
      const waiting = aborted.next();
      controller.abort();
      expect(await waiting).toBeUndefined();

      const byStore = watch(store, ns);
      await byStore.untilBarrier();
      const last = byStore.next();
      await store.close();
      expect(await last).toBeUndefined();
    });

    it("refuses an invalid from, batchSize or signal with a ValidationError", async (ctx) => {
      const store = await fresh(ctx);
      const w = store.watch as NonNullable<Store["watch"]>;
      const bad = [-1, 1.5, Number.NaN, "3" as unknown as number];
      const notSignals = [{ aborted: true }, "stop", null] as unknown as AbortSignal[];
      for (const options of [
        ...bad.map((from) => ({ from })),
        ...[0, ...bad].map((batchSize) => ({ batchSize })),
        ...notSignals.map((signal) => ({ signal })),
      ]) {
        let error: unknown;
        try {
          w.call(store, uniqueName("feed-bad"), options);
        } catch (e) {
          error = e;
        }
        expect(isValidationError(error), JSON.stringify(options)).toBe(true);
      }
    });

    it("fails with FeedBehindError from a position the store no longer holds", async (ctx) => {
      const store = await fresh(ctx);
      if (!options.makeBehind) return ctx.skip(`${name}: no makeBehind option`);
      const ns = uniqueName("feed-behind");
      await store.save([set(ns, "t", "a", { v: 1 }), set(ns, "t", "a", { v: 2 })]);
      const reader = watch(store, ns);
      const { barrier } = await reader.untilBarrier();
      reader.feed.close();
      const stale = await options.makeBehind(store, ns, barrier);
      const resumed = watch(store, ns, stale);
      await expect(resumed.next()).rejects.toSatisfy(isFeedBehindError);
    });

    /**
     * A feed started while this store and its peer keep saving the keys
     * `initial` holds again: before its barrier it delivers every key set
     * in `initial` (none is deleted meanwhile), each once. A read of the
     * current state that passes over a key written again during it (its old
     * revision replaced, the new one later) must not end before the new one.
     */
    async function startedWhileWriting(store: Store, peer: Store, ns: string, initial: readonly FeedEvent[]) {
      const ids = initial.flatMap((e) =>
        e.type === "change" && e.change.changeType === "set" ? [e.change.entityId] : [],
      );
      if (ids.length === 0) return;
      let writing = true;
      let saves = 0;
      let firstSaves!: () => void;
      const started = new Promise<void>((resolve) => {
        firstSaves = resolve;
      });
      const rewrite = async (target: Store, from: number) => {
        for (let n = from; writing; n += 2) {
          await target.save([set(ns, "t", ids[n % ids.length] as string, { v: 100 + n })]);
          if (++saves === 2) firstSaves();
          // Lets the feed's read run between saves (a store that saves without I/O would starve it).
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      };
      const writers = [rewrite(store, 0), rewrite(peer, 1)];
      try {
        await Promise.race([started, ...writers]);
        const reader = watch(store, ns);
        const { changes } = await reader.untilBarrier();
        reader.feed.close();
        const keys = changes.flatMap((e) => (e.type === "change" ? [keyOf(e.change)] : []));
        checkPositions(changes);
        expect(
          keys.filter((k, i) => keys.indexOf(k) !== i),
          "keys delivered twice",
        ).toEqual([]);
        expect(
          ids.filter((id) => !keys.includes(`t/${id}`)),
          "keys missing",
        ).toEqual([]);
      } finally {
        writing = false;
        await Promise.all(writers);
      }
    }

    it("model: no gap, no duplicate and a correct barrier under concurrent writers, across resumes", async (ctx) => {
      const store = await fresh(ctx);
      const peer = options.peer ? await options.peer(store) : store;
      if (peer !== store) open.push(peer);
      const fc = await loadFastCheck();
      const op = fc.record({
        unset: fc.boolean(),
        id: fc.constantFrom("1", "2", "3", "x/y"),
        v: fc.integer({ min: 0, max: 99 }),
      });
      const batch = fc.array(op, { minLength: 1, maxLength: 4 });
      await fc.assert(
        fc.asyncProperty(
          fc.array(batch, { maxLength: 4 }),
          fc.array(fc.array(batch, { minLength: 1, maxLength: 3 }), { maxLength: 4 }),
          fc.integer({ min: 0, max: 6 }),
          // Reads of every size, down to one change at a time (the default: all at once).
          fc.constantFrom(undefined, 1, 2, 3),
          async (before, rounds, resumeAfter, batchSize) => {
            const ns = uniqueName("feed-model");
            const toChanges = (b: (typeof before)[number]) =>
              b.map((o) => (o.unset ? unset(ns, "t", o.id) : set(ns, "t", o.id, { v: o.v })));
            for (const b of before) await store.save(toChanges(b));
            // Barrier: the initial part is exactly the state when nobody writes.
            let reader = watch(store, ns, undefined, batchSize);
            const { changes, barrier } = await reader.untilBarrier();
            let last = checkPositions(changes);
            const state = stateOf(changes.map((e) => (e as { change: Change }).change));
            expect(sorted(state)).toEqual(sorted(stateOf(await store.load(ns))));
            await startedWhileWriting(store, peer, ns, changes);
            let cursor: FeedCursor = barrier;
            let delivered = 0;
            // Concurrent writers (this store and its peer), while the feed is read.
            for (const round of rounds) {
              const writes = Promise.all(round.map((b, i) => (i % 2 === 0 ? store : peer).save(toChanges(b))));
              await writes;
              const expected = sorted(stateOf(await store.load(ns)));
              while (JSON.stringify(sorted(state)) !== JSON.stringify(expected)) {
                const event = await reader.next();
                if (!event) throw new Error("the feed ended");
                last = checkPositions([event], last);
                if (event.type === "change") {
                  stateOf([event.change], state);
                  delivered++;
                }
                cursor = event;
                if (delivered === resumeAfter) {
                  // Resume from the cursor, in a new feed: no gap, no repeat.
                  reader.feed.close();
                  reader = watch(store, ns, cursor, batchSize);
                  try {
                    const resumed = await reader.untilBarrier();
                    last = checkPositions(resumed.changes, last);
                    for (const e of resumed.changes) if (e.type === "change") stateOf([e.change], state);
                    cursor = resumed.barrier;
                  } catch (error) {
                    if (!isFeedBehindError(error)) throw error;
                    // Allowed: the backend renumbered; start over from the current state.
                    reader = watch(store, ns);
                    const restart = await reader.untilBarrier();
                    state.clear();
                    last = checkPositions(restart.changes);
                    for (const e of restart.changes) if (e.type === "change") stateOf([e.change], state);
                  }
                  delivered++;
                }
              }
            }
            expect(cursor).toBeDefined();
            reader.feed.close();
          },
        ),
        // No shrinking: each failing run may wait out the event time-out, and shrinking would then spend the
        // test's time-out and report that instead of the failure.
        { numRuns: options.propertyRuns ?? 25, endOnFailure: true },
      );
    });
  });
}
