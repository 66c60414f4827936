import { describe, expect, it } from "vitest";
import { checkRetryPolicy, isAbortError, isConfigurationError, retrying } from "../../src/index.js";

const base = { maxAttempts: 3, backoffMs: 0, maxBackoffMs: 0, retryOn: () => true };

describe("RetryPolicy", () => {
  it("retrying tries up to maxAttempts, then throws the last error", async () => {
    let calls = 0;
    const error = await retrying(base, () => {
      calls++;
      throw new Error(`fail ${calls}`);
    }).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect((error as Error).message).toBe("fail 3");
  });

  it("retrying returns the first success and reports each retried error", async () => {
    const seen: number[] = [];
    const result = await retrying(
      base,
      (attempt) => {
        if (attempt < 3) throw new Error("again");
        return attempt;
      },
      { onRetry: (_e, attempt) => seen.push(attempt) },
    );
    expect(result).toBe(3);
    expect(seen).toEqual([1, 2]);
  });

  it("an error retryOn refuses is thrown at once", async () => {
    let calls = 0;
    await expect(
      retrying({ ...base, retryOn: (e) => (e as Error).message !== "fatal" }, () => {
        calls++;
        throw new Error("fatal");
      }),
    ).rejects.toThrow("fatal");
    expect(calls).toBe(1);
  });

  it("an abort during a wait ends the retries with an AbortError", async () => {
    const controller = new AbortController();
    const run = retrying(
      { ...base, backoffMs: 10_000, maxBackoffMs: 10_000, maxAttempts: 5 },
      () => {
        queueMicrotask(() => controller.abort());
        throw new Error("busy");
      },
      { signal: controller.signal },
    );
    expect(isAbortError(await run.catch((e: unknown) => e))).toBe(true);
  });

  it("checkRetryPolicy fills in the owner's defaults, false is one attempt, and bad fields are ConfigurationErrors naming them", () => {
    expect(checkRetryPolicy({ maxAttempts: 5 }, base, "X retry")).toMatchObject({ maxAttempts: 5, backoffMs: 0 });
    expect(checkRetryPolicy(false, base, "X retry").maxAttempts).toBe(1);
    // A wait longer than setTimeout takes (2^31 - 1 ms) would fire at once: refused too.
    for (const bad of [
      { maxAttempts: 0 },
      { backoffMs: -1 },
      { attempts: 3 },
      { retryOn: "yes" },
      { maxBackoffMs: 1e12 },
      { backoffMs: 2 ** 31 },
    ]) {
      const error = (() => {
        try {
          checkRetryPolicy(bad as never, base, "X retry");
        } catch (e) {
          return e;
        }
      })();
      expect(isConfigurationError(error), JSON.stringify(bad)).toBe(true);
      expect((error as Error).message).toContain("X retry");
    }
  });
});
