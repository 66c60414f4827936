/**
 * `Inspector`: a local, read-only (by default) web page over opened
 * stores: namespaces and entities with search, an entity's history, event
 * streams with their events and a timeline, projections with their status
 * and lag, and the live feed of a namespace (docs/inspector.md).
 *
 * Built on `node:http` alone; the page is a few static files. Every
 * request passes the guards of `security.ts` first: the `Host` check,
 * then the token; a write also needs a same-origin JSON POST and
 * `allowWrites`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  ConfigurationError,
  ErrorCode,
  isStatelogError,
  messageOf,
  type Store,
  UnavailableError,
  ValidationError,
  validateEntityId,
  validateEntityType,
  validateNamespace,
} from "../index.js";
import { type Asset, loadAssets } from "./assets.js";
import { entities, events, history, historyFrom, namespaces, overview, streams } from "./data.js";
import { LiveFeeds } from "./live.js";
import {
  checkInspectorOptions,
  INSPECTOR_DEFAULTS,
  type InspectorOptions,
  type InspectorSettings,
  isWildcardAddress,
} from "./options.js";
import { ProjectionSampler } from "./projections.js";
import { Guard, newToken, SECURITY_HEADERS, tokenCookie, urlHost } from "./security.js";

/** Largest body of a write request, in bytes. */
const MAX_BODY_BYTES = 4096;

/** A refusal with its HTTP status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status of an error thrown while answering. */
function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (!isStatelogError(error)) return 500;
  switch (error.code) {
    case ErrorCode.InvalidName:
    case ErrorCode.Validation:
      return 400;
    case ErrorCode.NotFound:
      return 404;
    case ErrorCode.Unsupported:
      return 501;
    default:
      return 500;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value));
}

/** The page a request without the token gets (plain text: nothing from the request is echoed). */
const TOKEN_REQUIRED =
  "statelog inspector: this page needs its access token.\n" +
  "Open the URL that `statelog ui` printed: it ends in ?token=…\n";

/** A local web page over opened stores. Open it with {@link Inspector.open}. */
export class Inspector implements AsyncDisposable {
  /**
   * The page's address, with its access token: `http://127.0.0.1:<port>/?token=…`. Its host is the
   * address the server is bound to (`localhost` is printed as the one address it resolved to).
   */
  readonly url: string;
  /** The access token. */
  readonly token: string;
  /** The TCP port the server listens on. */
  readonly port: number;
  readonly #settings: InspectorSettings;
  readonly #server: Server;
  readonly #assets: ReadonlyMap<string, Asset>;
  readonly #guard: Guard;
  readonly #live = new LiveFeeds(INSPECTOR_DEFAULTS.maxLiveFeeds);
  readonly #sampler: ProjectionSampler;
  #closing: Promise<void> | undefined;

  private constructor(settings: InspectorSettings, server: Server, assets: ReadonlyMap<string, Asset>) {
    this.#settings = settings;
    this.#server = server;
    this.#assets = assets;
    this.port = (server.address() as AddressInfo).port;
    this.token = settings.token ?? newToken();
    // The address actually bound, not the name given: `localhost` binds one loopback family only, and a
    // browser may try the other first, where another local program could listen on the same port. An IPv6
    // address is written in the canonical form the browser sends back in `Host`.
    const bound = (server.address() as AddressInfo).address;
    this.#guard = new Guard(this.token, [settings.host, bound], this.port);
    this.url = `http://${urlHost(bound)}:${this.port}/?token=${this.token}`;
    this.#sampler = new ProjectionSampler(settings.targets, settings.lagSampleIntervalMs);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendJson(res, statusOf(error), { error: errorView(error) });
        else res.end();
      });
    });
  }

  /**
   * Starts the server and resolves once it listens. The inspector reads
   * the targets' stores but never closes them: their owner does, after
   * closing the inspector.
   * @throws ConfigurationError for invalid options
   * @throws UnavailableError when the server cannot listen (port in use…)
   */
  static async open(options: InspectorOptions): Promise<Inspector> {
    const settings = checkInspectorOptions(options);
    const assets = await loadAssets();
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(settings.port, settings.host, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((error: unknown) => {
      throw new UnavailableError(`the inspector cannot listen on ${settings.host}:${settings.port}`, {
        cause: error,
      });
    });
    // A backstop to the check of the options: never serve on every interface, however the address was spelled.
    const bound = (server.address() as AddressInfo | null)?.address ?? "";
    if (isWildcardAddress(bound)) {
      await new Promise((resolve) => server.close(resolve));
      throw new ConfigurationError(`Inspector option host ${JSON.stringify(settings.host)} listens on every interface`);
    }
    return new Inspector(settings, server, assets);
  }

  /** Stops the server: ends the live feeds and open connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#sampler.stop();
      this.#live.closeAll();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#guard.hostAllowed(req)) {
      return send(res, 403, "text/plain; charset=utf-8", "statelog inspector: Host not allowed\n");
    }
    const url = new URL(req.url ?? "/", "http://inspector.invalid");
    if (req.method !== "GET" && req.method !== "POST") {
      // OPTIONS (a CORS preflight) included: refused, and no CORS header is ever sent.
      return send(res, 405, "text/plain; charset=utf-8", "statelog inspector: method not allowed\n", {
        Allow: "GET, POST",
      });
    }
    if (req.method === "GET" && url.pathname === "/" && url.searchParams.has("token")) {
      if (!this.#guard.isToken(url.searchParams.get("token"))) {
        return send(res, 401, "text/plain; charset=utf-8", TOKEN_REQUIRED);
      }
      // Keep the token in a cookie and drop it from the address bar (and the history).
      return send(res, 303, "text/plain; charset=utf-8", "", {
        Location: "/",
        "Set-Cookie": tokenCookie(this.port, this.token),
      });
    }
    if (!this.#guard.authorized(req)) {
      if (url.pathname.startsWith("/api/")) {
        return sendJson(res, 401, { error: { code: "UNAUTHORIZED", message: "the access token is required" } });
      }
      return send(res, 401, "text/plain; charset=utf-8", TOKEN_REQUIRED);
    }
    if (req.method === "POST") return this.#write(req, res, url);
    if (url.pathname === "/favicon.ico") return send(res, 204, "text/plain", "");
    const asset = this.#assets.get(url.pathname);
    if (asset) return send(res, 200, asset.type, asset.body);
    if (url.pathname.startsWith("/api/")) return this.#read(req, res, url);
    return send(res, 404, "text/plain; charset=utf-8", "statelog inspector: not found\n");
  }

  /** The read API: GET /api/…. */
  async #read(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const q = url.searchParams;
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const signal = abort.signal;
    switch (url.pathname) {
      case "/api/overview":
        return sendJson(res, 200, overview(this.#settings.targets, this.#settings.allowWrites));
      case "/api/namespaces":
        return sendJson(res, 200, { namespaces: await namespaces(this.#store(q), signal) });
      case "/api/entities": {
        const store = this.#store(q);
        const namespace = this.#namespace(q);
        const search = {
          q: q.get("q") ?? "",
          type: q.get("type") ?? "",
          deleted: q.get("deleted") === "1",
          offset: intParam(q, "offset", 0),
          limit: Math.min(intParam(q, "limit", INSPECTOR_DEFAULTS.pageSize), INSPECTOR_DEFAULTS.pageSize),
        };
        return sendJson(res, 200, await entities(store, namespace, search, signal));
      }
      case "/api/history": {
        const target = this.#target(q, "store");
        const namespace = this.#namespace(q);
        const entityType = q.get("entityType");
        const entityId = q.get("entityId");
        validateEntityType(entityType);
        validateEntityId(entityId);
        const answer = target.history
          ? await historyFrom(target.history, namespace, entityType, entityId, signal)
          : await history(target.store as Store, namespace, entityType, entityId, signal);
        return sendJson(res, 200, answer);
      }
      case "/api/live": {
        const store = this.#store(q);
        const namespace = this.#namespace(q);
        if (!store.capabilities.watch || typeof store.watch !== "function") {
          throw new HttpError(501, "this store has no live feed");
        }
        if (this.#live.full) throw new HttpError(503, "too many live feeds are open");
        req.socket.setTimeout(0);
        return this.#live.stream(store, namespace, res);
      }
      case "/api/streams":
        return sendJson(res, 200, (await streams(this.#target(q, "eventStore"))) ?? null);
      case "/api/events": {
        const stream = q.get("stream");
        if (!stream) throw new ValidationError("stream", "is required");
        const after = intParam(q, "after", 0);
        const limit = intParam(q, "limit", INSPECTOR_DEFAULTS.eventPageSize);
        return sendJson(res, 200, await events(this.#target(q, "eventStore"), stream, after, limit));
      }
      case "/api/projections":
        this.#target(q, "readModels");
        return sendJson(res, 200, await this.#sampler.projections(intParam(q, "target", -1)));
      default:
        throw new HttpError(404, `no such API: ${url.pathname}`);
    }
  }

  /** The write API: POST /api/…, only with `allowWrites`, from this page, with a JSON body. */
  async #write(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.#settings.allowWrites) {
      throw new HttpError(403, "the inspector is read-only (start it with writes allowed to compact)");
    }
    const refusal = this.#guard.writeRefusal(req);
    if (refusal) throw new HttpError(403, refusal);
    const body = await readBody(req);
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(body))
      if (typeof v === "string" || typeof v === "number") params.set(k, `${v}`);
    switch (url.pathname) {
      case "/api/compact": {
        const store = this.#store(params);
        const namespace = this.#namespace(params);
        if (!store.capabilities.compact || typeof store.compact !== "function") {
          throw new HttpError(501, "this store cannot compact");
        }
        await store.compact(namespace);
        return sendJson(res, 200, { compacted: namespace });
      }
      default:
        throw new HttpError(404, `no such action: ${url.pathname}`);
    }
  }

  /** The target named by the `target` parameter (its index), which must have `part`. */
  #target(q: URLSearchParams, part: "store" | "eventStore" | "readModels") {
    const index = intParam(q, "target", -1);
    const target = this.#settings.targets[index];
    if (!target)
      throw new ValidationError("target", `must be the index of a target (0 to ${this.#settings.targets.length - 1})`);
    if (!target[part]) throw new HttpError(404, `target ${JSON.stringify(target.name)} has no ${part}`);
    return target;
  }

  #store(q: URLSearchParams): Store {
    return this.#target(q, "store").store as Store;
  }

  #namespace(q: URLSearchParams): string {
    const namespace = q.get("namespace");
    validateNamespace(namespace);
    return namespace;
  }
}

/** An error as the page receives it. */
function errorView(error: unknown) {
  return { code: isStatelogError(error) ? error.code : undefined, message: messageOf(error) };
}

/** A non-negative integer query parameter, or `fallback` when it is absent. */
function intParam(q: URLSearchParams, name: string, fallback: number): number {
  const raw = q.get(name);
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ValidationError(name, `must be an integer >= 0, got ${JSON.stringify(raw)}`);
  return n;
}

/** The JSON object body of a write request (at most {@link MAX_BODY_BYTES}). */
async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `a request body must be at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "the body must be a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}
