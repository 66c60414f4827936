/**
 * `statelog history`: every change of one key that its backend still
 * holds, oldest first. Where history lives differs per backend:
 *
 * - file: the namespace's log, every line of the key until a compaction
 *   rewrites it (read with the store's change feed from position 0);
 * - NATS KV: the revisions the bucket keeps per key (its `history` option);
 * - Kafka: the records of the key in its partition that the log cleaner
 *   has not compacted away yet;
 * - memory keeps the latest change only: an `UnsupportedError`.
 */
import type { Command } from "commander";
import {
  type Change,
  ChangeType,
  CorruptionError,
  NotFoundError,
  UnsupportedError,
  validateEntityId,
  validateEntityType,
  validateNamespace,
} from "../index.js";
import { loadNatsModules } from "../nats/client.js";
import { encodeToken } from "../nats/keys.js";
import { type CommonFlags, changeJson, interruptible, openStore, withJson } from "./command.js";
import { printJson } from "./output.js";
import { Backend, type OpenedTarget } from "./targets.js";

/** One change of a key's history, with where the backend keeps it. */
export interface HistoryEntry {
  /** File: byte offset after the line; NATS: the revision; Kafka: the offset. */
  readonly position: number;
  readonly change: Change;
}

/**
 * The history of one key (see the module's description).
 * @throws UnsupportedError when the backend keeps no history
 */
export async function keyHistory(
  target: OpenedTarget,
  namespace: string,
  entityType: string,
  entityId: string,
  signal?: AbortSignal,
): Promise<{ entries: HistoryEntry[]; note?: string }> {
  validateNamespace(namespace);
  validateEntityType(entityType);
  validateEntityId(entityId);
  switch (target.backend) {
    case Backend.File:
      return { entries: await fileHistory(target, namespace, entityType, entityId, signal) };
    case Backend.Nats:
      return natsHistory(target, namespace, entityType, entityId);
    case Backend.Kafka:
      return { entries: await kafkaHistory(target, namespace, entityType, entityId, signal) };
    default:
      throw new UnsupportedError(
        `${target.spec.display}: a ${target.backend} store keeps only the latest change of each key (no history)`,
      );
  }
}

async function fileHistory(
  target: OpenedTarget,
  namespace: string,
  entityType: string,
  entityId: string,
  signal: AbortSignal | undefined,
): Promise<HistoryEntry[]> {
  const store = target.store;
  if (!store?.watch) throw new UnsupportedError(`${target.spec.display}: this store has no change feed`);
  const entries: HistoryEntry[] = [];
  // From position 0 the file feed delivers every line of the file, then the barrier: in one read, under the
  // file's lock (read in pieces, a compaction between two would leave only the new file's latest lines).
  for await (const event of store.watch(namespace, { from: 0, signal, batchSize: Number.MAX_SAFE_INTEGER })) {
    if (event.type === "caught-up") break;
    const c = event.change;
    if (c.entityType === entityType && c.entityId === entityId) entries.push({ position: event.position, change: c });
  }
  return entries;
}

const TD = new TextDecoder();

async function natsHistory(
  target: OpenedTarget,
  namespace: string,
  entityType: string,
  entityId: string,
): Promise<{ entries: HistoryEntry[]; note?: string }> {
  const client = target.natsClient;
  const bucket = (target.store as { bucket?: string } | undefined)?.bucket;
  if (!client || bucket === undefined) throw new UnsupportedError(`${target.spec.display}: not a NATS KV store`);
  const nats = await loadNatsModules();
  const kv = await new nats.kv.Kvm(client).open(bucket);
  const key = `${encodeToken(namespace)}.${encodeToken(entityType)}.${encodeToken(entityId)}`;
  const entries: HistoryEntry[] = [];
  for await (const e of await kv.history({ key })) {
    const where = `NATS KV ${bucket} revision ${e.revision}`;
    const base = { namespace, entityType, entityId };
    if (e.operation !== "PUT") {
      entries.push({ position: e.revision, change: { ...base, changeType: ChangeType.Unset, timestamp: e.created } });
      continue;
    }
    let value: { changeType?: unknown; timestamp?: unknown; entity?: unknown };
    try {
      value = JSON.parse(TD.decode(e.value));
    } catch (error) {
      throw new CorruptionError(where, undefined, `key ${key} does not hold JSON`, { cause: error });
    }
    const timestamp = new Date(typeof value.timestamp === "string" ? value.timestamp : Number.NaN);
    if (Number.isNaN(timestamp.getTime()))
      throw new CorruptionError(where, undefined, `key ${key} has no valid timestamp`);
    entries.push({
      position: e.revision,
      change:
        value.changeType === ChangeType.Unset
          ? { ...base, changeType: ChangeType.Unset, timestamp }
          : { ...base, changeType: ChangeType.Set, entity: value.entity, timestamp },
    });
  }
  const kept = (await kv.status()).history;
  return {
    entries,
    ...(kept === 1
      ? { note: `bucket ${JSON.stringify(bucket)} keeps 1 revision per key (created with history=1)` }
      : {}),
  };
}

async function kafkaHistory(
  target: OpenedTarget,
  namespace: string,
  entityType: string,
  entityId: string,
  signal: AbortSignal | undefined,
): Promise<HistoryEntry[]> {
  const { ChangelogConsumer } = await import("../kafka/consumer.js");
  const { CHANGELOG_CONSUMER_CONFIG } = await import("../kafka/config.js");
  const { changeLogKey, partitionForNamespace } = await import("../kafka/index.js");
  const topic = (target.store as { topic?: string } | undefined)?.topic as string;
  const consumer = new ChangelogConsumer(
    (target.spec.servers ?? []).join(","),
    topic,
    "statelog-cli",
    CHANGELOG_CONSUMER_CONFIG,
    60_000,
  );
  try {
    const partitions =
      typeof target.spec.params.partitions === "number"
        ? target.spec.params.partitions
        : await consumer.partitionCount();
    const wanted = changeLogKey(namespace, entityType, entityId);
    const records: { offset: number; value: Buffer | null; timestamp: number | undefined }[] = [];
    await consumer.read(
      [partitionForNamespace(namespace, partitions)],
      (key, message) => {
        if (key === wanted)
          records.push({ offset: message.offset, value: message.value, timestamp: message.timestamp });
      },
      { signal },
    );
    const base = { namespace, entityType, entityId };
    const entries: HistoryEntry[] = records.map(({ offset, value, timestamp: ms }) => {
      const timestamp = new Date(ms ?? 0);
      if (value === null) return { position: offset, change: { ...base, changeType: ChangeType.Unset, timestamp } };
      let entity: unknown;
      try {
        entity = JSON.parse(value.toString("utf8"));
      } catch (error) {
        throw new CorruptionError(
          `Kafka topic ${topic} offset ${offset}`,
          undefined,
          `value of ${wanted} is not JSON`,
          {
            cause: error,
          },
        );
      }
      return { position: offset, change: { ...base, changeType: ChangeType.Set, entity, timestamp } };
    });
    return entries;
  } finally {
    await consumer.close();
  }
}

export function addHistoryCommand(program: Command): void {
  withJson(
    program
      .command("history")
      .description(
        "every change of one key its backend still holds, oldest first (file log, NATS KV history, Kafka before compaction)",
      )
      .argument("<store>", "the store URL or directory")
      .argument("<namespace>", "the namespace")
      .argument("<entityType>", "the key's entity type")
      .argument("<entityId>", "the key's entity id"),
  ).action(async (url: string, namespace: string, entityType: string, entityId: string, opts: CommonFlags) => {
    const run = interruptible();
    try {
      await using target = await openStore(url, "history");
      const { entries, note } = await keyHistory(target, namespace, entityType, entityId, run.signal);
      if (note !== undefined) console.error(`statelog: ${note}`);
      if (entries.length === 0) {
        throw new NotFoundError(`key of namespace ${JSON.stringify(namespace)}`, `${entityType}/${entityId}`);
      }
      if (opts.json) {
        printJson(entries.map((e) => ({ position: e.position, change: changeJson(e.change) })));
        return;
      }
      for (const { position, change: c } of entries) {
        const entity = c.changeType === "set" ? ` ${JSON.stringify(c.entity)}` : "";
        process.stdout.write(`@${position} ${c.timestamp.toISOString()} ${c.changeType}${entity}\n`);
      }
    } finally {
      run.dispose();
    }
  });
}
