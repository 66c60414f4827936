/**
 * `statelog stats`: sizes of a store (namespaces, live and deleted keys,
 * bytes where the backend tells) or of an event store (streams, events,
 * positions).
 */
import { statSync } from "node:fs";
import type { Command } from "commander";
import type { FileStore } from "../file/index.js";
import { UnsupportedError } from "../index.js";
import { loadNatsModules } from "../nats/client.js";
import {
  type CommonFlags,
  namespacesOf,
  openKind,
  RUN_WITH_SKIP,
  SKIP_DAMAGED,
  skipDamaged,
  withJson,
} from "./command.js";
import { printJson, printTable } from "./output.js";
import { withHint } from "./store-commands.js";
import { Backend, type OpenedTarget, TargetKind } from "./targets.js";

interface NamespaceStats {
  namespace: string;
  live: number;
  deleted: number;
  /** File stores: bytes of the namespace's file (history included, until compaction). */
  bytes?: number;
}

async function storeStats(target: OpenedTarget): Promise<Record<string, unknown>> {
  const store = target.store!;
  const rows: NamespaceStats[] = [];
  for (const namespace of await namespacesOf(store)) {
    const changes = await store.load(namespace);
    const live = changes.filter((c) => c.changeType === "set").length;
    const row: NamespaceStats = { namespace, live, deleted: changes.length - live };
    if (target.backend === Backend.File) {
      row.bytes = statSync((store as FileStore).fileOf(namespace), { throwIfNoEntry: false })?.size ?? 0;
    }
    rows.push(row);
  }
  const sum = (f: (r: NamespaceStats) => number) => rows.reduce((n, r) => n + f(r), 0);
  const out: Record<string, unknown> = {
    target: target.spec.display,
    backend: target.backend,
    namespaces: rows.length,
    live: sum((r) => r.live),
    deleted: sum((r) => r.deleted),
    ...(target.backend === Backend.File ? { bytes: sum((r) => r.bytes ?? 0) } : {}),
    perNamespace: rows,
  };
  if (target.backend === Backend.Nats && target.natsClient) {
    const stream = (store as { stream?: string }).stream as string;
    const nats = await loadNatsModules();
    const info = await (await nats.jetstream.jetstreamManager(target.natsClient)).streams.info(stream);
    // Revisions held (every kept revision of every key, markers included) and their bytes.
    out.messages = info.state.messages;
    out.bytes = info.state.bytes;
  }
  return out;
}

export function addStatsCommand(program: Command): void {
  withJson(
    program
      .command("stats")
      .description("sizes of a store (namespaces, live and deleted keys, bytes) or of an event store (streams, events)")
      .argument("<target>", "a store or event-store URL (or a store directory)")
      .option("--skip-damaged", SKIP_DAMAGED),
  ).action(
    withHint(RUN_WITH_SKIP, async (url: string, opts: CommonFlags & { skipDamaged?: boolean }) => {
      await using target = await openKind(
        url,
        [TargetKind.Store, TargetKind.Events, TargetKind.ReadModels],
        "stats",
        skipDamaged(opts.skipDamaged),
      );
      if (target.readModels) {
        throw new UnsupportedError(
          `${target.spec.display}: a read-model store keeps no counts to show; use \`statelog status <url> <projection>\``,
        );
      }
      if (target.eventStore) {
        const stats = target.eventStore.stats();
        const streams = (await target.eventStore.getStreams()).length;
        const out = {
          target: target.spec.display,
          backend: target.backend,
          streams,
          events: stats.totalEvents,
          globalPosition: stats.globalPosition,
          capabilities: target.eventStore.capabilities,
        };
        if (opts.json) printJson(out);
        else printTable(["streams", "events", "globalPosition"], [[streams, stats.totalEvents, stats.globalPosition]]);
        return;
      }
      const out = await storeStats(target);
      if (opts.json) {
        printJson(out);
        return;
      }
      const rows = out.perNamespace as NamespaceStats[];
      const file = target.backend === Backend.File;
      printTable(
        ["namespace", "live", "deleted", ...(file ? ["bytes"] : [])],
        [
          ...rows.map((r) => [r.namespace, r.live, r.deleted, ...(file ? [r.bytes ?? 0] : [])]),
          ["(total)", out.live as number, out.deleted as number, ...(file ? [out.bytes as number] : [])],
        ],
      );
      if (out.messages !== undefined) console.log(`bucket: ${out.messages} revision(s), ${out.bytes} byte(s)`);
    }),
  );
}
