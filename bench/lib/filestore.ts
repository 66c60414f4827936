/**
 * How the benchmarks drive statelog's `FileStore` (`src/file/`), and the
 * timed runs shared by the write and restore measurements.
 */
import type { Change, ChangeInput } from "../../src/core/change.js";
import { FileStore } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { now } from "./measure.js";

/** Options the benchmarks pass to `FileStore.open`, on top of its defaults. */
export interface BenchFileStoreOptions {
  /** Let the store compact on its own (its default), or keep the whole history (`false`). */
  readonly autoCompact?: boolean;
}

/**
 * The compaction worker run from the TypeScript sources (as the built
 * package runs compact-worker.js), so that large compactions scan in a
 * worker thread as they do in production.
 */
const COMPACTION_WORKER = new URL("./compact-worker.mjs", import.meta.url);

/** Opens a FileStore the way the benchmarks use it: entity types unregistered (accepted by default). */
export function openFileStore(directory: string, options: BenchFileStoreOptions = {}): Promise<FileStore> {
  return FileStore.open(
    withInternals(
      { directory, ...(options.autoCompact === undefined ? {} : { autoCompact: options.autoCompact }) },
      { compactionWorkerUrl: COMPACTION_WORKER },
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
