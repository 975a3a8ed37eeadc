/**
 * A warning that may fire once per refused connection during a flood: logged at most once per interval, with how
 * many times it happened since the last line, so a flood does not flood the log too.
 */
import type { Clock } from "./clock.ts";
import type { BrokerLogger } from "./options.ts";

/** Default interval between two lines of one throttled warning. */
export const THROTTLED_WARNING_INTERVAL_MS = 10_000;

/** The log level a throttled line is written at: a warning, or an `info` line that a flood could repeat as well. */
export type ThrottledLineLevel = "warn" | "info";

export class ThrottledWarning {
  #count = 0;
  #loggedAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly logger: BrokerLogger,
    private readonly clock: Clock,
    private readonly message: string,
    private readonly intervalMs: number = THROTTLED_WARNING_INTERVAL_MS,
    private readonly level: ThrottledLineLevel = "warn",
  ) {}

  /** Counts one occurrence; writes the line (with `count`, occurrences since the last line) when the interval passed. */
  note(facts: Record<string, unknown>): void {
    this.#count++;
    const now = this.clock.monotonicNow();
    if (now - this.#loggedAtMs < this.intervalMs) return;
    this.#loggedAtMs = now;
    this.logger[this.level]({ ...facts, count: this.#count }, this.message);
    this.#count = 0;
  }
}
