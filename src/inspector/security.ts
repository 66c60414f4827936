/**
 * The inspector's guards (docs/inspector.md, "Security"):
 * - an access token, given once in the URL (`?token=`), then kept in an
 *   HttpOnly, SameSite=Strict cookie (or sent as `Authorization: Bearer`);
 * - a `Host` check against DNS rebinding: only the names the server is
 *   reached by on this machine, with its port;
 * - writes only as a same-origin POST (`Origin`, else `Sec-Fetch-Site`)
 *   with a JSON body (a cross-origin page cannot send one without a CORS
 *   preflight, which is refused);
 * - headers on every response: a strict Content-Security-Policy, no CORS.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** A new access token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Compares two tokens in constant time (over their digests, so lengths may differ). */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(digest(given), digest(token));
}

/**
 * The cookie that keeps the token, named after the port: cookies are not
 * told apart by port, so two inspectors on one machine keep one each.
 */
export function cookieName(port: number): string {
  return `statelog_inspector_${port}`;
}

/** The `Set-Cookie` value that keeps `token` for the page's later requests. */
export function tokenCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

/**
 * Every value of cookie `name` in a `Cookie` header. A browser sends one per path and domain it
 * keeps under that name, and another local page (cookies do not tell ports apart) can plant one
 * with a longer path, which the browser then sends first.
 */
function cookies(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  if (!header) return values;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

/**
 * An address as the host of a URL, in the form a browser sends back in `Host`: an IPv6 address in
 * brackets and in its one canonical form (`::ffff:127.0.0.1` is `[::ffff:7f00:1]`, `0:0:0:0:0:0:0:1`
 * is `[::1]`); any other name as given.
 */
export function urlHost(address: string): string {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  if (!bare.includes(":")) return address;
  try {
    return new URL(`http://[${bare}]`).hostname;
  } catch {
    return `[${bare}]`;
  }
}

/** Headers of every response: no CORS header is ever among them. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-store",
};

/** The checks of one inspector: its token and the names it may be reached by. */
export class Guard {
  readonly #token: string;
  readonly #hosts: ReadonlySet<string>;
  readonly #port: number;

  /**
   * @param token the access token
   * @param addresses the address the server was asked to bind and the one it bound, in any spelling
   * @param port the port it listens on
   */
  constructor(token: string, addresses: readonly string[], port: number) {
    this.#token = token;
    this.#port = port;
    const names = new Set(["127.0.0.1", "localhost", "[::1]"]);
    for (const address of addresses) {
      // The canonical form (what a browser sends) and the one given (what a tool may send as typed).
      names.add(urlHost(address));
      names.add(address.includes(":") && !address.startsWith("[") ? `[${address}]` : address);
    }
    const hosts = new Set<string>();
    for (const name of names) {
      hosts.add(`${name}:${port}`.toLowerCase());
      if (port === 80) hosts.add(name.toLowerCase());
    }
    this.#hosts = hosts;
  }

  /** The `Host` header names this server (DNS rebinding: a foreign name resolving to 127.0.0.1 is refused). */
  hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host;
    return typeof host === "string" && this.#hosts.has(host.toLowerCase());
  }

  /** The request carries the token: in its cookie (any of that name), or as `Authorization: Bearer <token>`. */
  authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    const bearer = typeof auth === "string" && auth.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
    const inCookie = cookies(req.headers.cookie, cookieName(this.#port)).some((v) => sameToken(v, this.#token));
    return inCookie || sameToken(bearer, this.#token);
  }

  /** `token` (from the URL) is the access token. */
  isToken(token: string | null): boolean {
    return token !== null && sameToken(token, this.#token);
  }

  /**
   * Why a write request is not a same-origin POST with a JSON body, or
   * `undefined` when it is: `Origin` must be this page's origin (when a
   * browser leaves it out, `Sec-Fetch-Site` must be `same-origin`), and
   * `Content-Type` must be `application/json`.
   */
  writeRefusal(req: IncomingMessage): string | undefined {
    if (req.method !== "POST") return "a write must be a POST";
    const origin = req.headers.origin;
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin")
      return `a write must come from this page (Sec-Fetch-Site: ${site})`;
    if (origin !== undefined) {
      if (origin.toLowerCase() !== `http://${req.headers.host?.toLowerCase()}`)
        return `a write must come from this page (Origin: ${origin})`;
    } else if (site !== "same-origin") {
      return "a write must come from this page (no Origin or Sec-Fetch-Site header)";
    }
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") return "a write must send a JSON body (Content-Type: application/json)";
    return undefined;
  }
}
