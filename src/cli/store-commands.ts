/**
 * The store commands of `statelog`: `namespaces`, `dump`, `tail`,
 * `copy`/`migrate`, `compact` and `stats`, on any store URL.
 */
import { mkdirSync, realpathSync, rmdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { FileStore } from "../file/index.js";
import {
  type Change,
  ConfigurationError,
  copyNamespace,
  ErrorCode,
  type FeedEvent,
  isCorruptionError,
  type Store,
  UnsupportedError,
  validateNamespace,
} from "../index.js";
import {
  type CommonFlags,
  changeJson,
  interruptible,
  namespacesOf,
  nonNegativeInt,
  openStore,
  positiveInt,
  RUN_WITH_SKIP,
  requireNamespaces,
  SKIP_DAMAGED,
  skipDamaged,
  withJson,
  withProgress,
} from "./command.js";
import {
  ExitCode,
  errorFields,
  failedWith,
  failureJson,
  formatError,
  interruptedError,
  toStatelogError,
  withCorruptionHint,
} from "./errors.js";
import { clip, printJson, printTable, startProgress } from "./output.js";
import { Backend, type OpenedTarget, parseTarget, type TargetSpec } from "./targets.js";

/** Runs a command's action; a damaged line's error then suggests `hint` rather than a library option. */
export function withHint<A extends unknown[]>(hint: string, action: (...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    try {
      await action(...args);
    } catch (error) {
      throw withCorruptionHint(error, hint);
    }
  };
}

interface NamespaceCount {
  namespace: string;
  live: number;
  deleted: number;
}

/** Live and deleted counts of each namespace; damaged namespaces are reported apart. */
async function countNamespaces(
  store: Store,
  namespaces: readonly string[],
): Promise<{ rows: NamespaceCount[]; damaged: { namespace: string; error: unknown }[] }> {
  const rows: NamespaceCount[] = [];
  const damaged: { namespace: string; error: unknown }[] = [];
  for (const namespace of namespaces) {
    try {
      const changes = await store.load(namespace);
      const live = changes.filter((c) => c.changeType === "set").length;
      rows.push({ namespace, live, deleted: changes.length - live });
    } catch (error) {
      if (!isCorruptionError(error)) throw error;
      damaged.push({ namespace, error: withCorruptionHint(error, RUN_WITH_SKIP) });
    }
  }
  return { rows, damaged };
}

/**
 * Reports the damaged namespaces on stderr (exit code 7). With `--json`
 * one JSON error line names them (each one's damage is in the listing).
 */
function reportDamaged(damaged: readonly { namespace: string; error: unknown }[], total: number, json: boolean): void {
  if (damaged.length > 0 && json) {
    const names = damaged.map((d) => JSON.stringify(d.namespace)).join(", ");
    console.error(
      failureJson(
        ErrorCode.Corruption,
        `${damaged.length} of ${total} namespace(s) are damaged: ${names} (each one's "damaged" in the listing says where; ${RUN_WITH_SKIP})`,
      ),
    );
    process.exitCode = ExitCode.Damaged;
    return;
  }
  for (const { namespace, error } of damaged) {
    console.error(`statelog: namespace ${JSON.stringify(namespace)} is damaged: ${formatError(error)}`);
  }
  if (damaged.length > 0) {
    console.error(`statelog: ${damaged.length} of ${total} namespace(s) are damaged`);
    process.exitCode = ExitCode.Damaged;
  }
}

export function addStoreCommands(program: Command): void {
  withJson(
    program
      .command("namespaces")
      .description("list the namespaces of a store with their live and deleted key counts")
      .argument(
        "<store>",
        "the store: a URL (file:./dir, nats://host/bucket, kafka://broker/topic, memory:) or a directory",
      )
      .option("--skip-damaged", SKIP_DAMAGED),
  ).action(async (url: string, opts: CommonFlags & { skipDamaged?: boolean }) => {
    await using target = await openStore(url, "namespaces", skipDamaged(opts.skipDamaged));
    const all = await namespacesOf(target.store);
    const { rows, damaged } = await countNamespaces(target.store, all);
    if (opts.json) {
      // A damaged namespace is listed too, in its place, with its damage instead of its counts.
      const byName = new Map<string, unknown>(rows.map((r) => [r.namespace, r]));
      for (const { namespace, error } of damaged) {
        const { code, message } = errorFields(error);
        byName.set(namespace, { namespace, damaged: { code, message } });
      }
      printJson(all.map((ns) => byName.get(ns)));
    } else
      printTable(
        ["namespace", "live", "deleted"],
        rows.map((r) => [r.namespace, r.live, r.deleted]),
      );
    reportDamaged(damaged, all.length, opts.json === true);
  });

  withProgress(
    withJson(
      program
        .command("dump")
        .description("print the current state of namespaces (all when none is named), one JSON change per line")
        .argument("<store>", "the store URL or directory")
        .argument("[namespaces...]", "the namespaces (default: all)")
        .option("--live", "leave out deleted entities (tombstones)")
        .option("--format <format>", "jsonl (one change per line, jq-friendly) or table", "jsonl")
        .option("--skip-damaged", SKIP_DAMAGED),
    ),
  ).action(
    withHint(
      RUN_WITH_SKIP,
      async (
        url: string,
        named: string[],
        opts: CommonFlags & { live?: boolean; skipDamaged?: boolean; format: string },
      ) => {
        if (opts.format !== "jsonl" && opts.format !== "table") {
          throw new ConfigurationError(`--format must be "jsonl" or "table", got ${JSON.stringify(opts.format)}`);
        }
        const run = interruptible();
        try {
          await using target = await openStore(url, "dump", skipDamaged(opts.skipDamaged));
          await requireNamespaces(target.store, named);
          // A namespace named twice is printed once (as copy copies it once), first-seen order.
          const namespaces = named.length > 0 ? [...new Set(named)] : await namespacesOf(target.store, run.signal);
          const progress = startProgress("dump", "changes", { quiet: opts.progress === false });
          const all: Change[] = [];
          let total = 0;
          let done = 0;
          for (const ns of namespaces) {
            const changes = await target.store.load(ns, { liveOnly: opts.live === true, signal: run.signal });
            total += changes.length;
            progress.total(total);
            if (opts.json || opts.format === "table") all.push(...changes);
            else {
              for (let i = 0; i < changes.length; i += 1000) {
                const slice = changes.slice(i, i + 1000).map((c) => JSON.stringify(changeJson(c)));
                process.stdout.write(`${slice.join("\n")}\n`);
                done += slice.length;
                progress.update(done);
              }
            }
          }
          if (opts.json) printJson(all.map(changeJson));
          else if (opts.format === "table") {
            const several = namespaces.length > 1;
            printTable(
              [...(several ? ["namespace"] : []), "entityType", "entityId", "change", "timestamp", "entity"],
              all.map((c) => [
                ...(several ? [c.namespace] : []),
                c.entityType,
                c.entityId,
                c.changeType,
                c.timestamp.toISOString(),
                c.changeType === "set" ? clip(JSON.stringify(c.entity)) : "",
              ]),
            );
          }
          progress.update(total);
          progress.stop();
        } finally {
          run.dispose();
        }
      },
    ),
  );

  withJson(
    program
      .command("tail")
      .description("print a namespace's current state and, with -f, every change after it as it happens")
      .argument("<store>", "the store URL or directory")
      .argument("<namespace>", "the namespace")
      .option("-f, --follow", "keep printing changes as they are saved (until Ctrl-C)")
      .option("--from <position>", "start after this position instead of the current state", nonNegativeInt),
  ).action(async (url: string, namespace: string, opts: CommonFlags & { follow?: boolean; from?: number }) => {
    validateNamespace(namespace);
    const run = interruptible();
    try {
      await using target = await openStore(url, "tail");
      const { store } = target;
      if (!store.capabilities.watch || typeof store.watch !== "function") {
        throw new UnsupportedError(
          `${target.spec.display}: this ${target.backend} store has no live change feed (watch) in this version of statelog`,
        );
      }
      const feed = store.watch(namespace, {
        signal: run.signal,
        ...(opts.from === undefined ? {} : { from: opts.from }),
      });
      for await (const event of feed) {
        printFeedEvent(event, opts.json === true, opts.follow === true);
        if (event.type === "caught-up" && !opts.follow) break;
      }
    } finally {
      run.dispose();
    }
  });

  withProgress(
    withJson(
      program
        .command("copy")
        .alias("migrate")
        .description("copy the current state of namespaces from one store to another, of any kind (backup, migration)")
        .argument("<from>", "the source store URL or directory")
        .argument(
          "<to>",
          "the target store URL or directory (a directory, bucket is created if missing; a directory it created is removed again if the copy fails)",
        )
        .option("-n, --namespace <name...>", "namespaces to copy (default: all)")
        .option("-b, --batch-size <n>", "changes per save on the target", positiveInt, 1000)
        .option("--skip-damaged", SKIP_DAMAGED),
    ),
  ).action(
    withHint(
      RUN_WITH_SKIP,
      async (
        fromUrl: string,
        toUrl: string,
        opts: CommonFlags & { namespace?: string[]; batchSize: number; skipDamaged?: boolean },
      ) => {
        const toSpec = parseTarget(toUrl);
        const run = interruptible();
        try {
          await using from = await openStore(fromUrl, "copy", skipDamaged(opts.skipDamaged));
          refuseSelfCopy(from, toSpec);
          if (toSpec.backend === Backend.File) refuseFileTarget(toSpec.path as string);
          // A namespace named twice is copied once.
          const named = opts.namespace && [...new Set(opts.namespace)];
          if (named) await requireNamespaces(from.store, named);
          const namespaces = named ?? (await namespacesOf(from.store, run.signal));
          let to: OpenedTarget | undefined;
          let created: MadeDirectory[] = [];
          /** What was copied: the namespaces copied in full and their changes; the namespace under way. */
          const done = { namespaces: 0, changes: 0 };
          let under: { namespace: string; copied: number } | undefined;
          try {
            let toTarget: TargetSpec = toSpec;
            if (toSpec.backend === Backend.File) {
              created = makeDirectory(toSpec.path as string);
              // Opened by its real path, the folder the walk made (`link/..` is the link's target's parent):
              // the store would fold `..` by text first and open another folder.
              toTarget = { ...toSpec, path: realPath(toSpec.path as string) };
            }
            to = await openStore(toTarget, "copy", { create: true });
            if (to.identity !== undefined && to.identity === from.identity) {
              throw new ConfigurationError(`cannot copy a store onto itself (${to.spec.display})`);
            }
            // No prototype: a namespace named "__proto__" is a key like any other.
            const perNamespace: Record<string, number> = Object.create(null);
            let total = 0;
            for (const ns of namespaces) {
              const progress = startProgress(`copy ${ns}`, "changes", { quiet: opts.progress === false });
              const current = { namespace: ns, copied: 0 };
              under = current;
              const result = await copyNamespace(from.store, to.store as Store, ns, {
                batchSize: opts.batchSize,
                signal: run.signal,
                onProgress: (p) => {
                  current.copied = p.copied;
                  progress.total(p.total);
                  progress.update(p.copied);
                },
              });
              progress.total(result.changes);
              progress.update(result.changes);
              progress.stop();
              perNamespace[ns] = result.changes;
              total += result.changes;
              done.changes = total;
              done.namespaces++;
              under = undefined;
            }
            if (opts.json) printJson({ namespaces: namespaces.length, changes: total, perNamespace });
            else console.log(`copied ${total} change(s) in ${namespaces.length} namespace(s)`);
          } catch (error) {
            await to?.close().catch(() => undefined);
            const removed = removeMade(created);
            if (under === undefined && done.namespaces === 0) throw error;
            // The copy had begun: say what it had copied, and what of it is on disk now.
            const copied = under?.copied ?? 0;
            const detail =
              `${done.changes + copied} change(s) copied in whole saves: ${done.namespaces} of ${namespaces.length} namespace(s) in full` +
              (under === undefined ? "" : `, ${copied} change(s) of namespace ${JSON.stringify(under.namespace)}`);
            const onDisk = removed
              ? `the target directory ${JSON.stringify(toSpec.path)}, which this copy created, was removed: nothing copied is kept; copying again is safe`
              : `the target keeps what was copied (${toSpec.display}); copying again is safe`;
            if (run.interrupted) throw interruptedError(error, detail, onDisk);
            throw failedWith(withCorruptionHint(error, RUN_WITH_SKIP), `the copy stopped after ${detail}; ${onDisk}`);
          } finally {
            await to?.close();
          }
        } finally {
          run.dispose();
        }
      },
    ),
  );

  withProgress(
    withJson(
      program
        .command("compact")
        .description("rewrite namespaces to their latest change per key (all namespaces when none is named)")
        .argument("<store>", "the store URL or directory")
        .argument("[namespaces...]", "namespaces to compact"),
    ),
  ).action(
    withHint(
      "compact does not rewrite a file with damaged lines; `statelog copy --skip-damaged` copies what can be read to another store",
      async (url: string, namespaces: string[], opts: CommonFlags) => {
        await using target = await openStore(url, "compact");
        const { store } = target;
        if (!store.capabilities.compact || typeof store.compact !== "function") {
          throw new UnsupportedError(
            target.backend === Backend.Kafka
              ? `${target.spec.display}: a Kafka store is compacted by the broker's log cleaner (cleanup.policy=compact), not by statelog`
              : `${target.spec.display}: this store cannot compact`,
          );
        }
        await requireNamespaces(store, namespaces);
        const todo = namespaces.length > 0 ? namespaces : await namespacesOf(store);
        const progress = startProgress("compact", "namespaces", {
          quiet: opts.json === true || opts.progress === false,
        });
        progress.total(todo.length);
        let done = 0;
        for (const ns of todo) {
          await store.compact(ns);
          progress.update(++done);
        }
        progress.stop();
        if (opts.json) printJson({ compacted: todo });
        else console.log(`compacted ${todo.length} namespace(s)`);
      },
    ),
  );
}

/** Prints one feed event: JSON lines with `--json`, else `@<position> <change> <type> <id> <entity>` (the barrier on stderr). */
function printFeedEvent(event: FeedEvent, json: boolean, follow: boolean): void {
  if (json) {
    if (event.type === "change") {
      printJson({ type: event.type, position: event.position, epoch: event.epoch, change: changeJson(event.change) });
    } else printJson({ type: event.type, position: event.position, epoch: event.epoch });
    return;
  }
  if (event.type === "caught-up") {
    console.error(`statelog: caught up at position ${event.position}${follow ? " (following: Ctrl-C to stop)" : ""}`);
    return;
  }
  const c = event.change;
  const entity = c.changeType === "set" ? ` ${JSON.stringify(c.entity)}` : "";
  process.stdout.write(`@${event.position} ${c.changeType} ${c.entityType} ${c.entityId}${entity}\n`);
}

/** A copy onto the source itself is refused before anything is opened or created (file targets: by real path). */
function refuseSelfCopy(from: OpenedTarget, to: TargetSpec): void {
  if (from.backend !== Backend.File || to.backend !== Backend.File || from.kind !== to.kind) return;
  const dir = to.path as string;
  let real: string | undefined;
  try {
    real = realpathSync.native(dir);
  } catch {
    return;
  }
  if ((from.store as FileStore).directory === real) {
    throw new ConfigurationError(`cannot copy a store onto itself (${JSON.stringify(dir)})`);
  }
}

/**
 * Refuses a copy's file target that is a file, before anything is created.
 * @throws ConfigurationError when it, or a folder on its path, is a file
 */
function refuseFileTarget(dir: string): void {
  let stats: ReturnType<typeof statSync> | undefined;
  try {
    stats = statSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    throw toStatelogError(error, `store directory ${JSON.stringify(dir)}`);
  }
  if (stats && !stats.isDirectory()) {
    throw new ConfigurationError(`cannot copy to ${JSON.stringify(dir)}: it is a file, not a directory`);
  }
}

/** A directory a copy made, with its identity (so that a directory someone put in its place is not removed). */
export interface MadeDirectory {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  /** Whether it is the target directory itself (else a folder on its path, which others may use meanwhile). */
  readonly target: boolean;
}

/**
 * Makes `dir` and each missing folder on its path, one component at a
 * time, and returns those it made. The path is walked as written, not
 * resolved: `new/..` names what the file system does (resolving it first
 * once named a directory that was there before as one to remove), and in
 * `a/../b` both `a` and `b` are made and returned.
 * @throws ConfigurationError (and the directories it made are removed again)
 */
export function makeDirectory(dir: string): MadeDirectory[] {
  const { root } = path.parse(dir);
  const made: MadeDirectory[] = [];
  let at = root;
  try {
    for (const part of dir.slice(root.length).split(/[\\/]+/)) {
      if (part === "") continue;
      at = at === "" || at.endsWith(path.sep) || at.endsWith("/") ? at + part : `${at}${path.sep}${part}`;
      try {
        mkdirSync(at);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw error;
      }
      const { dev, ino } = statSync(at);
      made.push({ path: at, dev, ino, target: false });
    }
    // The target is the one the whole path names (by identity: `out/.` is `out`, `new/..` none made).
    const target = statSync(dir);
    return made.map((m) => ({ ...m, target: m.dev === target.dev && m.ino === target.ino }));
  } catch (error) {
    removeMade(made);
    throw toStatelogError(error, `store directory ${JSON.stringify(dir)}`);
  }
}

/**
 * `dir` with `..` and symbolic links resolved as the file system does
 * (the native call: `realpathSync` folds `..` by text first, as
 * `path.resolve` does).
 */
function realPath(dir: string): string {
  try {
    return realpathSync.native(dir);
  } catch (error) {
    throw toStatelogError(error, `store directory ${JSON.stringify(dir)}`);
  }
}

/** Whether `made` is still the directory the copy made. */
function stillMade(made: MadeDirectory): boolean {
  const now = statSync(made.path, { throwIfNoEntry: false });
  return now?.isDirectory() === true && now.dev === made.dev && now.ino === made.ino;
}

/**
 * Removes the directories a failed copy made, innermost first; a directory
 * that was there before is never one. Only the target goes with what is in
 * it: a folder on its path goes only while empty, as another process may
 * have put its own data there meanwhile (another copy's target beside this
 * one). Returns whether the target directory was removed.
 */
export function removeMade(made: readonly MadeDirectory[]): boolean {
  let removedTarget = false;
  for (const m of [...made].reverse()) {
    try {
      if (!stillMade(m)) continue;
      if (m.target) {
        rmSync(m.path, { recursive: true, force: true });
        removedTarget = true;
      } else rmdirSync(m.path);
    } catch {
      // Best effort (a folder that is not empty stays): the error that stopped the copy is the one to report.
    }
  }
  return removedTarget;
}
