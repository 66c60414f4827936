/**
 * The property of the event-sourced repository suite: random sequences of
 * commands and saves by several writers (some racing each other), random
 * snapshot schedules and writers of two `snapshotVersion`s, on one
 * aggregate. Afterwards: every event issued is stored exactly once, each
 * batch contiguous; every writer's `load(id)` is the fold of all events and
 * `load(id, { version: v })` the fold of the first v.
 */

import type { FreshAggregateContext } from "./aggregate-areas.js";
import { added } from "./aggregate-fixtures.js";
import { uniqueName } from "./fixtures.js";
import { loadFastCheck } from "./peers.js";
import { expect, it } from "./vitest.js";

interface Op {
  readonly writer: number;
  readonly kind: "handle" | "save" | "snapshot";
  readonly count: number;
  /** Runs together with the ops next to it that race too. */
  readonly race: boolean;
}

/** The property over random schedules; `runs` schedules per run. */
export function describeAggregateProperty(fresh: FreshAggregateContext, runs: number, timeout: number): void {
  it(`property: ${runs} random schedules of racing writers, snapshot schedules and snapshotVersions lose and repeat no event, and load = fold`, {
    timeout,
  }, async () => {
    const fc = await loadFastCheck();
    const t = fresh();
    const opArb = fc.record({
      writer: fc.nat(2),
      kind: fc.constantFrom("handle" as const, "handle" as const, "save" as const, "snapshot" as const),
      count: fc.integer({ min: 1, max: 3 }),
      race: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 }),
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        async (every, ops: Op[]) => {
          const id = uniqueName("p");
          const retry = { maxAttempts: 200, backoffMs: 1, maxBackoffMs: 5 };
          const writers = await Promise.all(
            [1, 1, 2].map((snapshotVersion) => t.repo({ snapshotEvery: every, snapshotVersion, retry })),
          );
          let next = 1;
          const batches: number[][] = [];
          const run = async (op: Op) => {
            const repo = writers[op.writer] ?? writers[0];
            if (repo === undefined) throw new Error("no writer");
            const first = next;
            next += op.count;
            batches.push(Array.from({ length: op.count }, (_, i) => first + i));
            if (op.kind === "save") await repo.save(id, added(first, op.count));
            else if (op.kind === "handle") await repo.handle(id, () => added(first, op.count));
            else await repo.handle(id, () => added(first, op.count), { createSnapshot: true });
          };
          for (let i = 0; i < ops.length; ) {
            const group = [ops[i] as Op];
            while (ops[i]?.race && ops[i + group.length] !== undefined && ops[i + group.length]?.race) {
              group.push(ops[i + group.length] as Op);
            }
            await Promise.all(group.map(run));
            i += group.length;
          }
          await Promise.all(writers.map((w) => w.flushSnapshots()));
          const stored = await t.storedNumbers(writers[0] as never, id);
          // No event lost or stored twice; each batch contiguous (atomic appends).
          expect([...stored].sort((a, b) => a - b)).toEqual(batches.flat().sort((a, b) => a - b));
          for (const batch of batches) {
            const at = stored.indexOf(batch[0] as number);
            expect(stored.slice(at, at + batch.length)).toEqual(batch);
          }
          for (const w of writers) {
            const loaded = await w.load(id);
            expect([loaded.version, loaded.state.items]).toEqual([stored.length, stored]);
            for (const v of new Set([1, Math.ceil(stored.length / 2), stored.length])) {
              expect((await w.load(id, { version: v })).state.items).toEqual(stored.slice(0, v));
            }
          }
        },
      ),
      { numRuns: runs },
    );
  });
}
