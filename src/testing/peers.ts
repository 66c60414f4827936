/**
 * The optional peer dependencies of `statelog/testing`: vitest (to
 * register the suites) and fast-check (for the property-based and
 * model-based tests). Both are loaded here, with a `PeerMissingError` that
 * says which package to install when one is missing, instead of a bare
 * `ERR_MODULE_NOT_FOUND` from deep inside the package.
 */
import { PeerMissingError } from "../index.js";

/** The fast-check module (a type only: nothing is loaded until {@link loadFastCheck}). */
export type FastCheck = typeof import("fast-check");

/** True when `error` says that module `name` could not be found (Node's or Vite's wording). */
export function isModuleNotFound(error: unknown, name: string): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : "";
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") return text.includes(name) || text === "";
  return text.includes(name) && /cannot find (package|module)|failed to (load|resolve)|does the file exist/i.test(text);
}

/** The error `statelog/testing` throws when a peer dependency is not installed. */
export function missingPeerError(name: string, purpose: string, cause: unknown): PeerMissingError {
  return new PeerMissingError("statelog/testing", [name], { purpose, saveDev: true, cause });
}

/**
 * Imports a peer dependency through `load`; when it is not installed,
 * throws {@link missingPeerError} naming the package to install.
 */
export async function importPeer<T>(name: string, purpose: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isModuleNotFound(error, name)) throw missingPeerError(name, purpose, error);
    throw error;
  }
}

let fastCheck: Promise<FastCheck> | undefined;

/** fast-check, loaded on first use (only the property-based and model-based tests need it). */
export function loadFastCheck(): Promise<FastCheck> {
  fastCheck ??= importPeer("fast-check", "for its property-based tests", () => import("fast-check"));
  return fastCheck;
}
