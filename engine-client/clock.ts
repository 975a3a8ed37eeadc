/** Time and randomness, injected so retries, cooldowns and deadlines are testable without waiting. */

/** An opaque timer handle returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** Wall time and timers. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** The real clock. Timers are unref'd so a forgotten cooldown never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, delayMs) => {
    const timer = setTimeout(fn, Math.max(0, delayMs));
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
