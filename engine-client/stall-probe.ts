/**
 * The stall probe of one replica. A replica that accepts connections and never answers fails no attempt on its own
 * while callers' deadlines are shorter than the headers timeout: every caller times out and affinity keeps sending
 * the same agents there. A deadline that passes before headers is not a failure either (a busy replica with a long
 * queue, or a non-streamed answer whose headers come only when it is complete, looks the same from here), so it
 * only raises a suspicion: the replica is asked `GET /health` with a short timeout, and a probe that gets no 200
 * counts as one failed attempt, the path connection errors take, so cooldown and the health check back in work as
 * for any failure. A probe answered 200 leaves the replica alone.
 *
 * At most one probe of a replica runs at a time and one starts at most every `intervalMs`, so a burst of timeouts
 * costs the engine one health request, not one per caller.
 */
import type { Clock } from "./clock.ts";
import type { HealthCheckResult } from "./health-check.ts";

/** What the probe needs of its replica. */
export interface StallProbeTarget {
  /** Only a replica in rotation is probed: a cooling one has its own health check. */
  readonly inRotation: boolean;
  /** `GET /health`, healthy when answered 200 within `timeoutMs`. */
  checkHealth(timeoutMs: number): Promise<HealthCheckResult>;
  /** Counts one failed attempt (and cools the replica down at the threshold). */
  recordFailure(): void;
}

export interface StallProbeOptions {
  clock: Clock;
  timeoutMs: number;
  intervalMs: number;
}

export class StallProbe {
  #running = false;
  #lastStartedAt: number | undefined;
  #closed = false;

  constructor(
    private readonly target: StallProbeTarget,
    private readonly options: StallProbeOptions,
  ) {}

  /** A request's deadline passed before the replica sent headers: probe it, unless a probe runs or ran too recently. */
  suspect(): void {
    if (this.#closed || this.#running || !this.target.inRotation) return;
    const now = this.options.clock.monotonicNow();
    if (this.#lastStartedAt !== undefined && now - this.#lastStartedAt < this.options.intervalMs) return;
    this.#lastStartedAt = now;
    this.#running = true;
    void this.#probe();
  }

  /** No probe starts after this; one running ends without counting (the replica's pool is being destroyed). */
  close(): void {
    this.#closed = true;
  }

  async #probe(): Promise<void> {
    let healthy: boolean;
    try {
      ({ healthy } = await this.target.checkHealth(this.options.timeoutMs));
    } finally {
      this.#running = false;
    }
    // A replica cooled meanwhile (by its own failing requests) has its own health check; this one adds nothing.
    if (!healthy && !this.#closed && this.target.inRotation) this.target.recordFailure();
  }
}
