/** Time and randomness, injected so retries, cooldowns and deadlines are testable without waiting. */
// Node's timer limit is one fact for the whole bridge; the agent runtime states it (engine-client already depends on
// agents/ for the engine interface).
import { MAX_TIMER_MS } from "../agents/clock.ts";

/** An opaque timer handle returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** How a timer is armed. */
export interface TimerOptions {
  /**
   * The timer keeps the process alive while it is pending: a caller awaits it (a retry's backoff, a request's
   * deadline). Default false: the client's own background timers (cooldowns, holds) never keep a process alive. A
   * clock without a process to keep alive (a test's manual clock) ignores it.
   */
  ref?: boolean;
}

/** Wall time, monotonic time and timers. */
export interface Clock {
  /**
   * Milliseconds since the Unix epoch: the wall clock, for dates the client is given or reports (a caller's
   * `deadline`, an HTTP-date Retry-After, the cooldown ends in `stats()`). It may step either way (NTP, an operator).
   */
  now(): number;
  /**
   * Milliseconds from an arbitrary origin on a clock that never steps (`performance.now()`): for every duration the
   * client measures (deadlines once accepted, backoffs, holds, cooldowns, probe intervals, queue wait, TTFT). Only
   * the difference of two readings means anything.
   */
  monotonicNow(): number;
  setTimeout(fn: () => void, delayMs: number, options?: TimerOptions): TimerHandle;
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
    private readonly ref: boolean,
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
    if (!this.ref) this.#timer.unref();
  }
}

/**
 * The real clock. Timers are unref'd unless armed with `ref`, so a forgotten cooldown never keeps the process alive,
 * while a script awaiting a request is not ended in the middle of its retry's backoff.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
  setTimeout: (fn, delayMs, options) => {
    const ref = options?.ref === true;
    if (delayMs > MAX_TIMER_MS) return new LongTimer(fn, delayMs, ref);
    const timer = setTimeout(fn, Math.max(0, delayMs));
    if (!ref) timer.unref();
    return timer;
  },
  clearTimeout: (handle) => {
    if (handle instanceof LongTimer) handle.cancel();
    else clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
