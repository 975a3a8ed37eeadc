import type { Clock } from "./types.ts";

/**
 * The retry timer of writes runtime.db refused (alarm-rows.ts, directory-index.ts), on the runtime's clock: one try
 * after `firstMs`, the wait doubling with each try that fails, up to `maxMs`, so a lasting fault costs one try per
 * `maxMs`, not a loop. Once the writes land the wait starts again at `firstMs`.
 */
export class BackoffTimer {
  readonly #clock: Clock;
  readonly #firstMs: number;
  readonly #maxMs: number;
  readonly #run: () => void;
  #timer: unknown = null;
  #delayMs: number;
  #enabled: boolean;

  /** `run` is one try; it calls `backOff` when it fails and `reset` when nothing is left to write. */
  constructor(clock: Clock, firstMs: number, maxMs: number, run: () => void, enabled = true) {
    this.#clock = clock;
    this.#firstMs = firstMs;
    this.#maxMs = maxMs;
    this.#run = run;
    this.#delayMs = firstMs;
    this.#enabled = enabled;
  }

  /** The wait before the next try, ms. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** Tries may be armed from now on. */
  enable(): void {
    this.#enabled = true;
  }

  /** No try is armed any more (a shutdown); the wait is kept for a later `enable`. */
  disable(): void {
    this.#enabled = false;
    this.#clear();
  }

  /** Arms the next try after the current wait, unless one is armed already or tries are disabled. */
  arm(): void {
    if (!this.#enabled || this.#timer !== null) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#run();
    }, this.#delayMs);
  }

  /** A try failed: the wait doubles (up to the max) and the next try is armed. */
  backOff(): void {
    this.#delayMs = Math.min(this.#maxMs, this.#delayMs * 2);
    this.arm();
  }

  /** Nothing is left to write: no try stays armed, and the next refusal waits `firstMs` again. */
  reset(): void {
    this.#clear();
    this.#delayMs = this.#firstMs;
  }

  #clear(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }
}
