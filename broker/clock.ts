/** Time as the broker sees it. Injected so tests drive token buckets, batching and timeouts deterministically. */
export interface Clock {
  /** Milliseconds since the Unix epoch: the wall clock, for times stored or sent (`created_at`, `last_seen`). */
  now(): number;
  /**
   * Milliseconds from an arbitrary origin on a clock that never steps (`performance.now()`): for every duration the
   * broker measures itself (rate limits, blocks, grace periods, throttles, timeouts), which a step of the wall clock
   * (NTP, an operator) must not stretch or cut short. Only the difference of two readings means anything.
   */
  monotonicNow(): number;
  setTimeout(fn: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. Timers are unref'd so a pending flush never keeps the process alive on its own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
  setTimeout: (fn, delayMs) => {
    const handle = setTimeout(fn, delayMs);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
