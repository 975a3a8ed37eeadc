import type { Clock } from "../../agents/index.ts";
import type { ManualClock } from "../support/manual-clock.ts";

/**
 * A wall clock that can step (an NTP correction, say on a gateway with no real-time clock) while timers keep running
 * on the monotonic manual clock underneath, as Node's timers do: `now()` is the timers' time plus `offsetMs`.
 */
export class SteppingClock implements Clock {
  offsetMs = 0;
  constructor(readonly timers: ManualClock) {}
  now(): number {
    return this.timers.now() + this.offsetMs;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    return this.timers.setTimeout(fn, ms);
  }
  clearTimeout(handle: unknown): void {
    this.timers.clearTimeout(handle);
  }
}
