/**
 * A bound on secret verifications: at most `maxRunning` run at once (each is scrypt work on libuv's thread pool, tens
 * of ms of CPU by design) and at most `maxWaiting` wait for a turn, in arrival order. Without it a flood of bogus
 * CONNECTs queued unbounded CPU work ahead of every legitimate device's CONNECT.
 */

/** Gives the slot back; calling it again does nothing. */
export type ReleaseSlot = () => void;

export class VerificationSlots {
  #running = 0;
  readonly #waiting: Array<(release: ReleaseSlot) => void> = [];

  constructor(
    private readonly maxRunning: number,
    private readonly maxWaiting: number,
  ) {}

  /** A turn now, or after those waiting before it; undefined at once when `maxWaiting` are waiting already. */
  acquire(): Promise<ReleaseSlot> | undefined {
    if (this.#running < this.maxRunning) {
      this.#running++;
      return Promise.resolve(this.#slot());
    }
    if (this.#waiting.length >= this.maxWaiting) return undefined;
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #slot(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // The slot passes straight to the next in line: `running` stays as it is.
      if (next === undefined) this.#running--;
      else next(this.#slot());
    };
  }

  /** Verifications running now. */
  get running(): number {
    return this.#running;
  }

  /** CONNECTs waiting for a turn now. */
  get waiting(): number {
    return this.#waiting.length;
  }
}
