/**
 * Per-second counters over a short sliding window, for live rates and small charts. Prometheus keeps the real
 * history; this only answers "what is happening now" for the dashboard without a time-series database.
 */

/**
 * The two readings of the bridge's clock (agents/types.ts `Clock`): `now()`, ms since the Unix epoch, which NTP or an
 * operator may step either way, and `monotonicNow()`, which never steps, for durations.
 */
export interface NowSource {
  now(): number;
  monotonicNow(): number;
}

/** One second of counts; `t` is that second's start on the wall clock as it reads now. */
export type WindowPoint<K extends string> = { t: number } & Record<K, number>;

/** One slot of the ring: the counts of monotonic second `second`. */
interface Bucket<K extends string> {
  second: number;
  counts: Record<K, number>;
}

export class SlidingWindow<K extends string> {
  readonly #keys: readonly K[];
  readonly #seconds: number;
  readonly #clock: NowSource;
  /**
   * Ring of per-second buckets indexed by (second % size); `second` tells whether a slot is current. Seconds are
   * counted on the monotonic clock: on the wall clock a step back would keep counts past the window, or a step either
   * way empty it. An injected clock's monotonic reading may be negative: its seconds before 0 count like any other.
   */
  readonly #ring: Array<Bucket<K>>;

  /**
   * @param keys the counters kept per second
   * @param windowSeconds how many whole seconds are kept (default 60)
   */
  constructor(keys: readonly K[], clock: NowSource, windowSeconds = 60) {
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1) {
      throw new RangeError("windowSeconds must be a positive integer");
    }
    this.#keys = keys;
    this.#seconds = windowSeconds;
    this.#clock = clock;
    // NaN matches no second: -1 is a second like any other on such a clock.
    this.#ring = Array.from({ length: windowSeconds }, () => ({ second: Number.NaN, counts: this.#zero() }));
  }

  get windowSeconds(): number {
    return this.#seconds;
  }

  /** Adds `amount` to counter `key` in the current second. */
  add(key: K, amount = 1): void {
    const second = Math.floor(this.#clock.monotonicNow() / 1000);
    const slot = this.#slotOf(second);
    if (slot.second !== second) {
      slot.second = second;
      slot.counts = this.#zero();
    }
    slot.counts[key] += amount;
  }

  /**
   * The last `windowSeconds` complete and current seconds, oldest first, with zeros where nothing happened. They are
   * dated back from the current wall-clock second, one second apart, so the chart shows the last minute as of now
   * whatever step the wall clock took meanwhile.
   */
  points(): Array<WindowPoint<K>> {
    const current = Math.floor(this.#clock.monotonicNow() / 1000);
    const currentWallMs = Math.floor(this.#clock.now() / 1000) * 1000;
    const out: Array<WindowPoint<K>> = [];
    for (let s = current - this.#seconds + 1; s <= current; s++) {
      const slot = this.#slotOf(s);
      const counts = slot.second === s ? slot.counts : this.#zero();
      out.push({ t: currentWallMs - (current - s) * 1000, ...counts } as WindowPoint<K>);
    }
    return out;
  }

  /** Sum of each counter over the window. */
  totals(): Record<K, number> {
    const sum = this.#zero();
    for (const p of this.points()) for (const k of this.#keys) sum[k] += p[k];
    return sum;
  }

  /** The ring slot of monotonic second `second`; the remainder is taken non-negative, as `%` leaves a negative one. */
  #slotOf(second: number): Bucket<K> {
    return this.#ring[((second % this.#seconds) + this.#seconds) % this.#seconds] as Bucket<K>;
  }

  #zero(): Record<K, number> {
    const z = {} as Record<K, number>;
    for (const k of this.#keys) z[k] = 0;
    return z;
  }
}
