/**
 * Crash test of the Projector: a child process appends events to a
 * FileEventStore while a Projector runs two projections (one with deletes,
 * one over every stream) into a durable read-model store; the child is
 * SIGKILLed at a random moment, each next child resuming on the same
 * directories: STATELOG_CRASH_ITERATIONS kills in total (at least 200),
 * shared evenly by the stores of CRASH_STORES (FileReadModelStore, with an
 * atomic checkpoint, and a JSON-file double without one: both ways the
 * projector keeps each event once per model).
 *
 * Every model holds the positions of the events applied to it, so a double
 * or a missed application shows. Now and then between kills, each stored
 * model must equal the fold of its events up to its own lastEventPosition;
 * at the end, after a final catch-up, every model equals the fold of every
 * event and every projection is `up_to_date`.
 *
 * The store is a parameter: each entry of CRASH_STORES
 * (fixtures/crash-projections.ts) runs the test with its share of the kills.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { RecordedEvent } from "../../src/events/index.js";
import { FileEventStore } from "../../src/file/index.js";
import { Projector, type ReadModelStore } from "../../src/read-models/index.js";
import { childCommand } from "../helpers/child-command.js";
import { CRASH_STORES, type Folded, foldAll, PROJECTIONS } from "./fixtures/crash-projections.js";

const ITERATIONS = Math.max(200, Number(process.env.STATELOG_CRASH_ITERATIONS ?? 0) || 0);
/** Kills per store: the total shared by the stores. */
const KILLS = Math.ceil(ITERATIONS / Object.keys(CRASH_STORES).length);
/** Events each child appends (if it lives long enough). */
const PER_CHILD = 40;
/** Every this many kills of a lane, its stored models are checked against the events (without a catch-up). */
const CHECK_EVERY = 20;
/** Lanes (directories) killed side by side; their kills add up to KILLS. */
const LANES = 2;

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, "fixtures", "projector-child.ts");
const base = await mkdtemp(path.join(tmpdir(), "statelog-projector-crash-"));
const live = new Set<ChildProcess>();

afterAll(async () => {
  for (const child of live) child.kill("SIGKILL");
  await rm(base, { recursive: true, force: true });
});

interface Child {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  waitFor(line: string): Promise<void>;
  stderr(): string;
}

function start(argv: string[], args: object): Child {
  const child = spawn(process.execPath, [...argv, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "pipe"],
    cwd: path.resolve(here, "../.."),
    env: { ...process.env, NODE_PATH: path.resolve(here, "../../node_modules") },
  });
  live.add(child);
  const lines: string[] = [];
  const waiters = new Map<string, () => void>();
  let partial = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      waiters.get(line)?.();
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    lines,
    exited,
    stderr: () => err,
    waitFor: (line) =>
      lines.includes(line)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.set(line, resolve);
            void exited.then((e) => reject(new Error(`child exited (${e.code ?? e.signal}) before "${line}": ${err}`)));
          }),
  };
}

async function openEvents(directory: string): Promise<FileEventStore> {
  return FileEventStore.open({ directory, maxEventsPerStream: 0, maxStreams: 0, snapshotIntervalMs: 0 });
}

async function allEvents(events: FileEventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (const s of await events.getStreams()) out.push(...(await events.readStream(s.streamId)));
  return out.sort((a, b) => a.globalPosition - b.globalPosition);
}

function expectIncreasing(positions: readonly number[], where: string): void {
  for (let i = 1; i < positions.length; i++) {
    if ((positions[i] as number) <= (positions[i - 1] as number))
      expect.fail(`${where}: positions ${positions.join(",")} apply an event twice or out of order`);
  }
}

/** Between kills: each stored model is the fold of its events up to its own lastEventPosition. */
async function checkStored(events: readonly RecordedEvent[], store: ReadModelStore, when: string): Promise<number> {
  let checked = 0;
  const head = events.at(-1)?.globalPosition ?? 0;
  for (const p of PROJECTIONS) {
    const type = p.modelType as "Balance" | "StreamCount";
    for (const id of await store.list(type)) {
      const stored = await store.load<Folded>(type, id);
      if (!stored) continue;
      const where = `${when}, ${type} ${id}`;
      expectIncreasing(stored.model.positions, where);
      expect(stored.metadata.lastEventPosition, where).toBeLessThanOrEqual(head);
      expect(stored.model, where).toEqual(foldAll(events, stored.metadata.lastEventPosition)[type].get(id));
      checked++;
    }
    const status = await store.getProjectionStatus(p.name);
    expect(status?.checkpoint ?? 0, `${when}, ${p.name} checkpoint`).toBeLessThanOrEqual(head);
  }
  return checked;
}

interface LaneResult {
  readonly dirs: { readonly events: string; readonly models: string };
  readonly killedAppending: number;
  readonly killedCatchingUp: number;
  readonly checkedModels: number;
}

/** One lane: its own directories, `kills` children one after the other, each SIGKILLed at a random moment. */
async function lane(
  argv: string[],
  storeName: string,
  openStore: (directory: string) => Promise<ReadModelStore>,
  kills: number,
): Promise<LaneResult> {
  const run = await mkdtemp(path.join(base, "lane-"));
  const dirs = { events: path.join(run, "events"), models: path.join(run, "models") };
  let spawned = 0;
  const next = () =>
    start(argv, {
      ...dirs,
      store: storeName,
      first: 1 + spawned * PER_CHILD,
      count: PER_CHILD,
      batchSize: 1 + (spawned % 7),
      // Checkpoints every batchSize models, or batches that grow for a few ms or for the whole catch-up.
      checkpointIntervalMs: [0, 3, 1000][spawned++ % 3],
    });
  // The next children boot while the current one runs (each waits for "go" before touching the directories).
  const booting = [next(), next()];
  let killedAppending = 0;
  let killedCatchingUp = 0;
  let checkedModels = 0;
  try {
    for (let i = 0; i < kills; i++) {
      const c = booting.shift() as Child;
      booting.push(next());
      await c.waitFor("booted");
      c.child.stdin?.write("go\n");
      await c.waitFor("ready");
      // Mostly soon (opening, appending, catching up), sometimes later (caught up, idle).
      const delay = Math.random() < 0.85 ? Math.random() * 50 : 50 + Math.random() * 250;
      await new Promise((r) => setTimeout(r, delay));
      c.child.kill("SIGKILL");
      const { signal } = await c.exited;
      expect(signal, `child ended by itself: ${c.stderr()}`).toBe("SIGKILL");
      if (!c.lines.includes("appended")) killedAppending++;
      else if (!c.lines.includes("caught-up")) killedCatchingUp++;
      if ((i + 1) % CHECK_EVERY === 0) {
        const events = await openEvents(dirs.events);
        const store = await openStore(dirs.models);
        try {
          checkedModels += await checkStored(await allEvents(events), store, `${run}, after kill ${i + 1}`);
        } finally {
          await store.close();
          await events.close();
        }
      }
    }
  } finally {
    for (const c of booting) c.child.kill("SIGKILL");
    await Promise.all(booting.map((c) => c.exited));
  }
  return { dirs, killedAppending, killedCatchingUp, checkedModels };
}

/** After the kills: a final catch-up, then every model is the fold of every event and each projection up to date. */
async function finalCheck(
  dirs: LaneResult["dirs"],
  openStore: (directory: string) => Promise<ReadModelStore>,
): Promise<{ events: number; balances: number }> {
  const events = await openEvents(dirs.events);
  const store = await openStore(dirs.models);
  try {
    const all = await allEvents(events);
    const projector = await Projector.open({
      eventStore: events,
      readModels: store,
      projections: [...PROJECTIONS] as never,
    });
    try {
      await projector.waitForCatchUp({ timeoutMs: 60_000 });
      const expected = foldAll(all);
      for (const p of PROJECTIONS) {
        const type = p.modelType as "Balance" | "StreamCount";
        expect(await projector.models.list(type)).toEqual([...expected[type].keys()].sort());
        for (const [id, model] of expected[type]) {
          const stored = await store.load<Folded>(type, id);
          expect(stored?.model, `${type} ${id}`).toEqual(model);
          expect(stored?.metadata.lastEventPosition).toBe(model.positions.at(-1));
        }
        expect(projector.status(p.name)).toMatchObject({ status: "up_to_date", lagEvents: 0 });
        expect(await store.getProjectionStatus(p.name)).toMatchObject({
          status: "up_to_date",
          checkpoint: all.at(-1)?.globalPosition,
        });
      }
      return { events: all.length, balances: expected.Balance.size };
    } finally {
      await projector.close();
    }
  } finally {
    await store.close();
    await events.close();
  }
}

describe.each(Object.keys(CRASH_STORES))("Projector crash safety on %s", (storeName) => {
  it(`every model is the fold of its events, each applied once, across ${KILLS} SIGKILLs`, {
    timeout: 120_000 + KILLS * 1_000,
  }, async () => {
    const openStore = CRASH_STORES[storeName] as (directory: string) => Promise<ReadModelStore>;
    const argv = await childCommand(fixture, base);
    // LANES independent directories killed side by side: the waits of one overlap the work of the other.
    const per = Math.ceil(KILLS / LANES);
    const lanes = await Promise.all(Array.from({ length: LANES }, () => lane(argv, storeName, openStore, per)));
    let killedBusy = 0;
    let checkedModels = 0;
    let events = 0;
    for (const l of lanes) {
      const final = await finalCheck(l.dirs, openStore);
      expect(final.balances).toBeGreaterThan(5);
      events += final.events;
      killedBusy += l.killedAppending + l.killedCatchingUp;
      checkedModels += l.checkedModels;
    }
    // The test did what it says: events appended, most kills in the middle of the work, models checked between kills.
    expect(events).toBeGreaterThan(KILLS);
    expect(killedBusy).toBeGreaterThan(KILLS / 4);
    expect(checkedModels).toBeGreaterThan(0);
    console.log(
      `${storeName}: ${per * LANES} kills (${killedBusy} before the child had appended and caught up), ` +
        `${events} events, ${checkedModels} models checked between kills`,
    );
  });
});
