/**
 * Notices a stream whose consumer stopped reading without closing it: an async iterator dropped without `return()`,
 * or never iterated again. Nothing else would end such a call: its slot is given back at `done` or when the caller
 * closes the stream, and it does neither (a FinalizationRegistry might, some day, when the collector runs; not a
 * bound). The feed tells the watchdog when something waits for the consumer (a read, the end, an error) and when the
 * consumer takes it; once the oldest unread thing has waited `idleTimeoutMs`, `onIdle` runs, once.
 *
 * Cheap on the hot path: no timer per chunk. A consumer that is waiting when data comes arms nothing. Otherwise one
 * timer is armed when data starts to wait and, when it fires, checks how long the data now waiting has waited: a
 * consumer that read meanwhile only re-arms it for the rest of the window.
 */
import type { Clock, TimerHandle } from "./clock.ts";

export class ConsumerWatchdog {
  /** When the oldest unread thing began to wait (clock ms); undefined while the consumer keeps up. */
  #waitingSince: number | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly idleTimeoutMs: number,
    private readonly onIdle: (idleMs: number) => void,
  ) {}

  /** Something waits for the consumer. Costs a comparison when something already waited. */
  waiting(): void {
    if (this.#waitingSince !== undefined || this.#stopped) return;
    this.#waitingSince = this.clock.monotonicNow();
    if (this.#timer === undefined) this.#arm(this.idleTimeoutMs);
  }

  /** The consumer read: nothing of what it took waits any more. The timer, if armed, is left to find that out. */
  taken(): void {
    this.#waitingSince = undefined;
  }

  /** The call is over (finished, closed or abandoned): no more checks. */
  stop(): void {
    this.#stopped = true;
    this.#waitingSince = undefined;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    this.#timer = this.clock.setTimeout(() => this.#check(), delayMs);
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#waitingSince === undefined || this.#stopped) return;
    const idleMs = this.clock.monotonicNow() - this.#waitingSince;
    if (idleMs < this.idleTimeoutMs) {
      this.#arm(this.idleTimeoutMs - idleMs);
      return;
    }
    this.stop();
    this.onIdle(idleMs);
  }
}
