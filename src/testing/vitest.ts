/**
 * vitest's test API for the suites, imported once through
 * {@link importPeer} so that a missing vitest is reported as "install
 * vitest" rather than a bare `ERR_MODULE_NOT_FOUND` — when a suite is
 * registered, not when `statelog/testing` is imported: `deciderSpec`
 * (node:assert only) works in any test runner without vitest installed.
 */
import type * as Vitest from "vitest";
import { importPeer } from "./peers.js";

const loaded: typeof Vitest | Error = await importPeer(
  "vitest",
  "to register its conformance suites",
  () => import("vitest"),
).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));

/** vitest, or the error that importing it gave (a `PeerMissingError` when it is not installed). */
function vitest(): typeof Vitest {
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

export const afterEach = ((...args: Parameters<typeof Vitest.afterEach>) =>
  vitest().afterEach(...args)) as typeof Vitest.afterEach;
export const describe = ((...args: Parameters<typeof Vitest.describe>) =>
  vitest().describe(...args)) as typeof Vitest.describe;
export const expect = ((...args: Parameters<typeof Vitest.expect>) => vitest().expect(...args)) as typeof Vitest.expect;
export const it = ((...args: Parameters<typeof Vitest.it>) => vitest().it(...args)) as typeof Vitest.it;
