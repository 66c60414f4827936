/**
 * The `statelog` command: inspect, compact, dump and copy file stores.
 *
 *   statelog namespaces <dir> [--skip-damaged]         namespaces with their key counts
 *   statelog dump <dir> <namespace> [--live] [--skip-damaged]
 *                                                      the current state as JSON lines
 *   statelog compact <dir> [namespace...]              rewrite to the latest change per key
 *   statelog copy <from> <to> [-n ns...] [--skip-damaged]
 *                                                      back up / migrate, with a progress bar
 *   statelog --version
 *
 * Every failure is a typed statelog error, printed on stderr as
 * `statelog: <message> [<code>]`, with exit code 1. Commands that only
 * read (`namespaces`, `dump`) never create a directory.
 */

import { existsSync, realpathSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { Command, InvalidArgumentError } from "commander";
import { FileStore, type FileStoreOptions, type SkippedLinesReport } from "../file/index.js";
import { ConfigurationError, copyNamespace, isCorruptionError, NotFoundError, validateNamespace } from "../index.js";
import { formatError, toStatelogError, withCorruptionHint } from "./errors.js";
import { packageVersion } from "./version.js";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** File store options of a command (the directory comes from its argument). */
type CommandStoreOptions = Omit<FileStoreOptions, "directory">;

/** The one place that opens a file store (it creates `dir` when missing). */
function openFileStore(dir: string, options: CommandStoreOptions): Promise<FileStore> {
  return FileStore.open({ ...options, directory: dir });
}

/** Store options of the command; `skipDamaged` leaves damaged lines out and reports them on stderr. */
function storeOptions(skipDamaged = false): CommandStoreOptions {
  return {
    autoCompact: false,
    ...(skipDamaged ? { onCorruption: "skip", onSkippedLines: reportSkipped } : {}),
  };
}

function reportSkipped(report: SkippedLinesReport): void {
  console.error(
    `statelog: skipped ${report.lines.length} damaged line(s) of namespace ${JSON.stringify(report.namespace)}: ` +
      `${report.file} line(s) ${report.lines.join(", ")}`,
  );
}

const describeDir = (dir: string): string => `store directory ${JSON.stringify(dir)}`;

/**
 * Checks that `dir` is an existing directory, without creating anything.
 * @throws NotFoundError when it does not exist; ConfigurationError when it is not a directory or cannot be read
 */
function requireDirectory(dir: string): void {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError("store directory", dir);
    throw toStatelogError(error, describeDir(dir));
  }
  if (!stats.isDirectory()) throw new ConfigurationError(`${describeDir(dir)} is not a directory`);
}

/** Opens the store in an existing directory. */
async function openExisting(dir: string, options: CommandStoreOptions): Promise<FileStore> {
  requireDirectory(dir);
  try {
    return await openFileStore(dir, options);
  } catch (error) {
    throw toStatelogError(error, describeDir(dir));
  }
}

/**
 * Checks the names, then that each namespace holds data in `store`.
 * @throws InvalidNameError | NotFoundError
 */
async function requireNamespaces(store: FileStore, namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces) validateNamespace(ns);
  const present = new Set(await store.listNamespaces());
  const missing = namespaces.find((ns) => !present.has(ns));
  if (missing !== undefined) throw new NotFoundError("namespace", missing);
}

/**
 * What opening `dir` as a copy's target would create: undefined when it
 * exists (as a directory), else its topmost missing folder.
 * @throws ConfigurationError when it, or a folder on its path, is a file
 */
function targetToCreate(dir: string): string | undefined {
  let stats: ReturnType<typeof statSync> | undefined;
  try {
    stats = statSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    throw toStatelogError(error, describeDir(dir));
  }
  if (stats?.isDirectory()) return undefined;
  if (stats) throw new ConfigurationError(`cannot copy to ${JSON.stringify(dir)}: it is a file, not a directory`);
  let missing = path.resolve(dir);
  for (;;) {
    const parent = path.dirname(missing);
    if (parent === missing || existsSync(parent)) return missing;
    missing = parent;
  }
}

/** Whether two existing paths are the same directory (after symlinks, `..`, and different spellings). */
function sameDirectory(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** A progress bar on stderr (drawn only on a terminal). */
function progressBar(label: string): SingleBar {
  return new SingleBar(
    { format: `${label} [{bar}] {value}/{total}`, hideCursor: true, stream: process.stderr },
    Presets.shades_classic,
  );
}

/** Runs a command's action; a damaged line's error then suggests `hint` rather than a library option. */
function withHint<A extends unknown[]>(hint: string, action: (...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    try {
      await action(...args);
    } catch (error) {
      throw withCorruptionHint(error, hint);
    }
  };
}

const SKIP_DAMAGED = "leave damaged lines out (each key falls back to its previous valid line) and list them on stderr";
const RUN_WITH_SKIP = "run again with --skip-damaged to leave damaged lines out and list them";

/** The package's version; a broken installation must not keep the other commands from running. */
function versionOrUnknown(): string {
  try {
    return packageVersion();
  } catch {
    return "unknown";
  }
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
    .version(versionOrUnknown(), "-V, --version", "print the version of statelog")
    .showHelpAfterError();

  program
    .command("namespaces")
    .description("list the namespaces of a file store with their live and deleted key counts")
    .argument("<dir>", "the store's directory")
    .option("--json", "print JSON instead of a table")
    .option("--skip-damaged", SKIP_DAMAGED)
    .action(async (dir: string, opts: { json?: boolean; skipDamaged?: boolean }) => {
      await using store = await openExisting(dir, storeOptions(opts.skipDamaged));
      const rows = [];
      const damaged: { namespace: string; error: unknown }[] = [];
      for (const namespace of (await store.listNamespaces()).sort()) {
        try {
          const changes = await store.load(namespace);
          const live = changes.filter((c) => c.changeType === "set").length;
          rows.push({ namespace, live, deleted: changes.length - live });
        } catch (error) {
          if (!isCorruptionError(error)) throw error;
          damaged.push({ namespace, error: withCorruptionHint(error, RUN_WITH_SKIP) });
        }
      }
      if (opts.json) {
        console.log(JSON.stringify(rows));
      } else {
        const width = Math.max(9, ...rows.map((r) => r.namespace.length));
        console.log(`${"namespace".padEnd(width)}  ${"live".padStart(8)}  ${"deleted".padStart(8)}`);
        for (const r of rows) {
          console.log(`${r.namespace.padEnd(width)}  ${String(r.live).padStart(8)}  ${String(r.deleted).padStart(8)}`);
        }
      }
      for (const { namespace, error } of damaged) {
        console.error(`statelog: namespace ${JSON.stringify(namespace)} is damaged: ${formatError(error)}`);
      }
      if (damaged.length > 0) {
        console.error(`statelog: ${damaged.length} of ${rows.length + damaged.length} namespace(s) are damaged`);
        process.exitCode = 1;
      }
    });

  program
    .command("dump")
    .description("print the current state of a namespace, one JSON change per line (jq-friendly)")
    .argument("<dir>", "the store's directory")
    .argument("<namespace>", "the namespace")
    .option("--live", "leave out deleted entities (tombstones)")
    .option("--skip-damaged", SKIP_DAMAGED)
    .action(
      withHint(
        RUN_WITH_SKIP,
        async (dir: string, namespace: string, opts: { live?: boolean; skipDamaged?: boolean }) => {
          await using store = await openExisting(dir, storeOptions(opts.skipDamaged));
          await requireNamespaces(store, [namespace]);
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
        },
      ),
    );

  program
    .command("compact")
    .description("rewrite namespaces to their latest change per key (all namespaces when none is named)")
    .argument("<dir>", "the store's directory")
    .argument("[namespaces...]", "namespaces to compact")
    .action(
      withHint(
        "compact does not rewrite a file with damaged lines; `statelog copy --skip-damaged` copies what can be read to another store",
        async (dir: string, namespaces: string[]) => {
          await using store = await openExisting(dir, storeOptions());
          await requireNamespaces(store, namespaces);
          const todo = namespaces.length > 0 ? namespaces : await store.listNamespaces();
          const bar = progressBar("compact");
          bar.start(todo.length, 0);
          for (const ns of todo) {
            await store.compact(ns);
            bar.increment();
          }
          bar.stop();
          console.log(`compacted ${todo.length} namespace(s)`);
        },
      ),
    );

  program
    .command("copy")
    .description("copy the current state of namespaces from one file store to another (backup, migration)")
    .argument("<from>", "the source store's directory")
    .argument("<to>", "the target store's directory (created if missing; removed again if the copy fails)")
    .option("-n, --namespace <name...>", "namespaces to copy (default: all)")
    .option("-b, --batch-size <n>", "changes per save on the target", positiveInt, 1000)
    .option("--skip-damaged", SKIP_DAMAGED)
    .action(
      withHint(
        RUN_WITH_SKIP,
        async (
          fromDir: string,
          toDir: string,
          opts: { namespace?: string[]; batchSize: number; skipDamaged?: boolean },
        ) => {
          requireDirectory(fromDir);
          if (sameDirectory(fromDir, toDir)) {
            throw new ConfigurationError(
              `cannot copy a store onto itself: ${JSON.stringify(fromDir)} and ${JSON.stringify(toDir)} are the same directory`,
            );
          }
          const created = targetToCreate(toDir);
          await using from = await openExisting(fromDir, storeOptions(opts.skipDamaged));
          if (opts.namespace) await requireNamespaces(from, opts.namespace);
          const namespaces = opts.namespace ?? (await from.listNamespaces());
          let to: FileStore | undefined;
          try {
            to = await openFileStore(toDir, storeOptions()).catch((error: unknown) => {
              throw toStatelogError(error, describeDir(toDir));
            });
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
          } catch (error) {
            await to?.close().catch(() => undefined);
            // Only what this command created: a directory that was there before is never removed.
            if (created !== undefined) await rm(created, { recursive: true, force: true });
            throw error;
          } finally {
            await to?.close();
          }
        },
      ),
    );

  return program;
}
