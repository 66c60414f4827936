/**
 * Retries: one policy shape for everything in the package that tries again
 * (a command that lost a race, a projection whose handler failed), with
 * exponential backoff and full jitter.
 */
import { AbortError } from "./errors.js";
import { OptionChecker } from "./options.js";

/** When and how often to try again. Each user of a policy has its own defaults. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  maxAttempts?: number;
  /** Upper bound of the wait before the 2nd attempt, in ms; doubles per attempt (full jitter: a random wait up to it). */
  backoffMs?: number;
  /** Upper bound of one wait, in ms. */
  maxBackoffMs?: number;
  /** Which errors are tried again; others are thrown at once. */
  retryOn?: (error: unknown) => boolean;
}

/** The longest wait `setTimeout` takes, in ms (about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks a retry policy given by a user over `base` (the defaults of its
 * owner) and fills in the rest. `false` is one attempt.
 * @throws ConfigurationError naming the field, what it accepts and what it got
 */
export function checkRetryPolicy(
  policy: RetryPolicy | false | undefined,
  base: Required<RetryPolicy>,
  owner: string,
): Required<RetryPolicy> {
  if (policy === false) return { ...base, maxAttempts: 1 };
  const check = new OptionChecker<RetryPolicy>(owner, policy, base);
  check.known(["maxAttempts", "backoffMs", "maxBackoffMs", "retryOn"]);
  const retryOn = check.optionalFunction("retryOn");
  if (retryOn === undefined) throw check.error("retryOn", "a function");
  return {
    maxAttempts: check.integer("maxAttempts", { min: 1 }),
    // setTimeout waits at most 2^31 - 1 ms: a longer wait would fire at once.
    backoffMs: check.number("backoffMs", { min: 0, max: MAX_TIMER_MS }),
    maxBackoffMs: check.number("maxBackoffMs", { min: 0, max: MAX_TIMER_MS }),
    retryOn,
  };
}

/** The wait before attempt `attempt + 1`: random up to `min(maxBackoffMs, backoffMs × 2^(attempt-1))` ms. */
export function backoffDelayMs(policy: Required<RetryPolicy>, attempt: number): number {
  return Math.random() * Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1));
}

/** Waits `ms`, or rejects with an `AbortError` when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn` under `policy`: on an error `retryOn` accepts, waits
 * ({@link backoffDelayMs}) and tries again, up to `maxAttempts` in all;
 * `onRetry` sees each error that is retried.
 * @throws the last error, or an `AbortError` when `signal` aborts a wait
 */
export async function retrying<T>(
  policy: Required<RetryPolicy>,
  fn: (attempt: number) => T | Promise<T>,
  options: { signal?: AbortSignal | undefined; onRetry?: (error: unknown, attempt: number) => void } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.maxAttempts || !policy.retryOn(error)) throw error;
      options.onRetry?.(error, attempt);
      await sleep(backoffDelayMs(policy, attempt), options.signal);
    }
  }
}
