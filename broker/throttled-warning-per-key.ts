/**
 * A warning logged at most once per interval for each key (a source address, a device), with how many times it happened for
 * that key since its last line. A misconfigured balancer shows up under its own address even while a scanner sweeps
 * the port from thousands of others. The keys held are bounded: once `maxKeys` are held and none is older than the
 * interval, further keys share one throttled line (throttled-warning.ts).
 */
import type { Clock } from "./clock.ts";
import type { BrokerLogger } from "./options.ts";
import { THROTTLED_WARNING_INTERVAL_MS, type ThrottledLineLevel, ThrottledWarning } from "./throttled-warning.ts";

export interface ThrottledWarningPerKeyOptions {
  /** Least time between two lines of one key, ms. Default 10000. */
  intervalMs?: number;
  /** Keys remembered at most. Default 1024. */
  maxKeys?: number;
  /** What the keys are, plural, as the shared line of the keys past `maxKeys` names them. Default "addresses". */
  keysAre?: string;
  /** The level its lines are written at. Default "warn". */
  level?: ThrottledLineLevel;
}

interface KeyState {
  loggedAtMs: number;
  /** Occurrences since the key's last line. */
  count: number;
}

export class ThrottledWarningPerKey {
  readonly #keys = new Map<string, KeyState>();
  readonly #overflow: ThrottledWarning;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #level: ThrottledLineLevel;
  #sweptAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly logger: BrokerLogger,
    private readonly clock: Clock,
    private readonly message: string,
    options: ThrottledWarningPerKeyOptions = {},
  ) {
    this.#intervalMs = options.intervalMs ?? THROTTLED_WARNING_INTERVAL_MS;
    this.#maxKeys = options.maxKeys ?? 1024;
    this.#level = options.level ?? "warn";
    this.#overflow = new ThrottledWarning(
      logger,
      clock,
      `${message} (from too many ${options.keysAre ?? "addresses"} to log each)`,
      this.#intervalMs,
      this.#level,
    );
  }

  /** Counts one occurrence under `key`; writes the line (with `count`) when the key's interval passed. */
  note(key: string, facts: Record<string, unknown>): void {
    const now = this.clock.monotonicNow();
    const state = this.#keys.get(key);
    if (state !== undefined) {
      state.count++;
      if (now - state.loggedAtMs < this.#intervalMs) return;
      this.logger[this.#level]({ ...facts, count: state.count }, this.message);
      state.loggedAtMs = now;
      state.count = 0;
      return;
    }
    if (this.#keys.size >= this.#maxKeys) this.#sweep(now);
    if (this.#keys.size >= this.#maxKeys) {
      this.#overflow.note(facts);
      return;
    }
    this.#keys.set(key, { loggedAtMs: now, count: 0 });
    this.logger[this.#level]({ ...facts, count: 1 }, this.message);
  }

  /**
   * Forgets keys whose interval passed, at most once per interval: their next occurrence is logged at once anyway,
   * though without the occurrences since their last line (the broker's counters keep every one).
   */
  #sweep(now: number): void {
    if (now - this.#sweptAtMs < this.#intervalMs) return;
    this.#sweptAtMs = now;
    for (const [key, state] of this.#keys) if (now - state.loggedAtMs >= this.#intervalMs) this.#keys.delete(key);
  }
}
