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

/** Longest delay one Node timer takes: a longer one fires after 1 ms instead (with a TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A timer for a delay longer than MAX_TIMER_MS, armed in steps of at most that: a deadline a month away must not
 * fire at once.
 */
class LongTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly fn: () => void,
    delayMs: number,
  ) {
    this.#arm(delayMs);
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }

  #arm(remainingMs: number): void {
    const stepMs = Math.min(remainingMs, MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      if (remainingMs > MAX_TIMER_MS) this.#arm(remainingMs - MAX_TIMER_MS);
      else this.fn();
    }, stepMs);
    this.#timer.unref();
  }
}

/** The real clock. Timers are unref'd so a forgotten cooldown never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, delayMs) => {
    if (delayMs > MAX_TIMER_MS) return new LongTimer(fn, delayMs);
    const timer = setTimeout(fn, Math.max(0, delayMs));
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => {
    if (handle instanceof LongTimer) handle.cancel();
    else clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
