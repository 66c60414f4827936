/**
 * The inspector's options, their defaults and their checks: every invalid
 * option is a `ConfigurationError` naming `Inspector`, the option, what it
 * accepts and what it got.
 */
import { isIP } from "node:net";
import type { EventStore } from "../events/index.js";
import { type Change, ConfigurationError, OptionChecker, type Store } from "../index.js";
import type { ReadModelStore } from "../read-models/index.js";

/** One change of an entity's history, and its position where the backend keeps it. */
export interface InspectorHistoryEntry {
  readonly position: number;
  readonly change: Change;
}

/**
 * Reads the history of one entity from a store's backend, oldest first
 * (the CLI passes its reader, which knows where each backend keeps it).
 * Throws an `UnsupportedError` when the backend keeps none.
 */
export type InspectorHistoryReader = (
  namespace: string,
  entityType: string,
  entityId: string,
  signal: AbortSignal,
) => Promise<{ readonly entries: readonly InspectorHistoryEntry[]; readonly note?: string | undefined }>;

/** One thing the inspector shows: a store, an event store and/or a read-model store, under a name. */
export interface InspectorTarget {
  /** What the page calls it (the CLI passes the URL it opened): non-empty, unique among the targets. */
  readonly name: string;
  /** A store: namespaces, entities, history and the live feed. */
  readonly store?: Store | undefined;
  /** An event store: streams, their events and a timeline. */
  readonly eventStore?: EventStore | undefined;
  /** A read-model store: the status and lag of projections. */
  readonly readModels?: ReadModelStore | undefined;
  /**
   * How to read an entity's history from `store`.
   * @default the store's change feed from its first position (what the store still holds)
   */
  readonly history?: InspectorHistoryReader | undefined;
  /**
   * Projection names to show, for a read-model store that cannot list its
   * statuses (`listProjectionStatuses`); added to those it lists.
   * @default []
   */
  readonly projections?: readonly string[] | undefined;
}

/** Options of {@link Inspector.open}. */
export interface InspectorOptions {
  /** What the page shows (at least one). The inspector never closes them: their owner does. */
  targets: readonly InspectorTarget[];
  /**
   * The address the server listens on: `"127.0.0.1"`, `"::1"`, `"localhost"`
   * or another address of this machine (never a wildcard such as `0.0.0.0`:
   * the `Host` check needs the one name the page is reached by).
   * @default "127.0.0.1"
   */
  host?: string;
  /** The TCP port; `0` picks a free one (see `url`). @default 0 */
  port?: number;
  /** Allow write actions (`compact`): each still needs the token and a same-origin POST. @default false */
  allowWrites?: boolean;
  /**
   * The access token (at least 32 characters of `A-Z a-z 0-9 - _`).
   * @default 32 random bytes (crypto.randomBytes), base64url
   */
  token?: string;
  /** How often the status of each projection is sampled for the lag chart, in milliseconds. @default 1000 */
  lagSampleIntervalMs?: number;
}

/** Defaults of {@link InspectorOptions}. */
export const INSPECTOR_DEFAULTS = {
  /** @default "127.0.0.1" */
  host: "127.0.0.1",
  /** @default 0 (a free port) */
  port: 0,
  /** @default false */
  allowWrites: false,
  /** @default 1000 */
  lagSampleIntervalMs: 1000,
  /** Samples kept per projection for its lag chart. @default 300 */
  lagSamples: 300,
  /** Live feeds open at once (one per page watching a namespace). @default 32 */
  maxLiveFeeds: 32,
  /** Entities returned per page of a namespace. @default 200 */
  pageSize: 200,
  /** Events read per page of a stream. @default 500 */
  eventPageSize: 500,
} as const;

/** The checked options. */
export interface InspectorSettings {
  readonly targets: readonly InspectorTarget[];
  readonly host: string;
  readonly port: number;
  readonly allowWrites: boolean;
  readonly token: string | undefined;
  readonly lagSampleIntervalMs: number;
}

const OPTION_NAMES = ["targets", "host", "port", "allowWrites", "token", "lagSampleIntervalMs"];
const TARGET_KEYS = ["name", "store", "eventStore", "readModels", "projections", "history"];
const hasMethods = (v: unknown, names: readonly string[]): boolean =>
  typeof v === "object" && v !== null && names.every((n) => typeof (v as Record<string, unknown>)[n] === "function");

/** What is wrong with `targets`, or `undefined`. */
function checkTargets(value: unknown): string | undefined {
  const accepted = "a non-empty array of { name, store?, eventStore?, readModels?, projections?, history? }";
  if (!Array.isArray(value) || value.length === 0) return accepted;
  const names = new Set<string>();
  for (const [i, t] of value.entries()) {
    const at = `${accepted}; targets[${i}]`;
    if (typeof t !== "object" || t === null) return `${at} is not an object`;
    const unknown = Object.keys(t).find((k) => !TARGET_KEYS.includes(k) && t[k] !== undefined);
    if (unknown) return `${at} has no option ${unknown}`;
    if (typeof t.name !== "string" || t.name.length === 0) return `${at}.name must be a non-empty string`;
    if (names.has(t.name)) return `${at}.name ${JSON.stringify(t.name)} is used twice`;
    names.add(t.name);
    if (t.store === undefined && t.eventStore === undefined && t.readModels === undefined) {
      return `${at} needs a store, an eventStore or readModels`;
    }
    if (t.store !== undefined && !hasMethods(t.store, ["load", "save"])) return `${at}.store must be a Store`;
    if (t.eventStore !== undefined && !hasMethods(t.eventStore, ["getStreams", "read"])) {
      return `${at}.eventStore must be an EventStore`;
    }
    if (t.readModels !== undefined && !hasMethods(t.readModels, ["getProjectionStatus"])) {
      return `${at}.readModels must be a ReadModelStore`;
    }
    if (t.history !== undefined && (typeof t.history !== "function" || t.store === undefined)) {
      return `${at}.history must be a function, with a store`;
    }
    if (
      t.projections !== undefined &&
      !(Array.isArray(t.projections) && t.projections.every((p: unknown) => typeof p === "string" && p.length > 0))
    ) {
      return `${at}.projections must be an array of projection names`;
    }
    if (t.projections !== undefined && t.projections.length > 0 && t.readModels === undefined) {
      return `${at}.projections needs readModels`;
    }
  }
  return undefined;
}

/**
 * Whether `host` is a wildcard address, in any of its spellings (`::0`,
 * `0::`, `0000::`, `::ffff:0.0.0.0`, …): the page would be reachable under
 * names the `Host` check cannot know.
 */
export function isWildcardAddress(host: string): boolean {
  const bracketless = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(bracketless) === 4) return bracketless === "0.0.0.0";
  if (isIP(bracketless) !== 6) return false;
  // The URL parser writes an IPv6 address in its one canonical form; it takes no zone (`%lo`): left out.
  const bare = bracketless.split("%")[0] as string;
  let canonical: string;
  try {
    canonical = new URL(`http://[${bare}]`).hostname;
  } catch {
    return false;
  }
  // An IPv4-mapped address listens on the IPv4 address it maps: ::ffff:0.0.0.0 on every interface.
  return canonical === "[::]" || canonical === "[::ffff:0:0]";
}

/**
 * Checks the options of {@link Inspector.open}.
 * @throws ConfigurationError
 */
export function checkInspectorOptions(options: InspectorOptions): InspectorSettings {
  const check = new OptionChecker<InspectorOptions>("Inspector", options, INSPECTOR_DEFAULTS);
  check.known(OPTION_NAMES);
  if (options === undefined) throw new ConfigurationError("Inspector needs options with targets");
  const targets = check.custom<"targets", readonly InspectorTarget[]>("targets", checkTargets);
  const host = check.custom<"host", string>("host", (v) =>
    typeof v !== "string" || v.length === 0
      ? "an address of this machine"
      : isWildcardAddress(v)
        ? "one address of this machine, not a wildcard (the Host check needs the name the page is reached by)"
        : v !== "localhost" && isIP(v) === 0
          ? "an IP address or localhost"
          : undefined,
  );
  const port = check.integer("port", { min: 0, max: 65535 });
  const allowWrites = check.boolean("allowWrites");
  const token = check.custom<"token", string | undefined>("token", (v) =>
    v === undefined || (typeof v === "string" && /^[A-Za-z0-9_-]{32,}$/.test(v))
      ? undefined
      : "at least 32 characters of A-Z, a-z, 0-9, - and _",
  );
  const lagSampleIntervalMs = check.integer("lagSampleIntervalMs", { min: 10, max: 3_600_000 });
  return { targets: [...targets], host, port, allowWrites, token, lagSampleIntervalMs };
}
