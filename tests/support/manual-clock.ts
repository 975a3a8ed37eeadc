/**
 * The one manual clock of the test suites and benchmarks: time stands still until the test moves it, and timers fire
 * only while it does. It implements the `Clock` the agent runtime, the broker, the engine client and the metrics take
 * (`now`, `monotonicNow`, `setTimeout`, `clearTimeout`), so every suite drives time the same way.
 *
 * Two readings, as on a real gateway: `now()` is the wall clock, `monotonicNow()` the clock that only moves forward
 * (it starts at 0, as `performance.now()` starts near it, so code that mixes the two readings fails its tests).
 * `advance` and `advanceSync` move both together; `stepWall` moves the wall clock alone, either way, as NTP or an
 * operator does, and fires nothing: timers run on the monotonic clock, as Node's do.
 *
 * Moving time, in both forms:
 * - timers fire in the order they fall due (timers due at the same time in the order they were set);
 * - while a timer runs, `now()` reads its own due time, not the end of the step, as it would on a real clock;
 * - a timer set by a timer (or by anything it triggers) that falls due within the step fires in the same step;
 * - after the step `now()` reads exactly the start of the step plus `ms`, and timers due later stay pending.
 *
 * `advanceSync` does this in one synchronous run: for code whose timers do their work synchronously (token buckets,
 * batch flushes, caches). `advance` does the same but lets queued promise callbacks and immediates run before each
 * timer and after the last: for code that reacts to a timer with async work (the agent runtime's schedules, retries
 * and idle eviction), so what a timer starts has settled before the next timer reads the state.
 */
import type { Clock as AgentClock } from "../../agents/types.ts";
import type { Clock as BrokerClock } from "../../broker/clock.ts";

/** Where a clock starts when the test does not say: a fixed instant, so dates in assertions never depend on today. */
export const MANUAL_CLOCK_DEFAULT_START_MS = Date.UTC(2026, 0, 1);

/**
 * How many timers one step may fire before it gives up. Far more than any test sets; reaching it means timers keep
 * setting timers due within the step (a zero-delay loop), which would otherwise hang the test instead of failing it.
 */
const MAX_TIMERS_PER_STEP = 100_000;

interface Timer {
  /** Due time on the monotonic clock. */
  at: number;
  fn: () => void;
}

/** A clock that moves only when the test says so. See the module comment for how timers fire. */
export class ManualClock implements AgentClock, BrokerClock {
  /** The monotonic reading. */
  #monotonic = 0;
  /** What the wall clock reads ahead of the monotonic one. */
  #wallOffset: number;
  #seq = 0;
  /** Insertion order is setting order, which breaks ties between timers due at the same time. */
  #timers = new Map<number, Timer>();

  /** @param startMs the first value of `now()`, ms since the epoch. Default {@link MANUAL_CLOCK_DEFAULT_START_MS}. */
  constructor(startMs: number = MANUAL_CLOCK_DEFAULT_START_MS) {
    if (!Number.isFinite(startMs)) throw new RangeError(`ManualClock startMs must be a finite number, got ${startMs}`);
    this.#wallOffset = startMs;
  }

  now(): number {
    return this.#monotonic + this.#wallOffset;
  }

  monotonicNow(): number {
    return this.#monotonic;
  }

  /**
   * Steps the wall clock alone by `ms`, back when negative (an NTP correction, an operator setting the time): the
   * monotonic clock, and so every timer, stays where it is.
   */
  stepWall(ms: number): void {
    if (!Number.isFinite(ms))
      throw new RangeError(`ManualClock can only step the wall clock by a finite ms, got ${ms}`);
    this.#wallOffset += ms;
  }

  /** Sets a timer due `ms` from now; a negative or NaN delay counts as 0 (due at once, fired by the next step). */
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#monotonic + (Number.isNaN(ms) ? 0 : Math.max(0, ms)), fn });
    return id;
  }

  /** Cancels a timer; an unknown or already fired handle is ignored, as with the real `clearTimeout`. */
  clearTimeout(handle: unknown): void {
    if (typeof handle === "number") this.#timers.delete(handle);
  }

  /** How many timers are set and have not fired or been cancelled. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, synchronously. */
  advanceSync(ms: number): void {
    const end = this.#stepEnd(ms);
    for (let fired = 0; this.#fireNext(end); fired++) this.#checkRunaway(fired);
    this.#monotonic = end;
  }

  /**
   * Moves time forward by `ms` like {@link advanceSync}, but lets pending promise callbacks and immediates run before
   * each timer fires and once more at the end.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#stepEnd(ms);
    for (let fired = 0; ; fired++) {
      await settle();
      if (!this.#fireNext(end)) break;
      this.#checkRunaway(fired);
    }
    this.#monotonic = end;
    await settle();
  }

  #stepEnd(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`ManualClock can only move forward, got ${ms} ms`);
    return this.#monotonic + ms;
  }

  /** Fires the earliest timer due by `end` (the first set among equals); false when none is due. */
  #fireNext(end: number): boolean {
    let next: [number, Timer] | undefined;
    for (const entry of this.#timers) {
      if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
    }
    if (next === undefined) return false;
    const [id, timer] = next;
    this.#timers.delete(id);
    // Due times never lie in the past (delays are >= 0, time only moves forward); max() keeps time monotonic anyway.
    this.#monotonic = Math.max(this.#monotonic, timer.at);
    timer.fn();
    return true;
  }

  #checkRunaway(fired: number): void {
    if (fired >= MAX_TIMERS_PER_STEP) {
      throw new Error(`ManualClock fired ${MAX_TIMERS_PER_STEP} timers in one step: timers keep setting timers`);
    }
  }
}

/** Lets queued promise callbacks and immediates run: `rounds` turns of the event loop's check phase. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
