/**
 * Crash test of FileEventStore: a child process (fixtures/events-crash-child.ts)
 * appends batches of 2 to 6 events from several writers at once (group
 * commit, snapshots; `sync: "fsync"` and `"none"` in turns) and reports
 * every acknowledged append; it is SIGKILLed at a random moment,
 * STATELOG_CRASH_ITERATIONS times (default 60). After each kill the store
 * must reopen, every append must be there whole or not at all, and every
 * acknowledged append must be there, at the position it returned.
 *
 * A kill cuts a write short (at a page boundary) only when it lands inside
 * `write(2)`, a tiny part of the child's time; most kills land in an fsync,
 * after a group's lines are all written and before its appends resolve. So
 * after each kill the test also cuts what the child wrote after its last
 * acknowledged append at a random place (a line boundary or inside a line):
 * what a kill during that write would have left.
 *
 * Kills during index writes: the child's small segments roll every few
 * appends, and each roll and snapshot writes an index side file. As with
 * the log, a kill rarely lands inside one of those writes; so after every
 * other kill the test also cuts one index file at a random byte (what a
 * kill during its write would have left). The reopen must detect it and
 * scan the segment instead.
 */
import { readdir, readFile, stat, truncate } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ErrorCode, isStatelogError } from "../../src/core/errors.js";
import type { RecordedEvent } from "../../src/events/index.js";
import { FileEventStore, SyncPolicy } from "../../src/file/index.js";
import { tempDir } from "./helpers.js";
import { spawnChild } from "./spawn.js";

const ITERATIONS = Number(process.env.STATELOG_CRASH_ITERATIONS ?? 60);
const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "events-crash-child.ts");
const STREAMS = ["s0", "s1", "s2", "s3"];

/** What the child puts in each event: its append's batch id and length, and its index in the append. */
interface BatchData {
  readonly b: string;
  readonly n: number;
  readonly i: number;
}

/** The last segment and its size. */
async function lastSegment(directory: string): Promise<{ file: string; size: number } | undefined> {
  const name = (await readdir(directory).catch(() => [] as string[]))
    .filter((f) => f.startsWith("segment-"))
    .sort()
    .at(-1);
  if (!name) return undefined;
  const file = path.join(directory, name);
  return { file, size: (await stat(file)).size };
}

/**
 * Cuts the bytes the last child wrote after its last acknowledged append
 * (from `from` on, in the last segment) at a random place; whether the cut
 * left some, not all, whole lines of an append (what the fix must drop).
 */
async function cutUnacknowledgedTail(file: string, from: number, acked: ReadonlySet<string>): Promise<boolean> {
  const buf = await readFile(file);
  const lines: { end: number; data: BatchData }[] = [];
  for (let pos = from, nl = buf.indexOf(10, from); nl >= 0; pos = nl + 1, nl = buf.indexOf(10, pos)) {
    lines.push({ end: nl + 1, data: (JSON.parse(buf.toString("utf8", pos, nl)) as { data: BatchData }).data });
  }
  let start = from;
  for (const l of lines) if (acked.has(l.data.b)) start = l.end;
  const tail = lines.filter((l) => l.end > start);
  if (tail.length === 0) return false;
  const k = Math.floor(Math.random() * tail.length); // whole lines kept
  const inLine =
    Math.random() < 0.5
      ? Math.floor(Math.random() * ((tail[k] as { end: number }).end - 1 - (tail[k - 1]?.end ?? start)))
      : 0;
  await truncate(file, (tail[k - 1]?.end ?? start) + inLine);
  const last = tail[k - 1]?.data;
  return last !== undefined && last.i < last.n - 1;
}

async function readAll(store: FileEventStore, stream: string): Promise<RecordedEvent[]> {
  try {
    return await store.readStream(stream);
  } catch (error) {
    if (isStatelogError(error, ErrorCode.NotFound)) return [];
    throw error;
  }
}

describe("FileEventStore crash safety", () => {
  it(`every append is whole or absent, every acknowledged one present, across ${ITERATIONS} SIGKILLs`, {
    timeout: 60_000 + ITERATIONS * 2_000,
  }, async () => {
    const base = tempDir("statelog-events-crash-");
    /** A new directory every 10 kills keeps each reopen short; each one sees 10 writers in turn. */
    const directoryOf = (i: number) => path.join(base, `d${Math.floor(i / 10)}`);
    /** batch id → where its acknowledged append put it (in the current directory). */
    const acked = new Map<string, { stream: string; first: number; n: number }>();
    let totalAcked = 0;
    let cutAppends = 0;
    let cutIndexes = 0;
    const boot = (i: number) =>
      spawnChild("events-writer", { sync: i % 2 === 0 ? SyncPolicy.Fsync : SyncPolicy.None }, {}, fixture);
    // The next children boot while the current one runs: startup stays off the critical path.
    const booting = [boot(0), boot(1)];
    for (let i = 0; i < ITERATIONS; i++) {
      const directory = directoryOf(i);
      if (directory !== directoryOf(i - 1)) acked.clear();
      const child = await (booting.shift() as (typeof booting)[number]);
      const before = await lastSegment(directory);
      await child.waitFor((l) => l === "ready");
      child.process.stdin?.write(`r${i} ${directory}\n`);
      booting.push(boot(i + 2));
      await child.waitFor((l) => l === "open");
      await new Promise((r) => setTimeout(r, Math.random() * 60));
      child.process.kill("SIGKILL");
      const { signal } = await child.exited;
      expect(signal, `child ended by itself: ${child.stderr()}`).toBe("SIGKILL");
      for (const line of child.lines) {
        const m = /^ACK (\S+) (\d+) (\S+) (\d+)$/.exec(line);
        if (!m) continue;
        acked.set(m[3] as string, { stream: m[1] as string, first: Number(m[2]), n: Number(m[4]) });
        totalAcked++;
      }
      const after = await lastSegment(directory);
      if (after) {
        const from = after.file === before?.file ? before.size : 0;
        if (await cutUnacknowledgedTail(after.file, from, new Set(acked.keys()))) cutAppends++;
      }

      if (i % 2 === 1) {
        const indexes = (await readdir(directory)).filter((f) => f.startsWith("index-"));
        const victim = indexes[Math.floor(Math.random() * indexes.length)];
        if (victim) {
          const file = path.join(directory, victim);
          await truncate(file, Math.floor(Math.random() * (await stat(file)).size));
          cutIndexes++;
        }
      }

      // Reopen after the crash: each stream is a sequence of whole appends, holding every acknowledged one.
      const store = await FileEventStore.open({
        directory,
        maxEventsPerStream: 0,
        maxStreams: 0,
        snapshotIntervalMs: 0,
      });
      try {
        const found = new Map<string, { stream: string; first: number }>();
        for (const stream of STREAMS) {
          const events = await readAll(store, stream);
          expect(events.map((e) => e.position)).toEqual(events.map((_, j) => j + 1));
          for (let j = 0; j < events.length; ) {
            const head = events[j]?.data as BatchData;
            const batch = events.slice(j, j + head.n).map((e) => e.data as BatchData);
            expect(batch, `append ${head.b} in ${stream} after kill ${i}`).toEqual(
              Array.from({ length: head.n }, (_, k) => expect.objectContaining({ b: head.b, n: head.n, i: k })),
            );
            expect(found.has(head.b), `append ${head.b} twice`).toBe(false);
            found.set(head.b, { stream, first: j + 1 });
            j += head.n;
          }
        }
        for (const [b, { stream, first }] of acked) {
          expect(found.get(b), `acknowledged append ${b} after kill ${i}`).toEqual({ stream, first });
        }
      } finally {
        await store.close();
      }
    }
    for (const spare of await Promise.all(booting)) {
      spare.process.kill("SIGKILL");
      await spare.exited;
    }
    expect(totalAcked).toBeGreaterThan(ITERATIONS);
    // Appends were cut in the middle: the reopens above dropped them.
    expect(cutAppends).toBeGreaterThan(0);
    // Index files were cut short: the reopens above scanned their segments instead.
    expect(cutIndexes).toBeGreaterThan(0);
  });
});
