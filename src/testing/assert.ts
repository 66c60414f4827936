/** Assertions shared by the conformance suites. */

import { isStatelogError } from "../index.js";
import { expect } from "./vitest.js";

/**
 * Awaits `promise` (or calls and awaits `fn`) and asserts that it failed
 * with a statelog error of `code`; returns that error.
 */
export async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<unknown> {
  let caught: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected an error with code ${code}`).toBeDefined();
  expect(isStatelogError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  return caught;
}
