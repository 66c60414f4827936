/**
 * Child process of the event-store benchmark (bench/events.ts): opens the
 * FileEventStore in `argv[2]` and prints one JSON line — the open's time,
 * the process's resident memory before the open and after it (after a
 * garbage collection, `--expose-gc`), and the heap. The benchmark bundles
 * this file with esbuild and runs it with plain `node`, so that the figure
 * is the store's, not a TypeScript loader's.
 */
import { FileEventStore } from "../src/file/index.js";

const directory = process.argv[2] as string;
global.gc?.();
const before = process.memoryUsage().rss;
const t0 = performance.now();
const store = await FileEventStore.open({ directory, maxEventsPerStream: 0, maxStreams: 0, snapshotIntervalMs: 0 });
const openMs = performance.now() - t0;
global.gc?.();
const after = process.memoryUsage();
console.log(
  JSON.stringify({
    openMs,
    events: store.stats().totalEvents,
    rssBeforeBytes: before,
    rssAfterBytes: after.rss,
    heapUsedBytes: after.heapUsed,
    externalBytes: after.external,
  }),
);
await store.close();
