/**
 * Opening what a target URL names (`./target-url.ts`): a store, an event
 * store or a read-model store on the file, NATS, Kafka or memory backend.
 * {@link openTarget} is the one place the `statelog` command opens
 * anything; other tools (the web inspector) call it too.
 *
 * @example
 * await using target = await openTarget("nats://localhost:4222/statelog");
 * const namespaces = await target.store?.listNamespaces?.();
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { EventStore } from "../events/index.js";
import { numberIn, SEGMENT_PREFIX, SEGMENT_SUFFIX } from "../file/events/format.js";
import {
  FileEventStore,
  FileReadModelStore,
  FileStore,
  type FsyncOn,
  type SkippedLinesReport,
  type SyncPolicy,
} from "../file/index.js";
import { READ_MODEL_LOG } from "../file/read-models/store.js";
import {
  ConfigurationError,
  isStatelogError,
  messageOf,
  NotFoundError,
  OptionChecker,
  type Store,
  UnavailableError,
} from "../index.js";
import { MemoryEventStore, MemoryReadModelStore, MemoryStore } from "../memory/index.js";
import { loadNatsModules } from "../nats/client.js";
import { withNatsInternals } from "../nats/internal.js";
import type { ReadModelStore } from "../read-models/index.js";
import { toStatelogError } from "./errors.js";
import { Backend, parseTarget, type TargetKind, type TargetSpec, targetIdentity } from "./target-url.js";

export { Backend, parseTarget, TargetKind, type TargetSpec } from "./target-url.js";

/** Options of {@link openTarget}. */
export interface OpenTargetOptions {
  /**
   * Create what is missing (a file directory, a NATS bucket or stream):
   * for the target of a copy. Without it, a missing directory, bucket or
   * stream is a `NotFoundError` and nothing is created. (Kafka topics are
   * never created: create them with `ensureChangelogTopic` or Kafka's tools.)
   * @default false
   */
  create?: boolean;
  /**
   * File stores: leave damaged lines out (each key falls back to its
   * previous valid line) and report each namespace's skipped lines here.
   * @default damaged lines are a CorruptionError
   */
  onSkippedLines?: (report: SkippedLinesReport) => void;
  /** The client name a NATS connection announces. @default "statelog-cli" */
  natsName?: string;
  /** How long connecting to NATS may take, in ms. @default 5000 */
  connectTimeoutMs?: number;
}

/** Defaults of {@link OpenTargetOptions}. */
export const OPEN_TARGET_DEFAULTS = {
  /** @default false */
  create: false,
  /** @default "statelog-cli" */
  natsName: "statelog-cli",
  /** In ms. @default 5000 */
  connectTimeoutMs: 5000,
} as const;

interface CheckedOptions {
  readonly create: boolean;
  readonly onSkippedLines: ((report: SkippedLinesReport) => void) | undefined;
  readonly natsName: string;
  readonly connectTimeoutMs: number;
}

/** @throws ConfigurationError naming a bad or unknown option */
function checkOptions(options: OpenTargetOptions | undefined): CheckedOptions {
  const check = new OptionChecker("openTarget", options, OPEN_TARGET_DEFAULTS).known([
    "create",
    "onSkippedLines",
    "natsName",
    "connectTimeoutMs",
  ]);
  return {
    create: check.boolean("create"),
    onSkippedLines: check.optionalFunction("onSkippedLines") as CheckedOptions["onSkippedLines"],
    natsName: check.string("natsName"),
    connectTimeoutMs: check.integer("connectTimeoutMs", { min: 1 }),
  };
}

/** What {@link openTarget} opened. Close it (or `await using` it) when done. */
export interface OpenedTarget extends AsyncDisposable {
  readonly spec: TargetSpec;
  readonly backend: Backend;
  readonly kind: TargetKind;
  /** Set for a store URL (`file:`, `nats://`, `kafka://`, `memory:`). */
  readonly store?: Store;
  /** Set for an event-store URL (`…+events:`). */
  readonly eventStore?: EventStore;
  /** Set for a read-model store URL (`…+models:`). */
  readonly readModels?: ReadModelStore;
  /** The NATS connection the target opened (NATS targets only); closed by {@link close}. */
  readonly natsClient?: NatsConnection;
  /** A key naming the data behind the target: two targets with one identity are the same data. */
  readonly identity: string | undefined;
  /** Closes what was opened, then the connection. Idempotent. */
  close(): Promise<void>;
}

/** Named memory instances (`memory:<name>`), shared by every open in this process. */
const memoryInstances = new Map<string, Store | EventStore | ReadModelStore>();

/**
 * Opens what `target` names. A bad URL is a `ConfigurationError`; a
 * missing directory, bucket or stream a `NotFoundError` (unless
 * `options.create`); a missing NATS or Kafka client package a
 * `PeerMissingError`; a server that cannot be reached an `UnavailableError`.
 */
export async function openTarget(target: string | TargetSpec, options?: OpenTargetOptions): Promise<OpenedTarget> {
  const checked = checkOptions(options);
  const spec = typeof target === "string" ? parseTarget(target) : target;
  switch (spec.backend) {
    case Backend.File:
      return openFile(spec, checked);
    case Backend.Memory:
      return openMemory(spec);
    case Backend.Nats:
      return openNats(spec, checked);
    case Backend.Kafka:
      return openKafka(spec);
  }
}

type Opened = { store?: Store; eventStore?: EventStore; readModels?: ReadModelStore };

function opened(
  spec: TargetSpec,
  what: Opened,
  identity: string | undefined,
  release: () => Promise<void>,
  natsClient?: NatsConnection,
): OpenedTarget {
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= release();
    return closing;
  };
  return {
    spec,
    backend: spec.backend,
    kind: spec.kind,
    ...what,
    ...(natsClient === undefined ? {} : { natsClient }),
    identity,
    close,
    [Symbol.asyncDispose]: close,
  };
}

const FILE_WHAT: Record<TargetKind, string> = {
  store: "store directory",
  events: "event store directory",
  "read-models": "read-model store directory",
};

async function openFile(spec: TargetSpec, options: CheckedOptions): Promise<OpenedTarget> {
  const dir = spec.path as string;
  const what = `${FILE_WHAT[spec.kind]} ${JSON.stringify(dir)}`;
  requireDirectory(dir, FILE_WHAT[spec.kind], options.create);
  if (!options.create) requireStoreFiles(dir, spec.kind);
  const sync = spec.params.sync as SyncPolicy | undefined;
  const fsyncOn = spec.params.fsyncOn as FsyncOn | undefined;
  const common = { ...(sync === undefined ? {} : { sync }), ...(fsyncOn === undefined ? {} : { fsyncOn }) };
  try {
    if (spec.kind === "store") {
      const store = await FileStore.open({
        directory: dir,
        autoCompact: false,
        ...common,
        ...(options.onSkippedLines ? { onCorruption: "skip" as const, onSkippedLines: options.onSkippedLines } : {}),
      });
      return opened(spec, { store }, targetIdentity(spec, store.directory), () => store.close());
    }
    if (spec.kind === "events") {
      const segmentBytes = spec.params.segmentBytes as number | undefined;
      const eventStore = await FileEventStore.open({
        directory: dir,
        ...common,
        ...(segmentBytes === undefined ? {} : { segmentBytes }),
      });
      return opened(spec, { eventStore }, targetIdentity(spec, eventStore.directory), () => eventStore.close());
    }
    const readModels = await FileReadModelStore.open({ directory: dir, ...common });
    return opened(spec, { readModels }, targetIdentity(spec, path.resolve(dir)), () => readModels.close());
  } catch (error) {
    throw toStatelogError(error, what);
  }
}

/**
 * Checks that `dir` is a directory, or (with `create`) that it can be
 * created: without creating anything.
 * @throws NotFoundError | ConfigurationError
 */
export function requireDirectory(dir: string, kind: string, create = false): void {
  const what = `${kind} ${JSON.stringify(dir)}`;
  let stats: ReturnType<typeof statSync> | undefined;
  try {
    stats = statSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    throw toStatelogError(error, what);
  }
  if (stats === undefined) {
    if (create) return;
    throw new NotFoundError(kind, dir);
  }
  if (!stats.isDirectory()) throw new ConfigurationError(`${what} is not a directory`);
}

/**
 * Checks that an existing directory holds what a file event store
 * (a `segment-*.log` file, which its first open creates) or a file
 * read-model store (its log, `read-models.jsonl`) leaves: opening either
 * creates its files (a `LOCK`, a segment, the log) in any directory, which
 * a command that reads must not do (a mistyped path, a file store's
 * directory). A file store's directory needs nothing: its open creates no
 * file until a save.
 * @throws NotFoundError
 */
export function requireStoreFiles(dir: string, kind: TargetKind): void {
  if (kind === "store") return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw toStatelogError(error, `${FILE_WHAT[kind]} ${JSON.stringify(dir)}`);
  }
  const events = kind === "events";
  const holds = events
    ? names.some((n) => numberIn(n, SEGMENT_PREFIX, SEGMENT_SUFFIX) !== undefined)
    : names.includes(READ_MODEL_LOG);
  if (holds) return;
  const missing = new NotFoundError(events ? "event store" : "read-model store", dir);
  missing.message = `${events ? "event store" : "read-model store"} not found in directory ${JSON.stringify(dir)}: it holds no ${
    events ? `${SEGMENT_PREFIX}*${SEGMENT_SUFFIX} file` : `${READ_MODEL_LOG} file`
  } (a command that reads creates none)`;
  throw missing;
}

function openMemory(spec: TargetSpec): OpenedTarget {
  const name = spec.path ?? "";
  const key = `${spec.kind}:${name}`;
  let instance = name === "" ? undefined : memoryInstances.get(key);
  if (instance === undefined) {
    instance =
      spec.kind === "store"
        ? new MemoryStore()
        : spec.kind === "events"
          ? new MemoryEventStore()
          : new MemoryReadModelStore();
    if (name !== "") memoryInstances.set(key, instance);
  }
  const what: Opened =
    spec.kind === "store"
      ? { store: instance as Store }
      : spec.kind === "events"
        ? { eventStore: instance as EventStore }
        : { readModels: instance as ReadModelStore };
  // A named instance lives as long as the process: closing one target must not close it for the others.
  const release = name === "" ? () => (instance as { close(): Promise<void> }).close() : async () => undefined;
  return opened(spec, what, targetIdentity(spec), release);
}

async function openNats(spec: TargetSpec, options: CheckedOptions): Promise<OpenedTarget> {
  const nats = await loadNatsModules();
  const servers = [...(spec.servers ?? [])];
  let client: NatsConnection;
  try {
    client = await nats.transport.connect({
      servers,
      name: options.natsName,
      timeout: options.connectTimeoutMs,
      maxReconnectAttempts: 0,
      ...(spec.user === undefined ? {} : { user: spec.user, pass: spec.password }),
      ...(spec.token === undefined ? {} : { token: spec.token }),
    });
  } catch (error) {
    throw new UnavailableError(`cannot connect to NATS at ${servers.join(",")}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const closeClient = () => client.close().catch(() => undefined);
  try {
    const {
      NATS_EVENT_STORE_DEFAULTS,
      NATS_KV_STORE_DEFAULTS,
      NATS_READ_MODEL_STORE_DEFAULTS,
      NatsEventStore,
      NatsKvStore,
      NatsReadModelStore,
    } = await import("../nats/index.js");
    const defaults = {
      store: NATS_KV_STORE_DEFAULTS.bucket,
      events: NATS_EVENT_STORE_DEFAULTS.stream,
      "read-models": NATS_READ_MODEL_STORE_DEFAULTS.bucket,
    };
    const name = spec.name ?? defaults[spec.kind];
    if (!options.create) await requireStream(client, spec.kind === "events" ? name : `KV_${name}`, spec.kind, name);
    const params = spec.params as Record<string, never>;
    let what: Opened;
    let release: () => Promise<void>;
    // The command line and the inspector only read event stores and read-model stores: none of the compare-and-set
    // writes that a replicated stream on an older server cannot keep exclusive (the stores refuse them otherwise).
    const readOnly = { replicatedCasOnAnyServer: true };
    if (spec.kind === "store") {
      const store = await NatsKvStore.open({ ...params, client, bucket: name });
      what = { store };
      release = () => store.close();
    } else if (spec.kind === "events") {
      const eventStore = await NatsEventStore.open(withNatsInternals({ ...params, client, stream: name }, readOnly));
      what = { eventStore };
      release = () => eventStore.close();
    } else {
      const readModels = await NatsReadModelStore.open(
        withNatsInternals({ ...params, client, bucket: name }, readOnly),
      );
      what = { readModels };
      release = () => readModels.close();
    }
    const identity = targetIdentity({ ...spec, name });
    return opened(
      spec,
      what,
      identity,
      async () => {
        try {
          await release();
        } finally {
          await closeClient();
        }
      },
      client,
    );
  } catch (error) {
    await closeClient();
    throw error;
  }
}

const NATS_WHAT: Record<TargetKind, string> = {
  store: "NATS KV bucket",
  events: "JetStream stream",
  "read-models": "NATS KV bucket",
};

/** @throws NotFoundError when the stream behind a bucket or event store does not exist */
async function requireStream(client: NatsConnection, stream: string, kind: TargetKind, name: string): Promise<void> {
  const nats = await loadNatsModules();
  try {
    const jsm = await nats.jetstream.jetstreamManager(client);
    await jsm.streams.info(stream);
  } catch (error) {
    if (/not found/i.test(messageOf(error))) throw new NotFoundError(NATS_WHAT[kind], name);
    throw isStatelogError(error)
      ? error
      : new UnavailableError(`cannot read ${NATS_WHAT[kind]} ${JSON.stringify(name)}: ${messageOf(error)}`, {
          cause: error,
        });
  }
}

async function openKafka(spec: TargetSpec): Promise<OpenedTarget> {
  const { KafkaStore } = await import("../kafka/index.js");
  const store = await KafkaStore.open({
    ...(spec.params as Record<string, never>),
    brokers: [...(spec.servers ?? [])],
    ...(spec.name === undefined ? {} : { topic: spec.name }),
  });
  return opened(spec, { store }, targetIdentity({ ...spec, name: store.topic }), () => store.close());
}
