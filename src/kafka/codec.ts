/**
 * The changelog's record format (docs/kafka.md, "Record format"):
 *  - key: `{namespace}/{entityType}/{entityId}` as UTF-8 (namespace and
 *    entity type never contain "/", the entity id may);
 *  - value: the entity as UTF-8 JSON; `null` (no value) is a tombstone;
 *  - record timestamp (CreateTime): when the change happened, ms since the epoch.
 */
import { ValidationError } from "../index.js";

/** An object that can be written to the changelog. */
export interface Changeloggable {
  /**
   * The object's changelog id: `{namespace}/{entityType}/{entityId}`. The
   * short form `/{entityType}/{entityId}` is accepted too: the writer puts
   * the namespace in front.
   */
  changeLogId(): string;
}

/** The parts of a changelog key. */
export interface ChangelogKeyParts {
  readonly namespace: string;
  readonly entityType: string;
  readonly entityId: string;
}

/** Builds `{namespace}/{entityType}/{entityId}`. */
export function changeLogKey(namespace: string, entityType: string, entityId: string): string {
  return `${namespace}/${entityType}/${entityId}`;
}

/**
 * Splits a changelog key at its first two "/" (the entity id keeps the
 * rest). A key with fewer than two "/" has only a namespace.
 */
export function parseChangeLogKey(key: string): ChangelogKeyParts {
  const a = key.indexOf("/");
  if (a < 0) return { namespace: key, entityType: "", entityId: "" };
  const b = key.indexOf("/", a + 1);
  if (b < 0) return { namespace: key.slice(0, a), entityType: key.slice(a + 1), entityId: "" };
  return { namespace: key.slice(0, a), entityType: key.slice(a + 1, b), entityId: key.slice(b + 1) };
}

/**
 * The full key of `changeLogId` in `namespace`: `/type/id` gets the
 * namespace in front; `namespace/type/id` is kept.
 * @throws ValidationError when the namespace is empty or contains "/", or
 *   the id names another namespace or has no entity type
 */
export function keyInNamespace(namespace: string, changeLogId: string): string {
  if (typeof namespace !== "string" || namespace === "" || namespace.includes("/")) {
    throw new ValidationError("namespace", `must be a non-empty string without "/", got ${JSON.stringify(namespace)}`);
  }
  if (typeof changeLogId !== "string") throw new ValidationError("changeLogId", "must be a string");
  const key = changeLogId.charCodeAt(0) === 47 /* / */ ? namespace + changeLogId : changeLogId;
  const n = namespace.length;
  if (key.charCodeAt(n) !== 47 || !key.startsWith(namespace)) {
    throw new ValidationError(
      "changeLogId",
      `${JSON.stringify(changeLogId)} does not belong to namespace ${JSON.stringify(namespace)} ` +
        "(expected `{namespace}/{entityType}/{entityId}` or `/{entityType}/{entityId}`)",
    );
  }
  const typeEnd = key.indexOf("/", n + 1);
  if (typeEnd < 0 || typeEnd === n + 1) {
    throw new ValidationError("changeLogId", `${JSON.stringify(changeLogId)} has no \`/{entityType}/{entityId}\` part`);
  }
  return key;
}

/**
 * A record timestamp for `date`: Kafka timestamps are non-negative ms, and
 * librdkafka treats 0 as "now", so dates at or before the epoch are refused.
 * @throws ValidationError
 */
export function recordTimestamp(date: Date, field = "timestamp"): number {
  const ms = date.getTime();
  if (!(ms > 0)) {
    throw new ValidationError(
      field,
      `Kafka record timestamps must be after 1970-01-01T00:00:00.000Z, got ${String(date)}`,
    );
  }
  return ms;
}
