/**
 * vitest's test API for the suites, imported once through
 * {@link importPeer} so that a missing vitest is reported as "install
 * vitest" rather than a bare `ERR_MODULE_NOT_FOUND`.
 */
import type * as Vitest from "vitest";
import { importPeer } from "./peers.js";

const vitest: typeof Vitest = await importPeer("vitest", "to register its conformance suites", () => import("vitest"));

export const { afterEach, describe, expect, it } = vitest;
