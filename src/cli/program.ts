/**
 * The `statelog` command: inspect, compact, dump and copy file stores.
 *
 *   statelog namespaces <dir>                 namespaces with their key counts
 *   statelog dump <dir> <namespace> [--live]  the current state as JSON lines
 *   statelog compact <dir> [namespace...]     rewrite to the latest change per key
 *   statelog copy <from> <to> [-n ns...]      back up / migrate, with a progress bar
 */

import { existsSync } from "node:fs";
import { Presets, SingleBar } from "cli-progress";
import { Command, InvalidArgumentError } from "commander";
import { copyNamespace } from "../core/migrate.js";
import { FileStore } from "../file/index.js";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** Opens a file store; `create: false` refuses a directory that does not exist. */
function openStore(dir: string, create = false): Promise<FileStore> {
  if (!create && !existsSync(dir)) throw new InvalidArgumentError(`no store at ${dir}: the directory does not exist`);
  return FileStore.open({ directory: dir, autoCompact: false });
}

/** A progress bar on stderr (drawn only on a terminal). */
function progressBar(label: string): SingleBar {
  return new SingleBar(
    { format: `${label} [{bar}] {value}/{total}`, hideCursor: true, stream: process.stderr },
    Presets.shades_classic,
  );
}

export function buildProgram(): Command {
  // `statelog dump … | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
  const program = new Command()
    .name("statelog")
    .description("Inspect, compact, dump and copy statelog file stores.")
    .showHelpAfterError();

  program
    .command("namespaces")
    .description("list the namespaces of a file store with their live and deleted key counts")
    .argument("<dir>", "the store's directory")
    .option("--json", "print JSON instead of a table")
    .action(async (dir: string, opts: { json?: boolean }) => {
      await using store = await openStore(dir);
      const rows = [];
      for (const namespace of (await store.listNamespaces()).sort()) {
        const changes = await store.load(namespace);
        const live = changes.filter((c) => c.changeType === "set").length;
        rows.push({ namespace, live, deleted: changes.length - live });
      }
      if (opts.json) {
        console.log(JSON.stringify(rows));
        return;
      }
      const width = Math.max(9, ...rows.map((r) => r.namespace.length));
      console.log(`${"namespace".padEnd(width)}  ${"live".padStart(8)}  ${"deleted".padStart(8)}`);
      for (const r of rows) {
        console.log(`${r.namespace.padEnd(width)}  ${String(r.live).padStart(8)}  ${String(r.deleted).padStart(8)}`);
      }
    });

  program
    .command("dump")
    .description("print the current state of a namespace, one JSON change per line (jq-friendly)")
    .argument("<dir>", "the store's directory")
    .argument("<namespace>", "the namespace")
    .option("--live", "leave out deleted entities (tombstones)")
    .action(async (dir: string, namespace: string, opts: { live?: boolean }) => {
      await using store = await openStore(dir);
      const lines = (await store.load(namespace, { liveOnly: opts.live === true })).map((c) =>
        JSON.stringify({
          namespace: c.namespace,
          changeType: c.changeType,
          entityType: c.entityType,
          entityID: c.entityId,
          ...(c.changeType === "set" ? { entity: c.entity } : {}),
          timestamp: c.timestamp.toISOString(),
        }),
      );
      if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`);
    });

  program
    .command("compact")
    .description("rewrite namespaces to their latest change per key (all namespaces when none is named)")
    .argument("<dir>", "the store's directory")
    .argument("[namespaces...]", "namespaces to compact")
    .action(async (dir: string, namespaces: string[]) => {
      await using store = await openStore(dir);
      const todo = namespaces.length > 0 ? namespaces : await store.listNamespaces();
      const bar = progressBar("compact");
      bar.start(todo.length, 0);
      for (const ns of todo) {
        await store.compact(ns);
        bar.increment();
      }
      bar.stop();
      console.log(`compacted ${todo.length} namespace(s)`);
    });

  program
    .command("copy")
    .description("copy the current state of namespaces from one file store to another (backup, migration)")
    .argument("<from>", "the source store's directory")
    .argument("<to>", "the target store's directory (created if missing)")
    .option("-n, --namespace <name...>", "namespaces to copy (default: all)")
    .option("-b, --batch-size <n>", "changes per save on the target", positiveInt, 1000)
    .action(async (fromDir: string, toDir: string, opts: { namespace?: string[]; batchSize: number }) => {
      await using from = await openStore(fromDir);
      await using to = await openStore(toDir, true);
      const namespaces = opts.namespace ?? (await from.listNamespaces());
      let total = 0;
      for (const ns of namespaces) {
        const bar = progressBar(`copy ${ns}`);
        bar.start(1, 0);
        const result = await copyNamespace(from, to, ns, {
          batchSize: opts.batchSize,
          onProgress: (p) => {
            bar.setTotal(p.total);
            bar.update(p.copied);
          },
        });
        bar.setTotal(Math.max(1, result.changes));
        bar.update(Math.max(1, result.changes));
        bar.stop();
        if (!process.stderr.isTTY) console.log(`${ns}: ${result.changes} change(s)`);
        total += result.changes;
      }
      console.log(`copied ${total} change(s) in ${namespaces.length} namespace(s)`);
    });

  return program;
}
