/** Retry delays: exponential backoff with full jitter, and the engine's `Retry-After` when it sends one. */
import type { RandomSource } from "./clock.ts";
import { parseHttpDate } from "./http-date.ts";

/**
 * Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform delay in
 * [0, min(maxDelayMs, baseDelayMs * 2^(attempt-1))). Spreading retries this way keeps a fleet of agents from
 * hammering a recovering engine in lockstep.
 */
export function fullJitterDelayMs(
  attempt: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: RandomSource,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Parses `Retry-After` (RFC 9110 10.2.3): delay-seconds or an HTTP-date (any of its three formats, see http-date.ts).
 * Returns milliseconds from `nowMs` (0 for a date already passed), or undefined when absent or unreadable.
 */
export function parseRetryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = parseHttpDate(trimmed, nowMs);
  return date === undefined ? undefined : Math.max(0, date - nowMs);
}
