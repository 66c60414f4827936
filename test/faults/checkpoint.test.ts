/**
 * The projector's checkpoint under storage faults. The checkpoint lives in
 * the FileReadModelStore's log, written with each batch of models in one
 * line: a batch whose write fails must not move the stored checkpoint
 * (never acknowledged), and once the fault is gone the projector must
 * resume from the stored checkpoint and apply every event exactly once
 * (each model lists the positions of the events applied to it).
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileEventStore, FileReadModelStore } from "../../src/file/index.js";
import { ProjectionStatus } from "../../src/read-models/index.js";
import { tempDir } from "../file/helpers.js";
import { figures } from "./figures.js";
import {
  allEvents,
  appendCountingEvents,
  type Counted,
  counting,
  expectedCounts,
  openCountingProjector,
} from "./fixtures/projection.js";
import { runUnderShim } from "./harness.js";
import { Tmpfs } from "./tmpfs.js";

const record = figures("projector-checkpoint");

async function storedModels(store: FileReadModelStore): Promise<Map<string, Counted>> {
  const out = new Map<string, Counted>();
  for (const id of await store.list(counting.modelType)) {
    out.set(id, (await store.load<Counted>(counting.modelType, id))?.model as Counted);
  }
  return out;
}

const openModels = (dir: string) => FileReadModelStore.open({ directory: dir, sync: "fsync" });

async function until(done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Events lost or applied twice: models that differ from the exact fold. */
const differences = (got: Map<string, Counted>, want: Map<string, Counted>): number =>
  [...new Set([...got.keys(), ...want.keys()])].filter(
    (k) => JSON.stringify(got.get(k)) !== JSON.stringify(want.get(k)),
  ).length;

describe("projector checkpoint under storage faults", () => {
  it("disk full: the failed batch leaves the stored checkpoint where it was; once space returns the projector resumes exactly once", {
    timeout: 60_000,
  }, async () => {
    const fs = Tmpfs.mount(256 * 1024);
    const events = await FileEventStore.open({ directory: tempDir("statelog-faults-events-"), sync: "none" });
    let models = await openModels(fs.dir);
    let projector = await openCountingProjector(events, models);
    await appendCountingEvents(events, 0, 60);
    await projector.waitForCatchUp({ timeoutMs: 20_000 });
    expect((await models.getProjectionStatus(counting.name))?.checkpoint).toBe(60);
    fs.fill();
    await appendCountingEvents(events, 60, 200);
    await until(() => projector.status(counting.name).status === ProjectionStatus.Failed);
    expect(projector.status(counting.name).lastError).toMatch(/disk full/);
    // The last checkpoint written (the file's last page may still take a few batches after the fill).
    const before = projector.status(counting.name).checkpoint;
    expect(before).toBeGreaterThanOrEqual(60);
    expect(before).toBeLessThan(200);
    // Not acknowledged: neither the checkpoint nor any model of the failed batch moved, in memory or on disk.
    expect((await models.getProjectionStatus(counting.name))?.checkpoint).toBe(before);
    const all = await allEvents(events);
    expect(differences(await storedModels(models), expectedCounts(all, before))).toBe(0);
    await projector.close();
    await models.close();
    models = await openModels(fs.dir);
    expect((await models.getProjectionStatus(counting.name))?.checkpoint).toBe(before);
    expect(differences(await storedModels(models), expectedCounts(all, before))).toBe(0);
    const freed = Date.now();
    fs.free();
    projector = await openCountingProjector(events, models);
    await projector.waitForCatchUp({ timeoutMs: 20_000 });
    const recoveryMs = Date.now() - freed;
    await projector.close();
    await models.close();
    models = await openModels(fs.dir);
    const final = await storedModels(models);
    const wrong = differences(final, expectedCounts(all, 200));
    expect(wrong).toBe(0);
    expect((await models.getProjectionStatus(counting.name))?.checkpoint).toBe(200);
    await models.close();
    await events.close();
    record({
      backend: "Projector + FileReadModelStore",
      fault: "disk full (ENOSPC) during checkpoint writes",
      injection: "tmpfs of 256 KiB (the read-model log) filled while 140 events arrive",
      injections: 1,
      acknowledged: 200,
      acknowledgedLost: wrong,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });

  it("I/O error on every fsync from the 4th: the projection fails, the stored checkpoint is the last fsynced one; without the fault it resumes exactly once", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir("statelog-faults-rm-");
    const eventsDir = tempDir("statelog-faults-events-");
    const report = path.join(tempDir("statelog-shim-"), "counters.json");
    const run = await runUnderShim(
      "projector",
      { eventsDir, dir, events: 200 },
      { path: "read-models.jsonl", op: "fsync", nth: 4, count: 0, report },
    );
    expect(run.counters.injected).toBeGreaterThanOrEqual(3);
    expect(run.counters.fsyncs_on_failed_fd).toBe(0);
    const failLine = run.lines.find((l) => l.startsWith("projector-fail "));
    expect(failLine, run.lines.join("\n")).toBeDefined();
    expect(JSON.parse(failLine?.slice("projector-fail ".length) ?? "{}")).toMatchObject({
      code: "STATELOG_WRITE_FAILED",
      errno: "EIO",
    });
    const stored = Number(run.lines.find((l) => l.startsWith("stored "))?.split(" ")[1]);
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(200);
    const started = Date.now();
    const events = await FileEventStore.open({ directory: eventsDir, sync: "none" });
    const all = await allEvents(events);
    expect(all.length).toBe(200);
    const models = await openModels(dir);
    // What the child's store held as acknowledged is exactly what is on disk.
    expect((await models.getProjectionStatus(counting.name))?.checkpoint).toBe(stored);
    expect(differences(await storedModels(models), expectedCounts(all, stored))).toBe(0);
    const projector = await openCountingProjector(events, models);
    await projector.waitForCatchUp({ timeoutMs: 20_000 });
    const recoveryMs = Date.now() - started;
    await projector.close();
    const final = await storedModels(models);
    const wrong = differences(final, expectedCounts(all, 200));
    expect(wrong).toBe(0);
    await models.close();
    await events.close();
    record({
      backend: "Projector + FileReadModelStore",
      fault: "I/O error (EIO) on checkpoint fsync",
      injection: "LD_PRELOAD shim fails every fsync/fdatasync of read-models.jsonl from the 4th, child process",
      injections: run.counters.injected,
      acknowledged: 200,
      acknowledgedLost: wrong,
      rejectedVisible: 0,
      unloadableStores: 0,
      recoveryMs,
    });
  });
});
