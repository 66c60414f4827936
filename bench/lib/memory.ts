/** Core benchmark, section 4: MemoryStore vs a plain `Map`. */
import { MemoryStore } from "../../src/memory/index.js";
import { type BenchResult, collectGarbage, compare, formatMs, now, RatioKind } from "./measure.js";
import { log, type Plan, SUITE } from "./plan.js";
import { batches, summarize, type WorkloadOptions } from "./workload.js";

/** Section 4: MemoryStore save of the whole workload + load, vs a Map doing the same sets/deletes + reading back. */
export async function memoryStore(plan: Plan, signal: AbortSignal | undefined): Promise<BenchResult> {
  const { namespace, changes: units } = summarize(plan.workload);
  const storeRun = async (workload: WorkloadOptions): Promise<number> => {
    await collectGarbage();
    const store = new MemoryStore();
    let spent = 0;
    for (const batch of batches(workload)) {
      const start = now();
      await store.save(batch);
      spent += now() - start;
    }
    const start = now();
    const loaded = await store.load(namespace);
    spent += now() - start;
    if (loaded.length !== summarize(workload).entities) throw new Error(`MemoryStore loaded ${loaded.length} keys`);
    await store.close();
    return spent;
  };
  const mapRun = async (workload: WorkloadOptions): Promise<number> => {
    await collectGarbage();
    const map = new Map<string, unknown>();
    let spent = 0;
    for (const batch of batches(workload)) {
      const start = now();
      for (const c of batch) {
        const key = `${c.entityType}/${c.entityId}`;
        if (c.changeType === "set") map.set(key, c.entity);
        else map.delete(key);
      }
      spent += now() - start;
    }
    const start = now();
    const loaded = [...map.values()];
    spent += now() - start;
    if (loaded.length !== summarize(workload).live) throw new Error(`Map held ${loaded.length} entities`);
    return spent;
  };
  log("MemoryStore vs Map: warm-up");
  await storeRun(plan.warmupWorkload);
  await mapRun(plan.warmupWorkload);
  const store: number[] = [];
  const map: number[] = [];
  for (let rep = 0; rep < plan.memoryRepetitions; rep++) {
    signal?.throwIfAborted();
    store.push(await storeRun(plan.workload));
    map.push(await mapRun(plan.workload));
    log(
      `MemoryStore vs Map ${rep + 1}/${plan.memoryRepetitions}: MemoryStore ${formatMs(store.at(-1)!)}, Map ${formatMs(map.at(-1)!)}`,
    );
  }
  return compare(
    {
      suite: SUITE,
      operation: "memory: save all batches + load",
      subject: "MemoryStore",
      baseline: "Map",
      baselineDetail: "a plain Map doing the same set/delete per change, then reading back its values",
      units,
      unit: "changes",
      ratioKind: RatioKind.TimeRatio,
      target: 2.5,
      note: "MemoryStore validates and copies every entity on save and again on load (callers never share stored state); a Map keeps references",
    },
    store,
    map,
  );
}
