/** Time and randomness, injected so retries, cooldowns and deadlines are testable without waiting. */
// Node's timer limit is one fact for the whole bridge; the agent runtime states it (engine-client already depends on
// agents/ for the engine interface).
import { MAX_TIMER_MS } from "../agents/clock.ts";

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
