/**
 * Time and randomness, injected so that tests of backoff, buffering and scheduling are deterministic.
 */

/** Cancels a timer set through a {@link Clock}. Calling it twice is harmless. */
export type CancelTimer = () => void;

/** Wall-clock time and one-shot timers. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once after `delayMs` milliseconds. */
  setTimer(fn: () => void, delayMs: number): CancelTimer;
}

/** A source of uniform random numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** setTimeout's longest delay; Node runs a timer set for longer after 1 ms (TimeoutOverflowWarning). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The real clock (Date.now and setTimeout). A delay beyond 2^31-1 ms (24.8 days) is waited out in steps. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, delayMs) {
    let left = Math.max(0, delayMs);
    let handle: ReturnType<typeof setTimeout>;
    const arm = () => {
      const step = Math.min(left, MAX_TIMEOUT_MS);
      left -= step;
      handle = setTimeout(left > 0 ? arm : fn, step);
    };
    arm();
    return () => clearTimeout(handle);
  },
};

/** A clock that only moves when told to: for tests. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void;
  /** Timers not yet fired. */
  pendingTimers(): number;
}

/**
 * Creates a {@link ManualClock} starting at `startMs`.
 *
 * @example
 * const clock = createManualClock(0);
 * clock.setTimer(() => console.log("fired"), 100);
 * clock.advance(100); // prints "fired"
 */
export function createManualClock(startMs = 0): ManualClock {
  let nowMs = startMs;
  let nextId = 0;
  const timers = new Map<number, { dueMs: number; fn: () => void }>();
  return {
    now: () => nowMs,
    setTimer(fn, delayMs) {
      const id = nextId++;
      timers.set(id, { dueMs: nowMs + Math.max(0, delayMs), fn });
      return () => {
        timers.delete(id);
      };
    },
    advance(ms) {
      const targetMs = nowMs + ms;
      for (;;) {
        let nextIdDue: number | undefined;
        let nextDue = Number.POSITIVE_INFINITY;
        // Ids grow with insertion order, so ties fire in the order they were set.
        for (const [id, timer] of timers) {
          if (timer.dueMs <= targetMs && timer.dueMs < nextDue) {
            nextDue = timer.dueMs;
            nextIdDue = id;
          }
        }
        if (nextIdDue === undefined) break;
        const timer = timers.get(nextIdDue)!;
        timers.delete(nextIdDue);
        nowMs = Math.max(nowMs, timer.dueMs);
        timer.fn();
      }
      nowMs = targetMs;
    },
    pendingTimers: () => timers.size,
  };
}

/**
 * A seeded pseudo-random source (mulberry32): the same seed gives the same fleet, so a failing run can be replayed.
 */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
