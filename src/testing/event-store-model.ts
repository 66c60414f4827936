/**
 * The model-based test of the event-store suite: random interleavings of
 * appends (awaited or racing), reads, subscriptions to one stream or all,
 * partial pulls, aborts and retention, checked against a simple model (the
 * ids each acknowledged append got, by position). Every subscriber must see
 * 0 gaps, 0 duplicates and strictly increasing positions; every event read
 * must be the one the model put there; an error for a subscriber behind
 * retention must be true.
 */
import type { Arbitrary } from "fast-check";
import type { EventStore, EventStoreOptions, EventSubscription, RecordedEvent } from "../events/index.js";
import { createEvent, isBehindRetentionError } from "../events/index.js";
import { ErrorCode, isStatelogError } from "../index.js";
import { uniqueName } from "./fixtures.js";
import { type FastCheck, loadFastCheck } from "./peers.js";
import { expect, it } from "./vitest.js";

/** Options of {@link describeEventStoreModel}. */
export interface EventStoreModelOptions {
  /** Schedules to run. */
  runs: number;
  /** Most operations per schedule. */
  maxOps: number;
  /** Whether the `clock` option drives retention (else retention steps only let time pass). */
  fakeClock: boolean;
  /** Test timeout, in milliseconds. */
  timeoutMs: number;
}

type Op =
  | { k: "append"; s: number; n: number; ev: "none" | "exact" | "stale" | "no_stream" | "exists"; wait: boolean }
  | { k: "read"; s: number; from: number; limit: number }
  | { k: "sub"; s: number; from: number; buf: number }
  | { k: "pull"; i: number; n: number }
  | { k: "abort"; i: number }
  | { k: "retain"; advance: number }
  | { k: "tick" };

const STREAMS = 3;
const RETENTION_MS = 100;

/** The random operations of a schedule. */
function opArb(fc: FastCheck): Arbitrary<Op> {
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        k: fc.constant("append" as const),
        s: fc.nat(STREAMS - 1),
        n: fc.integer({ min: 1, max: 3 }),
        ev: fc.constantFrom("none", "none", "exact", "stale", "no_stream", "exists"),
        wait: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant("read" as const),
        s: fc.nat(STREAMS - 1),
        from: fc.nat(6),
        limit: fc.integer({ min: 1, max: 4 }),
      }),
    },
    // s = STREAMS means subscribeAll.
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant("sub" as const),
        s: fc.nat(STREAMS),
        from: fc.nat(5),
        buf: fc.integer({ min: 1, max: 3 }),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({ k: fc.constant("pull" as const), i: fc.nat(3), n: fc.integer({ min: 1, max: 5 }) }),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("abort" as const), i: fc.nat(3) }) },
    {
      weight: 1,
      arbitrary: fc.record({ k: fc.constant("retain" as const), advance: fc.integer({ min: 0, max: 150 }) }),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("tick" as const) }) },
  );
}

interface Sub {
  sub: EventSubscription;
  it: AsyncIterator<RecordedEvent>;
  ac: AbortController;
  stream: string | undefined;
  from: number;
  received: RecordedEvent[];
  pending: Promise<IteratorResult<RecordedEvent>> | undefined;
  ended: boolean;
  aborted: boolean;
  error: unknown;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Totals over all schedules, for the test's report. */
interface Totals {
  schedules: number;
  delivered: number;
  gaps: number;
  duplicates: number;
}

/** Registers the model-based test. */
export function describeEventStoreModel(
  name: string,
  factory: (config: EventStoreOptions) => EventStore | Promise<EventStore>,
  options: EventStoreModelOptions,
): void {
  it(`model: ${options.runs} random schedules of appends, reads, subscribes, aborts and retention — 0 gaps, 0 duplicates (${name})`, {
    timeout: options.timeoutMs,
  }, async () => {
    const fc = await loadFastCheck();
    const totals: Totals = { schedules: 0, delivered: 0, gaps: 0, duplicates: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(fc), { minLength: 1, maxLength: options.maxOps }), async (ops) => {
        totals.schedules++;
        await runSchedule(factory, ops, options.fakeClock, totals);
      }),
      { numRuns: options.runs },
    );
    expect(totals.schedules).toBeGreaterThanOrEqual(options.runs);
    expect(totals.gaps).toBe(0);
    expect(totals.duplicates).toBe(0);
    expect(totals.delivered).toBeGreaterThan(0);
  });
}

async function runSchedule(
  factory: (config: EventStoreOptions) => EventStore | Promise<EventStore>,
  ops: readonly Op[],
  fakeClock: boolean,
  totals: Totals,
): Promise<void> {
  let now = Date.parse("2024-01-01T00:00:00Z");
  let cutoff = Number.NEGATIVE_INFINITY; // events before this may have been removed
  const store = await factory({
    retentionDurationMs: fakeClock ? RETENTION_MS : 0,
    clock: () => new Date(now),
    snapshotIntervalMs: 0,
  });
  const retention = fakeClock && store.capabilities.retention && store.capabilities.applyRetention;
  const streams = Array.from({ length: STREAMS }, (_, i) => uniqueName(`m${i}`));
  const ids = new Map<string, string[]>(streams.map((s) => [s, []]));
  const acked = new Map<string, number>(streams.map((s) => [s, 0]));
  const inflight = new Map<string, number>(streams.map((s) => [s, 0]));
  const global = new Map<number, string>();
  const tsOf = new Map<string, number>();
  let baseGlobal = store.stats().globalPosition;
  const pending: Promise<void>[] = [];
  const subs: Sub[] = [];
  const reads: { stream: string; from: number; events: readonly RecordedEvent[] }[] = [];
  const behind: { stream: string | undefined; position: number }[] = [];
  let seq = 0;
  const expired = (id: string | undefined) => id !== undefined && (tsOf.get(id) ?? Number.POSITIVE_INFINITY) < cutoff;

  try {
    for (const op of ops) {
      switch (op.k) {
        case "append": {
          const stream = streams[op.s] as string;
          const events = Array.from({ length: op.n }, () => {
            const id = `e${++seq}`;
            tsOf.set(id, now);
            return createEvent("m", { seq }, { id, timestamp: new Date(now) });
          });
          const last = acked.get(stream) ?? 0;
          const quiet = (inflight.get(stream) ?? 0) === 0;
          const expectedVersion =
            op.ev === "exact"
              ? last
              : op.ev === "stale"
                ? last > 0
                  ? last - 1
                  : "stream_exists"
                : op.ev === "no_stream"
                  ? "no_stream"
                  : op.ev === "exists"
                    ? "stream_exists"
                    : undefined;
          const mustFail = op.ev === "stale" && quiet;
          const mustSucceed = op.ev === "none" || (op.ev === "exact" && quiet);
          inflight.set(stream, (inflight.get(stream) ?? 0) + 1);
          const p = store.append(stream, events, { expectedVersion }).then(
            (r) => {
              inflight.set(stream, (inflight.get(stream) ?? 0) - 1);
              if (mustFail) throw new Error(`append with stale version ${String(expectedVersion)} succeeded`);
              expect(r.lastPosition - r.firstPosition + 1).toBe(events.length);
              const list = ids.get(stream) as string[];
              events.forEach((e, i) => {
                const pos = r.firstPosition + i;
                const g = r.globalPosition - events.length + 1 + i;
                if (list[pos - 1] !== undefined || global.has(g)) totals.duplicates++;
                list[pos - 1] = e.id;
                global.set(g, `${stream}:${e.id}`);
              });
              acked.set(stream, Math.max(acked.get(stream) ?? 0, r.lastPosition));
            },
            (error) => {
              inflight.set(stream, (inflight.get(stream) ?? 0) - 1);
              if (mustSucceed || !isStatelogError(error, ErrorCode.VersionConflict)) throw error;
            },
          );
          if (op.wait) await p;
          else pending.push(p);
          break;
        }
        case "read": {
          const stream = streams[op.s] as string;
          try {
            const r = await store.read(stream, op.from, op.limit);
            expect(r.events.length).toBeLessThanOrEqual(op.limit);
            reads.push({ stream, from: op.from, events: r.events });
          } catch (error) {
            if (isStatelogError(error, ErrorCode.NotFound)) expect(acked.get(stream)).toBe(0);
            else if (isBehindRetentionError(error)) behind.push({ stream, position: op.from });
            else throw error;
          }
          break;
        }
        case "sub": {
          if (subs.length >= 4) break;
          const ac = new AbortController();
          const stream = op.s < STREAMS ? (streams[op.s] as string) : undefined;
          const from = stream === undefined && op.from > 0 ? baseGlobal + op.from : op.from;
          const sub =
            stream === undefined
              ? store.subscribeAll(from, { bufferSize: op.buf, signal: ac.signal })
              : store.subscribe(stream, from, { bufferSize: op.buf, signal: ac.signal });
          subs.push({
            sub,
            it: sub[Symbol.asyncIterator](),
            ac,
            stream,
            from,
            received: [],
            pending: undefined,
            ended: false,
            aborted: false,
            error: undefined,
          });
          break;
        }
        case "pull": {
          const s = subs[op.i];
          if (s) await pull(s, op.n);
          break;
        }
        case "abort": {
          const s = subs[op.i];
          if (s && !s.aborted) {
            s.aborted = true;
            s.ac.abort();
          }
          break;
        }
        case "retain":
          now += op.advance;
          if (retention) {
            await store.applyRetention?.();
            cutoff = now - RETENTION_MS;
          }
          break;
        case "tick":
          await tick();
          break;
      }
    }
    await Promise.all(pending);
    const lastGlobal = Math.max(baseGlobal, ...global.keys());
    for (const s of subs) {
      const target = s.stream === undefined ? lastGlobal : (acked.get(s.stream) ?? 0);
      // Everything is committed now: pull until the subscriber is live with nothing left (or ended).
      for (let round = 0; !s.ended; round++) {
        if (round > 1000) throw new Error(`subscriber stuck at ${s.sub.position}, expected ${target}`);
        const before = s.received.length;
        await pull(s, 64);
        if (!s.aborted && s.received.length === before && s.sub.isLive) break;
      }
      if (!s.aborted && s.error === undefined) {
        const last = s.received.at(-1);
        const reached = last === undefined ? s.from : posOf(s, last);
        // A live subscriber short of the end is only right when what it lacks expired before it was delivered.
        for (let p = reached + 1; p <= target; p++) {
          const id = s.stream === undefined ? global.get(p)?.split(":").at(-1) : ids.get(s.stream)?.[p - 1];
          if (id !== undefined)
            expect(expired(id), `live subscriber at ${reached} lacks ${p} (target ${target})`).toBe(true);
        }
      }
      s.sub.close();
      if (isBehindRetentionError(s.error)) behind.push({ stream: s.stream, position: s.error.position });
      check(s, ids, global, new Set(streams), expired, totals);
    }
    for (const b of behind) {
      // The event after the reader's position really was old enough to be removed.
      const next =
        b.stream === undefined
          ? global
              .get(b.position + 1)
              ?.split(":")
              .at(-1)
          : ids.get(b.stream)?.[b.position];
      expect(expired(next), `behind-retention error at ${b.position} for an event that had not expired`).toBe(true);
    }
    for (const r of reads) {
      r.events.forEach((e, i) => {
        if (r.from > 0) expect(e.position).toBe(r.from + 1 + i);
        expect(ids.get(r.stream)?.[e.position - 1]).toBe(e.id);
      });
    }
    for (const stream of streams) {
      const list = ids.get(stream) as string[];
      if (list.length === 0) continue;
      for (let i = 0; i < list.length; i++) if (list[i] === undefined) totals.gaps++;
      const stored = await store.readStream(stream, 0);
      const first = stored[0]?.position ?? list.length + 1;
      for (let p = 1; p < first; p++) expect(expired(list[p - 1]), `position ${p} removed but not expired`).toBe(true);
      expect(stored.map((e) => e.id)).toEqual(list.slice(first - 1));
    }
    expect(totals.gaps, "gaps").toBe(0);
    expect(totals.duplicates, "duplicates").toBe(0);
    baseGlobal = lastGlobal;
  } finally {
    for (const s of subs) s.sub.close();
    await store.close();
  }
}

function posOf(s: Sub, e: RecordedEvent): number {
  return s.stream === undefined ? e.globalPosition : e.position;
}

/** Pulls up to `n` events; stops as soon as none is ready (keeping the pending call for the next pull). */
async function pull(s: Sub, n: number): Promise<void> {
  for (let i = 0; i < n && !s.ended; i++) {
    const p = s.pending ?? s.it.next();
    s.pending = p;
    const outcome = await Promise.race([
      p.then(
        (r) => ({ r }),
        (error: unknown) => ({ error }),
      ),
      tick().then(() => undefined),
    ]);
    if (outcome === undefined) return;
    s.pending = undefined;
    if ("error" in outcome) {
      s.error = outcome.error;
      s.ended = true;
      return;
    }
    if (outcome.r.done) {
      s.ended = true;
      return;
    }
    s.received.push(outcome.r.value);
  }
}

function check(
  s: Sub,
  ids: Map<string, string[]>,
  global: Map<number, string>,
  ours: Set<string>,
  expired: (id: string | undefined) => boolean,
  totals: Totals,
): void {
  if (s.error !== undefined) {
    expect(isBehindRetentionError(s.error), `subscriber failed with ${String(s.error)}`).toBe(true);
  }
  let prev = s.from;
  for (const [i, e] of s.received.entries()) {
    const pos = posOf(s, e);
    if (pos <= prev) totals.duplicates++;
    else if (pos !== prev + 1 && !(i === 0 && s.from === 0)) totals.gaps++;
    if (i === 0 && s.from === 0) {
      // Starting from 0 begins at the oldest stored event: everything before it must have expired.
      for (let p = 1; p < pos; p++) {
        const id = s.stream === undefined ? global.get(p)?.split(":").at(-1) : ids.get(s.stream)?.[p - 1];
        if (id !== undefined) expect(expired(id), `subscriber from 0 started at ${pos}`).toBe(true);
      }
    }
    if (s.stream === undefined) {
      // A shared server may hold other tests' streams: only ours are checked by identity.
      if (ours.has(e.streamId) || global.has(pos)) expect(`${e.streamId}:${e.id}`).toBe(global.get(pos));
    } else {
      expect(e.streamId).toBe(s.stream);
      expect(e.id).toBe(ids.get(s.stream)?.[pos - 1]);
    }
    prev = pos;
  }
  totals.delivered += s.received.length;
}
