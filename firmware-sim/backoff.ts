/**
 * Reconnect delays. Real firmware should back off exponentially with full jitter (AWS architecture blog,
 * "Exponential Backoff and Jitter") so that a fleet dropped at once does not come back at once. The `zero` mode is
 * deliberately broken firmware that reconnects immediately, to reproduce reconnect storms against a broker.
 */
import type { RandomSource } from "./clock.ts";

/** How a device waits before reconnecting. */
export interface BackoffOptions {
  /** `exponential` (full jitter) or `zero` (broken firmware: no delay at all). Default `exponential`. */
  mode: "exponential" | "zero";
  /** Cap of the first retry's delay, in milliseconds. Default 1000. */
  baseDelayMs: number;
  /** Largest delay, in milliseconds. Default 30000. */
  maxDelayMs: number;
  /**
   * How long a connection must stay up (from the hello's PUBACK) before the retry counter goes back to 0, in
   * milliseconds; 0 resets it as soon as the device is online. Resetting at once lets a broker that kicks a device
   * right after its hello see it back within base/2 on average forever; real SDKs wait for a stable connection
   * (AWS IoT Device SDK v2: minConnectedTimeToResetReconnectDelayMs, 30 s). Default 30000.
   */
  stableConnectionMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  mode: "exponential",
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  stableConnectionMs: 30_000,
};

/** What the delay of one retry depends on. */
export type BackoffWindow = Pick<BackoffOptions, "mode" | "baseDelayMs" | "maxDelayMs">;

/** The window a delay is drawn from for retry number `attempt` (0 for the first retry). */
export function backoffCapMs(attempt: number, options: BackoffWindow): number {
  // A zero base stays 0: past attempt 1023, 2 ** attempt is Infinity and 0 * Infinity is NaN.
  if (options.mode === "zero" || options.baseDelayMs === 0) return 0;
  // 2 ** attempt overflows to Infinity for large attempts; Math.min then yields maxDelayMs, which is what we want.
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt));
}

/**
 * The delay before retry number `attempt` (0-based): uniform in [0, cap) where cap = min(max, base * 2^attempt).
 *
 * @example
 * backoffDelayMs(3, DEFAULT_BACKOFF, Math.random); // somewhere in [0, 8000)
 */
export function backoffDelayMs(attempt: number, options: BackoffWindow, random: RandomSource): number {
  return Math.floor(random() * backoffCapMs(attempt, options));
}
