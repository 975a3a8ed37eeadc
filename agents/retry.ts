import { BridgeError } from "../errors/bridge-error.ts";
import { MAX_TIMER_MS } from "./clock.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { Clock, RetryOptions } from "./types.ts";

/** Defaults of every retry policy (agent.retry, schedules, queue items). */
export const RETRY_DEFAULTS = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 3000 } as const;

/** A validated retry policy. */
export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  shouldRetry?: (err: unknown, attempt: number) => boolean;
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, `${field} must be an integer >= 1`, { field, value });
  }
  return value;
}

/** Validates retry options against the defaults; errors name the field (BRIDGE_ERR_INVALID_OPTION). */
export function resolveRetryOptions(options: RetryOptions | undefined, prefix = "retry"): RetryPolicy {
  const o = options ?? {};
  const maxAttempts = positiveInteger(o.maxAttempts ?? RETRY_DEFAULTS.maxAttempts, `${prefix}.maxAttempts`);
  const baseDelayMs = positiveInteger(o.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs, `${prefix}.baseDelayMs`);
  const maxDelayMs = positiveInteger(o.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs, `${prefix}.maxDelayMs`);
  if (maxDelayMs > MAX_TIMER_MS) {
    // retry() waits on a timer, and Node fires a longer one after 1 ms (TimeoutOverflowWarning): no wait at all.
    throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, `${prefix}.maxDelayMs must be <= ${MAX_TIMER_MS}`, {
      field: `${prefix}.maxDelayMs`,
      value: maxDelayMs,
    });
  }
  if (baseDelayMs > maxDelayMs) {
    throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, `${prefix}.baseDelayMs must be <= ${prefix}.maxDelayMs`, {
      field: `${prefix}.baseDelayMs`,
      value: baseDelayMs,
    });
  }
  if (o.shouldRetry !== undefined && typeof o.shouldRetry !== "function") {
    throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, `${prefix}.shouldRetry must be a function`, {
      field: `${prefix}.shouldRetry`,
    });
  }
  return { maxAttempts, baseDelayMs, maxDelayMs, shouldRetry: o.shouldRetry };
}

/**
 * Full-jitter backoff (AWS architecture blog, "Exponential Backoff And Jitter"): a uniform delay in
 * [0, min(max, base * 2^(attempt-1))). Jitter spreads retries of many agents that failed together.
 * `attempt` is the 1-based number of the attempt that just failed.
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 40));
  return Math.floor(random() * ceiling);
}

/**
 * When a failed schedule callback or queue item runs again: `nowMs` (the failure's time, so a callback that took
 * long to fail still gets its backoff) plus the backoff, at least 1 ms. A backoff of 0 (full jitter draws it) would
 * make the row due again within the alarm run that failed it, a retry with no wait at all.
 */
export function retryAtMs(policy: RetryPolicy, attempt: number, nowMs: number, random: () => number): number {
  return nowMs + Math.max(1, backoffDelayMs(policy, attempt, random));
}

/** Runs `fn` until it resolves, retrying per `options` with full-jitter backoff on the injected clock. */
export async function retryWithBackoff<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions | undefined,
  clock: Clock,
  random: () => number,
): Promise<T> {
  const policy = resolveRetryOptions(options);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.maxAttempts || (policy.shouldRetry !== undefined && !policy.shouldRetry(err, attempt))) {
        throw err;
      }
      const delay = backoffDelayMs(policy, attempt, random);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, delay));
    }
  }
}

/** Stored form of a retry policy (the predicate cannot be persisted; stored policies always retry). */
export function retryToJson(policy: RetryPolicy): string {
  return JSON.stringify({
    maxAttempts: policy.maxAttempts,
    baseDelayMs: policy.baseDelayMs,
    maxDelayMs: policy.maxDelayMs,
  });
}

/** Reads a stored policy back; a damaged row falls back to the defaults. */
export function retryFromJson(text: string | null): RetryPolicy {
  try {
    return resolveRetryOptions(text ? (JSON.parse(text) as RetryOptions) : undefined);
  } catch {
    return { ...RETRY_DEFAULTS };
  }
}
