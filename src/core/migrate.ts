/**
 * Copying namespaces between stores: backups, restores, migrations.
 */
import type { Change } from "./change.js";
import { isPartialWriteError, PartialWriteError, throwIfAborted, UnsupportedError } from "./errors.js";
import { OptionChecker } from "./options.js";
import type { CallOptions, ReadonlyStore, Store } from "./store.js";

/** Progress of a copy. */
export interface CopyProgress {
  readonly namespace: string;
  /** Changes saved to the target so far in this namespace. */
  readonly copied: number;
  /** Changes to copy in this namespace. */
  readonly total: number;
  /** For {@link migrate}: namespaces finished so far and in all. */
  readonly namespacesDone?: number;
  readonly namespacesTotal?: number;
}

/** Options of {@link copyNamespace} and {@link migrate}. */
export interface CopyOptions extends CallOptions {
  /** Changes per `save` on the target. @default 1000 */
  batchSize?: number;
  /** Called after every batch. */
  onProgress?: (progress: CopyProgress) => void;
}

/** What a copy did. */
export interface CopyResult {
  readonly namespaces: number;
  /** Changes copied, tombstones included. */
  readonly changes: number;
}

/**
 * Copies the current state of one namespace (latest change per key,
 * tombstones included, so deletes reach a target that held older data)
 * from one store to another, in batches. The source is read once, as its
 * compacted state; the target receives it in `batchSize` saves, each
 * releasing its slice of the list.
 */
export async function copyNamespace(
  from: ReadonlyStore,
  to: Store,
  namespace: string,
  options: CopyOptions & { namespacesDone?: number; namespacesTotal?: number } = {},
): Promise<CopyResult> {
  const batchSize = checkBatchSize(options.batchSize);
  const changes: (Change | undefined)[] = await from.load(namespace, { signal: options.signal });
  const total = changes.length;
  for (let start = 0; start < total; start += batchSize) {
    throwIfAborted(options.signal);
    const end = Math.min(total, start + batchSize);
    const batch = changes.slice(start, end) as Change[];
    changes.fill(undefined, start, end); // let the batch be collected once it is saved
    await to.save(batch, { signal: options.signal });
    options.onProgress?.({
      namespace,
      copied: end,
      total,
      ...(options.namespacesTotal === undefined
        ? {}
        : { namespacesDone: options.namespacesDone ?? 0, namespacesTotal: options.namespacesTotal }),
    });
  }
  return { namespaces: 1, changes: total };
}

/**
 * A {@link migrate} that failed after it had saved changes to the target:
 * a {@link PartialWriteError} over the namespaces (`targets:
 * "namespaces"`, indexes into {@link namespaces}) that also says how many
 * changes were saved. `written` holds the namespaces copied in full;
 * `failed` the one under way (the first {@link copied} of its changes were
 * saved) and those not begun, each with the error that stopped the copy
 * (also its `cause`). The target keeps what was saved; migrating again is
 * safe (a later save of a key wins).
 */
export class MigrateError extends PartialWriteError {
  /** The namespaces to copy, in the order they were copied. */
  readonly namespaces: readonly string[];
  /** Changes saved to the target in all (those of the namespace under way included). */
  readonly changes: number;
  /** The namespace under way when the copy stopped. */
  readonly namespace: string;
  /** Changes of {@link namespace} saved before it stopped (in whole saves of `batchSize`). */
  readonly copied: number;

  constructor(report: {
    namespaces: readonly string[];
    done: number;
    changes: number;
    copied: number;
    error: unknown;
  }) {
    const { namespaces, done, changes, copied, error } = report;
    const namespace = namespaces[done] as string;
    super(
      {
        operation: "migrate",
        targets: "namespaces",
        written: namespaces.slice(0, done).map((_, i) => i),
        failed: namespaces.slice(done).map((_, i) => ({ index: done + i, error })),
        cause: error,
      },
      `; ${changes} change(s) saved in all: ${done} of ${namespaces.length} namespace(s) in full, ${copied} change(s) of namespace ${JSON.stringify(namespace)}`,
    );
    this.name = "MigrateError";
    this.namespaces = namespaces;
    this.changes = changes;
    this.namespace = namespace;
    this.copied = copied;
  }
}

/** True for a {@link MigrateError}: a partial write of {@link migrate}, with the namespaces and changes it saved. */
export const isMigrateError = (e: unknown): e is MigrateError =>
  isPartialWriteError(e) &&
  e.operation === "migrate" &&
  Array.isArray((e as { namespaces?: unknown }).namespaces) &&
  typeof (e as { changes?: unknown }).changes === "number";

/**
 * Copies every namespace of `from` (which must be able to list them) to `to`.
 * @throws UnsupportedError when `from` cannot list namespaces
 * @throws MigrateError when it fails after saving changes to `to` (what it
 *   saved, and the error that stopped it as `cause`); a failure before the
 *   first save is thrown as it is (an abort then is an `AbortError`)
 */
export async function migrate(from: ReadonlyStore, to: Store, options: CopyOptions = {}): Promise<CopyResult> {
  if (!from.capabilities.listNamespaces || !from.listNamespaces) {
    throw new UnsupportedError(
      "migrate(): the source store cannot list its namespaces; copy them one by one with copyNamespace()",
    );
  }
  const namespaces = await from.listNamespaces({ signal: options.signal });
  let changes = 0;
  for (let i = 0; i < namespaces.length; i++) {
    let copied = 0;
    try {
      const result = await copyNamespace(from, to, namespaces[i] as string, {
        ...options,
        namespacesDone: i,
        namespacesTotal: namespaces.length,
        onProgress: (p) => {
          copied = p.copied;
          options.onProgress?.(p);
        },
      });
      changes += result.changes;
    } catch (error) {
      // Nothing saved yet: the failure as it is (an invalid option, an abort, a damaged first namespace).
      if (changes + copied === 0) throw error;
      throw new MigrateError({ namespaces, done: i, changes: changes + copied, copied, error });
    }
  }
  return { namespaces: namespaces.length, changes };
}

/**
 * `batchSize` checked: an integer >= 1 (1000 when not given).
 * @throws ConfigurationError (a NaN copied nothing and reported success)
 */
function checkBatchSize(batchSize: number | undefined): number {
  return new OptionChecker<{ batchSize?: number }>("copy", { batchSize }, { batchSize: 1000 }).integer("batchSize", {
    min: 1,
  });
}
