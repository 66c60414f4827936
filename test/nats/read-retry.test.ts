/**
 * The retries of a NATS read's requests while the cluster cannot answer
 * (an election, a restarted node rejoining): which errors, how many times,
 * how long between them.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isAbortError, retrying } from "../../src/index.js";
import {
  GET_RETRY_WINDOW_MS,
  READ_ATTEMPTS,
  readRetryPolicy,
  retryingGet,
  retryingRead,
} from "../../src/nats/reader.js";

/** A JetStream API error as the client raises it while a restarted node rejoins. */
const unavailable = () =>
  Object.assign(new Error("JetStream system temporarily unavailable"), { name: "JetStreamApiError", code: 10008 });

/** A request that fails with `error()` on its first `failures` calls; records when each call was made. */
function failing(failures: number, error: () => Error) {
  const calls: number[] = [];
  const fn = async () => {
    calls.push(Date.now());
    if (calls.length <= failures) throw error();
    return calls.length;
  };
  return { fn, calls };
}

// Every test here runs on fake timers: the retries' waits are stepped, not waited for.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("a NATS read's retries", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("retry what the cluster's state explains, nothing else", () => {
    const { retryOn } = readRetryPolicy(12);
    expect(retryOn(unavailable())).toBe(true);
    expect(retryOn(Object.assign(new Error("TIMEOUT"), { name: "TimeoutError" }))).toBe(true);
    expect(retryOn(new Error("503 no responders available"))).toBe(true);
    expect(retryOn(new Error("no suitable peers for placement, leader not known"))).toBe(true);
    expect(retryOn(new Error("stream not found"))).toBe(false);
    expect(retryOn(new Error("consumer name already in use"))).toBe(false);
  });

  it("ride out 'temporarily unavailable' up to the last attempt, each wait at most 250 ms doubling to 1 s", async () => {
    vi.spyOn(Math, "random").mockReturnValue(1); // the longest wait each time
    const { fn, calls } = failing(11, unavailable);
    const result = retrying(readRetryPolicy(12), fn);
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe(12);
    const waits = calls.slice(1).map((t, i) => t - (calls[i] as number));
    expect(waits).toEqual([250, 500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
  });

  it("give up after the attempts with the last error", async () => {
    const { fn, calls } = failing(20, unavailable);
    const settled = expect(retrying(readRetryPolicy(3), fn)).rejects.toThrow(/temporarily unavailable/);
    await vi.runAllTimersAsync();
    await settled;
    expect(calls).toHaveLength(3);
  });

  it("do not retry an error the cluster's state does not explain", async () => {
    const { fn, calls } = failing(1, () => new Error("stream not found"));
    await expect(retrying(readRetryPolicy(12), fn)).rejects.toThrow("stream not found");
    expect(calls).toHaveLength(1);
  });
});

describe("a single NATS read request (retryingRead)", () => {
  it("is asked again after a time-out, and resolves with the answer", async () => {
    const { fn, calls } = failing(2, () => Object.assign(new Error("TIMEOUT"), { name: "TimeoutError" }));
    const result = retryingRead(fn);
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe(3);
    expect(calls).toHaveLength(3);
  });

  it("takes a missing message as an answer: never asked again", async () => {
    let calls = 0;
    const missing = async () => {
      calls++;
      return null;
    };
    await expect(retryingRead(missing)).resolves.toBeNull();
    expect(calls).toBe(1);
    const notFound = () => Object.assign(new Error("no message found"), { name: "JetStreamApiError", code: 10037 });
    const { fn, calls: asked } = failing(1, notFound);
    await expect(retryingRead(fn)).rejects.toThrow("no message found");
    expect(asked).toHaveLength(1);
  });

  it("gives up after READ_ATTEMPTS with the client's last error", async () => {
    const errors: Error[] = [];
    const { fn, calls } = failing(100, () => {
      errors.push(unavailable());
      return errors.at(-1) as Error;
    });
    const settled = retryingRead(fn).catch((error: unknown) => error);
    await vi.runAllTimersAsync();
    expect(await settled).toBe(errors.at(-1));
    expect(calls).toHaveLength(READ_ATTEMPTS);
  });

  it("ends with an AbortError when the signal aborts, during a request or a wait", async () => {
    const during = new AbortController();
    const pending = retryingRead(() => new Promise<never>(() => undefined), during.signal).catch((e: unknown) => e);
    during.abort();
    expect(isAbortError(await pending)).toBe(true);

    const between = new AbortController();
    const { fn, calls } = failing(100, unavailable);
    const waiting = retryingRead(fn, between.signal).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0); // the first request failed: the wait before the second runs
    between.abort();
    expect(isAbortError(await waiting)).toBe(true);
    await vi.runAllTimersAsync();
    expect(calls).toHaveLength(1);

    const before = new AbortController();
    before.abort();
    const asked = failing(0, unavailable);
    expect(isAbortError(await retryingRead(asked.fn, before.signal).catch((e: unknown) => e))).toBe(true);
    expect(asked.calls).toHaveLength(0);
  });
});

describe("a user's single NATS read (retryingGet)", () => {
  it("stops asking after GET_RETRY_WINDOW_MS of requests that time out (a deleted one-replica bucket never answers)", async () => {
    const calls: number[] = [];
    // Each request is left unanswered and times out after the client's 5 s.
    const fn = () => {
      calls.push(Date.now());
      return new Promise<never>((_, reject) =>
        setTimeout(() => reject(Object.assign(new Error("TIMEOUT"), { name: "TimeoutError" })), 5_000),
      );
    };
    const start = Date.now();
    const settled = retryingGet(fn).catch((error: unknown) => error);
    await vi.runAllTimersAsync();
    expect(String(await settled)).toMatch(/TIMEOUT/);
    // Every request began within the window; twelve time-outs would have taken a minute.
    expect(calls.every((t) => t - start < GET_RETRY_WINDOW_MS)).toBe(true);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.length).toBeLessThanOrEqual(4);
  });

  it("rides out quick failures up to READ_ATTEMPTS, as a read does", async () => {
    const { fn, calls } = failing(READ_ATTEMPTS - 1, unavailable);
    const result = retryingGet(fn);
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe(READ_ATTEMPTS);
    expect(calls).toHaveLength(READ_ATTEMPTS);
  });
});
