/**
 * Target URLs of the `statelog` command (docs/cli.md, "Naming a store"):
 * what a URL names, parsed without any I/O. {@link parseTarget} is the
 * one parser; `./targets.ts` opens what it describes.
 *
 *   file:./data  file:/abs/dir  file:///abs/dir  ./data       a file store directory
 *   nats://[user:pass@|token@]host:4222[,host2:4222]/bucket   a NATS KV store
 *   kafka://broker:9092[,broker2:9092]/topic                  a Kafka store
 *   memory:  memory:<name>                                    a store in process memory
 *
 * `+events` after the scheme names the backend's event store
 * (`file+events:./events`, `nats+events://host/STREAM`, `memory+events:`),
 * `+models` its read-model store (`file+models:./models`,
 * `nats+models://host/bucket`, `memory+models:`). Options go in the query
 * (`nats://host/bucket?history=10`); each kind of target accepts the
 * parameters listed in {@link TARGET_PARAMETERS}.
 */
import { ConfigurationError } from "../index.js";

/** The backends a URL can name. */
export const Backend = {
  File: "file",
  Nats: "nats",
  Kafka: "kafka",
  Memory: "memory",
} as const;
export type Backend = (typeof Backend)[keyof typeof Backend];

/** What a URL names on its backend. */
export const TargetKind = {
  /** A Store of compacted changelogs (the plain scheme). */
  Store: "store",
  /** An event store (`<scheme>+events:`). */
  Events: "events",
  /** A read-model store (`<scheme>+models:`). */
  ReadModels: "read-models",
} as const;
export type TargetKind = (typeof TargetKind)[keyof typeof TargetKind];

const KIND_SUFFIX: Record<string, TargetKind> = {
  "": TargetKind.Store,
  "+events": TargetKind.Events,
  "+models": TargetKind.ReadModels,
};

/** A query parameter: its type and what it means (for docs/cli.md and error messages). */
interface ParameterSpec {
  readonly type: "number" | "string";
  /** The option of the backend's `open` it sets (same name when absent). */
  readonly option?: string;
}

const num: ParameterSpec = { type: "number" };
const str: ParameterSpec = { type: "string" };

/** The query parameters each backend and kind accepts, by `<backend>:<kind>`. */
export const TARGET_PARAMETERS: Readonly<Record<string, Readonly<Record<string, ParameterSpec>>>> = {
  "file:store": { sync: str, fsyncOn: str },
  "file:events": { sync: str, fsyncOn: str, segmentBytes: num },
  "file:read-models": { sync: str, fsyncOn: str },
  "nats:store": { replicas: num, history: num, storage: str, maxInFlight: num },
  "nats:events": { replicas: num, storage: str, subjectPrefix: str },
  "nats:read-models": { replicas: num, storage: str },
  "kafka:store": { partitions: num, groupId: str, stallTimeoutMs: num },
  "memory:store": {},
  "memory:events": {},
  "memory:read-models": {},
};

/** A parsed target URL. */
export interface TargetSpec {
  /** The URL as given. */
  readonly url: string;
  readonly backend: Backend;
  readonly kind: TargetKind;
  /** file: the directory as written (relative to the working directory); memory: the instance name (`""`: a new instance). */
  readonly path?: string;
  /** nats: `host:port` of each server; kafka: each broker. */
  readonly servers?: readonly string[];
  /** nats: the bucket (stores, read models) or stream (events); kafka: the topic. `undefined`: the backend's default. */
  readonly name?: string;
  /** nats: credentials from the URL's user part. */
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** Options from the query, converted to their types. */
  readonly params: Readonly<Record<string, string | number>>;
  /** The URL without credentials: what messages show. */
  readonly display: string;
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;
const KNOWN = "file:, nats://, kafka:// or memory: (with +events or +models for an event or read-model store)";

function bad(url: string, reason: string): ConfigurationError {
  return new ConfigurationError(`invalid target ${JSON.stringify(redact(url))}: ${reason}`);
}

/**
 * `url` with a password or token replaced by `***`. The credentials end at
 * the authority's last `@`, as the parser reads them (a password may hold
 * `@`).
 */
function redact(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (scheme === undefined) return url;
  const slash = url.indexOf("/", scheme.length);
  const authority = url.slice(scheme.length, slash < 0 ? url.length : slash);
  const at = authority.lastIndexOf("@");
  if (at < 0) return url;
  const auth = authority.slice(0, at);
  const shown = auth.includes(":") ? `${auth.slice(0, auth.indexOf(":"))}:***` : "***";
  return `${scheme}${shown}${url.slice(scheme.length + at)}`;
}

/**
 * Parses a target URL (see the module's description). A string without a
 * scheme is a file store directory, as the command always took; so is a
 * one-letter "scheme" (a Windows drive).
 * @throws ConfigurationError naming the URL and what is wrong with it
 */
export function parseTarget(url: string): TargetSpec {
  if (typeof url !== "string" || url.trim() === "") throw bad(String(url), "it is empty");
  const match = SCHEME.exec(url);
  if (!match || (match[1] as string).length === 1) {
    return { url, backend: Backend.File, kind: TargetKind.Store, path: url, params: {}, display: url };
  }
  const scheme = (match[1] as string).toLowerCase();
  const plus = scheme.indexOf("+");
  const base = plus < 0 ? scheme : scheme.slice(0, plus);
  const kind = KIND_SUFFIX[plus < 0 ? "" : scheme.slice(plus)];
  if (!(Object.values(Backend) as string[]).includes(base) || kind === undefined) {
    throw bad(
      url,
      `unknown scheme "${scheme}:"; use ${KNOWN}. A directory whose name holds a colon is written file:<path> or ./<path>`,
    );
  }
  const backend = base as Backend;
  const allowed = TARGET_PARAMETERS[`${backend}:${kind}`];
  if (allowed === undefined) {
    throw bad(url, `${backend} has no ${kind === TargetKind.Events ? "event" : "read-model"} store`);
  }
  let rest = url.slice(match[0].length);
  const q = rest.indexOf("?");
  const query = q < 0 ? "" : rest.slice(q + 1);
  if (q >= 0) rest = rest.slice(0, q);
  const params = parseParams(url, query, allowed, `${scheme}:`);
  const display = redact(url);
  switch (backend) {
    case Backend.File:
      return { url, backend, kind, path: filePath(url, rest), params, display };
    case Backend.Memory:
      if (rest.startsWith("//")) throw bad(url, "write memory: or memory:<name>, without //");
      if (rest !== "" && !/^[A-Za-z0-9_.-]+$/.test(rest)) {
        throw bad(url, "a memory instance name may hold letters, digits, _, . and - only");
      }
      return { url, backend, kind, path: rest, params, display };
    default:
      return { url, backend, kind, ...network(url, backend, rest), params, display };
  }
}

function filePath(url: string, rest: string): string {
  let path = rest;
  if (path.startsWith("//")) {
    const slash = path.indexOf("/", 2);
    const host = slash < 0 ? path.slice(2) : path.slice(2, slash);
    if (host !== "" && host !== "localhost") {
      throw bad(url, `a file target is local: file:///abs/dir or file:relative/dir, not a host ("${host}")`);
    }
    path = slash < 0 ? "" : path.slice(slash);
  }
  try {
    path = decodeURIComponent(path);
  } catch {
    throw bad(url, "bad %-escape in the path");
  }
  if (path === "") throw bad(url, "no directory: write file:./dir or file:///abs/dir");
  return path;
}

function network(
  url: string,
  backend: Backend,
  rest: string,
): Pick<TargetSpec, "servers" | "name" | "user" | "password" | "token"> {
  const example = backend === Backend.Nats ? "nats://host:4222/bucket" : "kafka://broker:9092/topic";
  if (!rest.startsWith("//")) throw bad(url, `write ${example}`);
  const slash = rest.indexOf("/", 2);
  let authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
  const path = slash < 0 ? "" : rest.slice(slash + 1);
  const out: { servers?: string[]; name?: string; user?: string; password?: string; token?: string } = {};
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    if (backend !== Backend.Nats) throw bad(url, "credentials in a kafka:// URL are not supported");
    const auth = decode(url, authority.slice(0, at));
    authority = authority.slice(at + 1);
    const colon = auth.indexOf(":");
    if (colon < 0) out.token = auth;
    else {
      out.user = auth.slice(0, colon);
      out.password = auth.slice(colon + 1);
    }
  }
  const servers = authority.split(",").map((s) => s.trim());
  for (const server of servers) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/.test(server)) {
      throw bad(url, `${server === "" ? "no host" : `"${server}" is not host or host:port`}; write ${example}`);
    }
  }
  out.servers = servers;
  const name = decode(url, path.replace(/\/$/, ""));
  if (name.includes("/"))
    throw bad(url, `one ${backend === Backend.Nats ? "bucket or stream" : "topic"} name after the host`);
  if (name !== "") out.name = name;
  return out;
}

function decode(url: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw bad(url, "bad %-escape");
  }
}

function parseParams(
  url: string,
  query: string,
  allowed: Readonly<Record<string, ParameterSpec>>,
  scheme: string,
): Record<string, string | number> {
  const params: Record<string, string | number> = {};
  if (query === "") return params;
  const seen = new Set<string>();
  for (const [key, value] of new URLSearchParams(query)) {
    // Own names only: `toString` or `constructor` is an unknown parameter, not one inherited from Object.
    const spec = Object.hasOwn(allowed, key) ? allowed[key] : undefined;
    if (spec === undefined) {
      const names = Object.keys(allowed);
      throw bad(
        url,
        `unknown parameter "${key}"; ${scheme} accepts ${names.length === 0 ? "none" : names.map((n) => `"${n}"`).join(", ")}`,
      );
    }
    if (seen.has(key)) throw bad(url, `parameter "${key}" is given twice`);
    seen.add(key);
    if (spec.type === "number") {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n))
        throw bad(url, `parameter "${key}" must be a number, got "${value}"`);
      params[spec.option ?? key] = n;
    } else {
      params[spec.option ?? key] = value;
    }
  }
  return params;
}

/**
 * A key naming the data behind a target, to tell whether two targets are
 * the same (a copy onto itself): the backend, kind, servers and name
 * (file targets compare their real directories, see `./targets.ts`).
 * `undefined` for a new memory instance, which is never another target.
 */
export function targetIdentity(spec: TargetSpec, resolvedPath?: string): string | undefined {
  switch (spec.backend) {
    case Backend.File:
      return `file:${spec.kind}:${resolvedPath ?? spec.path}`;
    case Backend.Memory:
      return spec.path === "" ? undefined : `memory:${spec.kind}:${spec.path}`;
    default:
      return `${spec.backend}:${spec.kind}:${[...(spec.servers ?? [])].sort().join(",")}/${spec.name ?? ""}`;
  }
}
