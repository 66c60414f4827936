/**
 * The compaction worker as the benchmarks run it when esbuild is missing
 * (filestore.ts bundles it otherwise): they run statelog's TypeScript
 * sources under tsx, and a worker thread does not inherit the process's
 * TypeScript loader. This module registers tsx in the worker, then runs
 * src/file/compact-worker.ts (passed as the internal option
 * `compactionWorkerUrl`, see src/file/internal.ts and filestore.ts).
 */
import { register } from "tsx/esm/api";

register();
await import("../../src/file/compact-worker.ts");
