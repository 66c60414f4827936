/** Temp directories for the file store tests, removed after the run; the compaction worker as tests run it; changes they save. */
import type { ChangeInput } from "../../src/core/change.js";
import type { PreparedChange } from "../../src/core/store.js";
import { ByteSink, encodeLinesInto, type NameJsonCache } from "../../src/file/encode.js";
import type { FileStoreOptions } from "../../src/file/index.js";
import { withInternals } from "../../src/file/internal.js";
import { tempDir as tempDirOf } from "../helpers/temp.js";

/** A fresh temp directory, removed when the test file ends. */
export function tempDir(prefix = "statelog-file-"): string {
  return tempDirOf(prefix);
}

/** A module that runs the compaction worker from the TypeScript sources (fixtures/compact-worker.mjs). */
export const SOURCE_COMPACTION_WORKER = new URL("./fixtures/compact-worker.mjs", import.meta.url);

/** `options` with compaction workers that run from the TypeScript sources. */
export function withSourceWorker(options: FileStoreOptions): FileStoreOptions {
  return withInternals(options, { compactionWorkerUrl: SOURCE_COMPACTION_WORKER });
}

/** A set of the `item` `id` to `entity` in namespace "ws". */
export function itemSet(id: string, entity: unknown): ChangeInput {
  return { namespace: "ws", changeType: "set", entityType: "item", entityId: id, entity };
}

/** {@link itemSet} of `{ n, pad }`, the pad 200 bytes: lines of about 270 bytes. */
export function paddedItemSet(id: string, n: number): ChangeInput {
  return itemSet(id, { n, pad: "x".repeat(200) });
}

/** The lines a FileStore writes for `changes` (see `encodeLinesInto`). */
export function encodeLines(changes: readonly PreparedChange[], names: NameJsonCache, integrity: boolean): Buffer {
  const sink = new ByteSink(1024);
  encodeLinesInto(sink, changes, names, integrity);
  return sink.bytes();
}
