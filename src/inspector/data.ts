/**
 * What the inspector's page reads, as JSON-ready objects: the targets,
 * namespaces and their entities (with search), an entity's history, event
 * streams and their events, projection statuses. Every value that comes
 * from a store is user data: the page shows it as text, never as markup.
 */

import { type Change, ChangeType, isFeedBehindError, isUnsupportedError, messageOf, type Store } from "../index.js";
import type { ProjectionStatusRecord } from "../read-models/index.js";
import { INSPECTOR_DEFAULTS, type InspectorHistoryReader, type InspectorTarget } from "./options.js";

/** A change as the page receives it. */
export interface ChangeView {
  readonly entityType: string;
  readonly entityId: string;
  readonly changeType: ChangeType;
  readonly timestamp: string;
  readonly entity?: unknown;
  /** The change's position in the namespace's feed, when it came from one. */
  readonly position?: number | undefined;
}

/** A change for the page. */
export function changeView(change: Change, position?: number): ChangeView {
  return {
    entityType: change.entityType,
    entityId: change.entityId,
    changeType: change.changeType,
    timestamp: change.timestamp.toISOString(),
    ...(change.changeType === ChangeType.Set ? { entity: change.entity } : {}),
    ...(position === undefined ? {} : { position }),
  };
}

/** What the page learns about the targets when it loads. */
export function overview(targets: readonly InspectorTarget[], allowWrites: boolean) {
  return {
    allowWrites,
    pageSize: INSPECTOR_DEFAULTS.pageSize,
    targets: targets.map((t, index) => ({
      index,
      name: t.name,
      store: t.store
        ? {
            listNamespaces: t.store.capabilities.listNamespaces && typeof t.store.listNamespaces === "function",
            watch: t.store.capabilities.watch === true && typeof t.store.watch === "function",
            compact: allowWrites && t.store.capabilities.compact && typeof t.store.compact === "function",
            durable: t.store.capabilities.durable,
          }
        : undefined,
      eventStore: t.eventStore ? { name: t.eventStore.name } : undefined,
      readModels: t.readModels !== undefined,
    })),
  };
}

/** The namespaces of a store, sorted; `null` when it cannot list them. */
export async function namespaces(store: Store, signal: AbortSignal): Promise<string[] | null> {
  if (!store.capabilities.listNamespaces || typeof store.listNamespaces !== "function") return null;
  return (await store.listNamespaces({ signal })).sort();
}

/** A search over the entities of a namespace. */
export interface EntitySearch {
  /** Text to find (case-insensitive) in the entity type, id or JSON value. */
  readonly q: string;
  /** Only this entity type (`""`: all). */
  readonly type: string;
  /** Include tombstones (`unset` changes). */
  readonly deleted: boolean;
  readonly offset: number;
  readonly limit: number;
}

/** Code-unit order of two strings. */
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A page of the entities of `namespace` that match `search` (sorted by type, then id), with the entity types and their counts. */
export async function entities(store: Store, namespace: string, search: EntitySearch, signal: AbortSignal) {
  const all = await store.load(namespace, { signal });
  const types = new Map<string, number>();
  for (const c of all) if (c.changeType === ChangeType.Set) types.set(c.entityType, (types.get(c.entityType) ?? 0) + 1);
  const q = search.q.toLowerCase();
  // Pages slice a stable order, by entity type then id (code-unit order), not the store's order of
  // last change: an entity changed between two page requests neither repeats nor hides another.
  const matches = all.filter(
    (c) =>
      (search.deleted || c.changeType === ChangeType.Set) &&
      (search.type === "" || c.entityType === search.type) &&
      (q === "" ||
        c.entityType.toLowerCase().includes(q) ||
        c.entityId.toLowerCase().includes(q) ||
        (c.changeType === ChangeType.Set && JSON.stringify(c.entity).toLowerCase().includes(q))),
  );
  matches.sort((a, b) => compare(a.entityType, b.entityType) || compare(a.entityId, b.entityId));
  return {
    namespace,
    total: matches.length,
    offset: search.offset,
    items: matches.slice(search.offset, search.offset + search.limit).map((c) => changeView(c)),
    types: [...types].sort(([a], [b]) => compare(a, b)).map(([name, count]) => ({ name, count })),
  };
}

/** Most changes of one entity an answer carries (the latest ones). */
const MAX_HISTORY = 1000;

/**
 * The changes of one entity the store still holds, oldest first: read
 * from the namespace's change feed from its first position up to the
 * caught-up barrier. A store keeps superseded changes only until it
 * compacts them (a memory store never keeps them; a file store until
 * `compact`; a NATS bucket up to its `history`; a Kafka topic until log
 * compaction).
 */
export async function history(
  store: Store,
  namespace: string,
  entityType: string,
  entityId: string,
  signal: AbortSignal,
) {
  if (!store.capabilities.watch || typeof store.watch !== "function") {
    return { available: false, reason: "this store has no change feed, so its history cannot be read", changes: [] };
  }
  // The signal ends the read when the browser leaves (a long history is read up to the barrier otherwise). One
  // read of the whole log: read in pieces, a file compaction between two would leave only the new file's latest lines.
  const feed = store.watch(namespace, { from: 0, signal, batchSize: Number.MAX_SAFE_INTEGER });
  const changes: ChangeView[] = [];
  let truncated = false;
  try {
    for await (const event of feed) {
      if (event.type === "caught-up") break;
      const c = event.change;
      if (c.entityType !== entityType || c.entityId !== entityId) continue;
      changes.push(changeView(c, event.position));
      if (changes.length > MAX_HISTORY) {
        changes.shift();
        truncated = true;
      }
    }
  } catch (error) {
    if (!isFeedBehindError(error)) throw error;
    return {
      available: false,
      reason: `the store no longer holds this namespace from its start (${messageOf(error)})`,
      changes: [],
    };
  } finally {
    feed.close();
  }
  return { available: true, truncated, changes };
}

/** The history of one entity as `reader` finds it (see {@link InspectorTarget.history}). */
export async function historyFrom(
  reader: InspectorHistoryReader,
  namespace: string,
  entityType: string,
  entityId: string,
  signal: AbortSignal,
) {
  try {
    const { entries, note } = await reader(namespace, entityType, entityId, signal);
    return {
      available: true,
      truncated: entries.length > MAX_HISTORY,
      note,
      changes: entries.slice(-MAX_HISTORY).map((e) => changeView(e.change, e.position)),
    };
  } catch (error) {
    if (!isUnsupportedError(error)) throw error;
    return { available: false, reason: messageOf(error), changes: [] };
  }
}

/** The streams of an event store, with its counters. */
export async function streams(target: InspectorTarget) {
  const store = target.eventStore;
  if (!store) return undefined;
  const list = await store.getStreams();
  const stats = store.stats();
  return {
    name: store.name,
    totalEvents: stats.totalEvents,
    globalPosition: stats.globalPosition,
    // Stream infos and events are plain data: JSON carries their dates as ISO strings.
    streams: list,
  };
}

/** Up to `limit` events of a stream after position `after`. */
export async function events(target: InspectorTarget, streamId: string, after: number, limit: number) {
  const store = target.eventStore;
  if (!store) return undefined;
  const info = await store.getStreamInfo(streamId);
  const read = await store.read(streamId, after, Math.min(limit, INSPECTOR_DEFAULTS.eventPageSize));
  return {
    stream: info,
    events: read.events,
    next: read.cursor.position < info.lastPosition ? read.cursor.position : undefined,
  };
}

/** A projection status for the page. */
export function statusView(r: ProjectionStatusRecord, lagEvents: number | undefined) {
  return {
    name: r.name,
    status: r.status,
    checkpoint: r.checkpoint,
    updatedAt: r.updatedAt.toISOString(),
    lagEvents,
    lagMs: r.lagMs,
    lastError: r.lastError,
    failedPosition: r.failedPosition,
  };
}
