/**
 * How the benchmarks drive statelog's `FileStore` (`src/file/`), and the
 * timed runs shared by the write and restore measurements.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Change, ChangeInput } from "../../src/core/change.js";
import { FileStore, type FsyncOn } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { now } from "./measure.js";

/** Options the benchmarks pass to `FileStore.open`, on top of its defaults. */
export interface BenchFileStoreOptions {
  /** Let the store compact on its own (its default), or keep the whole history (`false`). */
  readonly autoCompact?: boolean;
  /** Where each group write's fsync runs (the store's default: the thread pool). */
  readonly fsyncOn?: FsyncOn;
}

let compactionWorker: Promise<URL> | undefined;

/**
 * The compaction worker as the published package runs it: compiled
 * JavaScript (src/file/compact-worker.ts bundled once with esbuild, a dev
 * dependency), so that large compactions scan in a worker thread as they
 * do in production. (A worker does not inherit the process's TypeScript
 * loader: run from the sources, each worker would load tsx first.)
 */
function compactionWorkerUrl(): Promise<URL> {
  compactionWorker ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "statelog-bench-worker-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    const out = path.join(dir, "compact-worker.mjs");
    const esbuild = await import("esbuild");
    await esbuild.build({
      entryPoints: [fileURLToPath(new URL("../../src/file/compact-worker.ts", import.meta.url))],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: out,
      logLevel: "silent",
    });
    return pathToFileURL(out);
  })();
  return compactionWorker;
}

/** Opens a FileStore the way the benchmarks use it: entity types unregistered (accepted by default). */
export async function openFileStore(directory: string, options: BenchFileStoreOptions = {}): Promise<FileStore> {
  return FileStore.open(
    withInternals(
      {
        directory,
        ...(options.autoCompact === undefined ? {} : { autoCompact: options.autoCompact }),
        ...(options.fsyncOn === undefined ? {} : { fsyncOn: options.fsyncOn }),
      },
      { compactionWorkerUrl: await compactionWorkerUrl() },
    ),
  );
}

/**
 * Saves every batch (one `save` each, awaited in turn) and closes the
 * store. Returns the milliseconds spent in `save` and `close`, leaving
 * out `open` and the time the workload generator took.
 */
export async function fileStoreWrite(
  dir: string,
  batches: Iterable<ChangeInput[]>,
  options: BenchFileStoreOptions = {},
): Promise<number> {
  const store = await openFileStore(dir, options);
  let spent = 0;
  try {
    for (const batch of batches) {
      const start = now();
      await store.save(batch);
      spent += now() - start;
    }
  } finally {
    const start = now();
    await store.close();
    spent += now() - start;
  }
  return spent;
}

/** A restore from scratch: open, `load(namespace)`, close. Returns what was loaded and the milliseconds it took. */
export async function fileStoreRestore(
  dir: string,
  namespace: string,
): Promise<{ readonly ms: number; readonly changes: Change[] }> {
  const start = now();
  const store = await openFileStore(dir, { autoCompact: false });
  try {
    const changes = await store.load(namespace);
    return { ms: now() - start, changes };
  } finally {
    await store.close();
  }
}
