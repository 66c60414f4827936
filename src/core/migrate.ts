/**
 * Copying namespaces between stores: backups, restores, migrations.
 */
import type { Change } from "./change.js";
import { throwIfAborted, UnsupportedError } from "./errors.js";
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
 * Copies every namespace of `from` (which must be able to list them) to `to`.
 * @throws UnsupportedError when `from` cannot list namespaces
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
    const result = await copyNamespace(from, to, namespaces[i] as string, {
      ...options,
      namespacesDone: i,
      namespacesTotal: namespaces.length,
    });
    changes += result.changes;
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
