/**
 * Child process of the event-store benchmark (bench/events.ts): opens the
 * FileEventStore in `argv[2]` and prints one JSON line — the open's time
 * and CPU time,
 * the process's resident memory before the open and after it (after a
 * garbage collection, `--expose-gc`), and the heap. The benchmark bundles
 * this file with esbuild and runs it with plain `node`, so that the figure
 * is the store's, not a TypeScript loader's.
 */
import { FileEventStore } from "../src/file/index.js";

const directory = process.argv[2] as string;
global.gc?.();
const before = process.memoryUsage().rss;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const store = await FileEventStore.open({ directory, maxEventsPerStream: 0, maxStreams: 0, snapshotIntervalMs: 0 });
const openMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
global.gc?.();
const after = process.memoryUsage();
console.log(
  JSON.stringify({
    openMs,
    /** CPU time of the process during the open (all its threads): what the open costs on a machine shared with other work. */
    openCpuMs: (cpu.user + cpu.system) / 1000,
    events: store.stats().totalEvents,
    rssBeforeBytes: before,
    rssAfterBytes: after.rss,
    heapUsedBytes: after.heapUsed,
    externalBytes: after.external,
  }),
);
await store.close();
