/**
 * The changelog's record format (SEMANTICS.md, docs/kafka.md):
 *  - key: `{workspaceId}/{entityType}/{entityId}` as UTF-8 (workspace id and
 *    entity type never contain "/", the entity id may);
 *  - value: the entity as UTF-8 JSON; `null` (no value) is a tombstone;
 *  - record timestamp (CreateTime): when the change happened, ms since the epoch.
 */
import { ValidationError } from "../core/errors.js";

/** An object that can be written to the changelog. */
export interface Changeloggable {
  /**
   * The object's changelog id: `{workspaceId}/{entityType}/{entityId}`. The
   * seed's shorter form `/{entityType}/{entityId}` is accepted too: the
   * writer puts the workspace id in front.
   */
  changeLogId(): string;
}

/** The parts of a changelog key. */
export interface ChangelogKeyParts {
  readonly workspaceId: string;
  readonly entityType: string;
  readonly entityId: string;
}

/** Builds `{workspaceId}/{entityType}/{entityId}`. */
export function changeLogKey(workspaceId: string, entityType: string, entityId: string): string {
  return `${workspaceId}/${entityType}/${entityId}`;
}

/**
 * Splits a changelog key at its first two "/" (the entity id keeps the
 * rest). A key with fewer than two "/" has only a workspace id.
 */
export function parseChangeLogKey(key: string): ChangelogKeyParts {
  const a = key.indexOf("/");
  if (a < 0) return { workspaceId: key, entityType: "", entityId: "" };
  const b = key.indexOf("/", a + 1);
  if (b < 0) return { workspaceId: key.slice(0, a), entityType: key.slice(a + 1), entityId: "" };
  return { workspaceId: key.slice(0, a), entityType: key.slice(a + 1, b), entityId: key.slice(b + 1) };
}

/**
 * The full key of `changeLogId` in `workspaceId`: `/type/id` gets the
 * workspace id in front; `workspaceId/type/id` is kept.
 * @throws ValidationError when the id names another workspace or has no entity type
 */
export function keyInWorkspace(workspaceId: string, changeLogId: string): string {
  if (typeof workspaceId !== "string" || workspaceId === "" || workspaceId.includes("/")) {
    throw new ValidationError(
      "workspaceId",
      `must be a non-empty string without "/", got ${JSON.stringify(workspaceId)}`,
    );
  }
  if (typeof changeLogId !== "string") throw new ValidationError("changeLogId", "must be a string");
  const key = changeLogId.charCodeAt(0) === 47 /* / */ ? workspaceId + changeLogId : changeLogId;
  const w = workspaceId.length;
  if (key.charCodeAt(w) !== 47 || !key.startsWith(workspaceId)) {
    throw new ValidationError(
      "changeLogId",
      `${JSON.stringify(changeLogId)} does not belong to workspace ${JSON.stringify(workspaceId)} ` +
        "(expected `{workspaceId}/{entityType}/{entityId}` or `/{entityType}/{entityId}`)",
    );
  }
  const typeEnd = key.indexOf("/", w + 1);
  if (typeEnd < 0 || typeEnd === w + 1) {
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
