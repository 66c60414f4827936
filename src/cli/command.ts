/**
 * What every command of `statelog` shares: opening its targets by kind,
 * Ctrl-C, the `--json` and progress flags, the change format of the
 * output.
 */
import { type Command, InvalidArgumentError } from "commander";
import type { EventStore } from "../events/index.js";
import type { SkippedLinesReport } from "../file/index.js";
import {
  type Change,
  ConfigurationError,
  NotFoundError,
  type Store,
  UnsupportedError,
  validateNamespace,
} from "../index.js";
import type { ReadModelStore } from "../read-models/index.js";
import {
  type OpenedTarget,
  type OpenTargetOptions,
  openTarget,
  parseTarget,
  TargetKind,
  type TargetSpec,
} from "./targets.js";

/** Flags every command takes. */
export interface CommonFlags {
  /** Machine-readable output (and errors as JSON on stderr). */
  json?: boolean;
  /** `--no-progress`: no progress on stderr. */
  progress?: boolean;
}

/** Adds `--json` to a command. */
export function withJson(command: Command): Command {
  return command.option("--json", 'print JSON (errors too, on stderr, as {"error":{…}})');
}

/** Adds `--no-progress` to a command that shows progress. */
export function withProgress(command: Command): Command {
  return command.option("--no-progress", "show no progress on stderr");
}

const KIND_HINT: Record<TargetKind, string> = {
  store: "a store URL (file:./dir, nats://host:4222/bucket, kafka://broker:9092/topic, memory:)",
  events: "an event-store URL (file+events:./dir, nats+events://host:4222/stream, memory+events:)",
  "read-models": "a read-model store URL (file+models:./dir, nats+models://host:4222/bucket, memory+models:)",
};

/**
 * Opens `url`, which must name one of `kinds`.
 * @throws ConfigurationError when it names another kind of target
 */
export async function openKind(
  url: string | TargetSpec,
  kinds: readonly TargetKind[],
  command: string,
  options?: OpenTargetOptions,
): Promise<OpenedTarget> {
  const spec = typeof url === "string" ? parseTarget(url) : url;
  if (!kinds.includes(spec.kind)) {
    throw new ConfigurationError(
      `${command} needs ${kinds.map((k) => KIND_HINT[k]).join(" or ")}; ${JSON.stringify(spec.display)} names ${
        spec.kind === TargetKind.Store
          ? "a store"
          : spec.kind === TargetKind.Events
            ? "an event store"
            : "a read-model store"
      }`,
    );
  }
  return openTarget(spec, options);
}

/** Opens a store URL. */
export async function openStore(
  url: string | TargetSpec,
  command: string,
  options?: OpenTargetOptions,
): Promise<OpenedTarget & { store: Store }> {
  return (await openKind(url, [TargetKind.Store], command, options)) as OpenedTarget & { store: Store };
}

/** Opens an event-store URL. */
export async function openEvents(url: string, command: string): Promise<OpenedTarget & { eventStore: EventStore }> {
  return (await openKind(url, [TargetKind.Events], command)) as OpenedTarget & { eventStore: EventStore };
}

/** Opens a read-model store URL. */
export async function openReadModels(
  url: string,
  command: string,
): Promise<OpenedTarget & { readModels: ReadModelStore }> {
  return (await openKind(url, [TargetKind.ReadModels], command)) as OpenedTarget & { readModels: ReadModelStore };
}

/** The file store option of `--skip-damaged`: report skipped lines on stderr. */
export function skipDamaged(flag: boolean | undefined): OpenTargetOptions {
  return flag ? { onSkippedLines: reportSkipped } : {};
}

function reportSkipped(report: SkippedLinesReport): void {
  console.error(
    `statelog: skipped ${report.lines.length} damaged line(s) of namespace ${JSON.stringify(report.namespace)}: ` +
      `${report.file} line(s) ${report.lines.join(", ")}`,
  );
}

export const SKIP_DAMAGED =
  "file stores: leave damaged lines out (each key falls back to its previous valid line) and list them on stderr";
export const RUN_WITH_SKIP = "run again with --skip-damaged to leave damaged lines out and list them";

/** The namespaces of a store (sorted). @throws UnsupportedError when it cannot list them */
export async function namespacesOf(store: Store, signal?: AbortSignal): Promise<string[]> {
  if (!store.capabilities.listNamespaces || !store.listNamespaces) {
    throw new UnsupportedError("this store cannot list its namespaces: name them on the command line");
  }
  return (await store.listNamespaces({ signal })).sort();
}

/**
 * Checks the names, then that each namespace holds data in `store`.
 * @throws InvalidNameError | NotFoundError
 */
export async function requireNamespaces(store: Store, namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces) validateNamespace(ns);
  if (namespaces.length === 0 || !store.capabilities.listNamespaces || !store.listNamespaces) return;
  const present = new Set(await store.listNamespaces());
  const missing = namespaces.find((ns) => !present.has(ns));
  if (missing !== undefined) throw new NotFoundError("namespace", missing);
}

/** A change as the command prints it: the file store's line format (jq-friendly). */
export function changeJson(c: Change): Record<string, unknown> {
  return {
    namespace: c.namespace,
    changeType: c.changeType,
    entityType: c.entityType,
    entityID: c.entityId,
    ...(c.changeType === "set" ? { entity: c.entity } : {}),
    timestamp: c.timestamp.toISOString(),
  };
}

/**
 * An AbortSignal that Ctrl-C (SIGINT) and SIGTERM abort, for the duration
 * of a command; `interrupted` tells whether they did.
 */
export function interruptible(): { signal: AbortSignal; readonly interrupted: boolean; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    get interrupted() {
      return controller.signal.aborted;
    },
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** A non-negative integer argument or option. */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError("must be an integer >= 0");
  return n;
}

/** A positive integer argument or option. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}
