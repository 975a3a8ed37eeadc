/**
 * One engine replica: its keep-alive connection pool, the requests it has in flight, and its health.
 * A replica that fails `failureThreshold` attempts in a row is cooled down (taken out of rotation); when the
 * cooldown ends it is health-checked (`GET /health`) and either comes back or cools again for twice as long.
 * A replica that answers 429/503 with `Retry-After` is not failing, only busy: it is held (no new attempts) until
 * then, stays in rotation, and requests wait in the client's queue meanwhile. A replica that takes requests and never
 * answers them is found out by its stall probe (stall-probe.ts).
 */
import { Pool } from "undici";
import type { Clock, TimerHandle } from "./clock.ts";
import { type HealthCheckResult, checkHealth } from "./health-check.ts";
import type { ReplicaState } from "./observer.ts";
import { type EngineClientOptions, replicaApiRoot } from "./options.ts";
import { RequestHeaders } from "./request-headers.ts";
import { StallProbe } from "./stall-probe.ts";

/** Counters of one replica, as `stats()` reports them. */
export interface ReplicaStats {
  /** The replica's URL without credentials. */
  url: string;
  state: ReplicaState;
  inFlight: number;
  consecutiveFailures: number;
  /** Attempts sent to this replica. */
  attempts: number;
  /** Attempts that failed (connection error, 5xx other than 503, broken stream); 429/503 back-pressure is not counted. */
  failures: number;
  /** When the current cooldown ends (ms since the epoch), when cooling. */
  cooldownUntil?: number;
  /** Until when the replica asked for no new requests (its Retry-After), while held. */
  heldUntil?: number;
}

export class Replica {
  /** The rendezvous key and the label used in metrics and errors; never holds credentials. */
  readonly key: string;
  readonly pool: Pool;
  /** Path prefix of the engine's API root ("" for `http://host:8000`). */
  readonly basePath: string;
  /** Where chat completions are posted (built once, not per request). */
  readonly chatPath: string;
  /** The client's request headers bar the request id (request-headers.ts). */
  readonly #headers: RequestHeaders;
  inFlight = 0;
  state: ReplicaState = "healthy";
  consecutiveFailures = 0;
  attempts = 0;
  failures = 0;
  /**
   * When the current cooldown ends, on the clock's monotonicNow (a step of the wall clock does not move it); `stats()`
   * reports it as a wall-clock time.
   */
  cooldownUntil: number | undefined;
  /** While the replica's own Retry-After holds new attempts back: until when (monotonicNow); cleared by its timer. */
  heldUntil: number | undefined;
  #cooldownMs: number;
  #timer: TimerHandle | undefined;
  #holdTimer: TimerHandle | undefined;
  readonly #stallProbe: StallProbe;
  #closed = false;

  constructor(
    url: string,
    private readonly options: EngineClientOptions,
    private readonly onStateChange: (replica: Replica) => void,
    /** Called when a Retry-After hold ends, so waiting requests can be let in. */
    private readonly onRelease: (replica: Replica) => void = () => {},
  ) {
    const parsed = new URL(url);
    ({ key: this.key, basePath: this.basePath } = replicaApiRoot(parsed));
    this.chatPath = `${this.basePath}/v1/chat/completions`;
    this.#headers = new RequestHeaders(options.apiKey);
    this.#cooldownMs = options.cooldown.cooldownMs;
    this.#stallProbe = new StallProbe(this, {
      clock: options.clock,
      timeoutMs: options.cooldown.stallProbeTimeoutMs,
      intervalMs: options.cooldown.stallProbeIntervalMs,
    });
    this.pool = new Pool(parsed.origin, {
      // Two spare sockets so health checks and model lookups never queue behind a full set of long streams.
      connections: options.maxInFlightPerReplica + 2,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      pipelining: 1,
    });
  }

  /** The headers of one request to this replica, as undici's flat list. */
  headers(requestId: string): string[] {
    return this.#headers.with(requestId);
  }

  get clock(): Clock {
    return this.options.clock;
  }

  /** In rotation: new attempts may be sent here (the stall probe asks). */
  get inRotation(): boolean {
    return this.state === "healthy";
  }

  get hasCapacity(): boolean {
    return (
      this.state === "healthy" && this.heldUntil === undefined && this.inFlight < this.options.maxInFlightPerReplica
    );
  }

  /**
   * Holds new attempts back for `delayMs` (the engine's Retry-After). Never longer than `cooldown.maxCooldownMs`: a
   * replica asking for an hour is still tried again within a bounded time. A longer hold already running is kept.
   */
  hold(delayMs: number): void {
    if (this.#closed || !(delayMs > 0)) return;
    const ms = Math.min(delayMs, this.options.cooldown.maxCooldownMs);
    const until = this.options.clock.monotonicNow() + ms;
    if (this.heldUntil !== undefined && this.heldUntil >= until) return;
    if (this.#holdTimer !== undefined) this.options.clock.clearTimeout(this.#holdTimer);
    this.heldUntil = until;
    this.#holdTimer = this.options.clock.setTimeout(() => {
      this.#holdTimer = undefined;
      this.heldUntil = undefined;
      if (!this.#closed) this.onRelease(this);
    }, ms);
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.#cooldownMs = this.options.cooldown.cooldownMs;
  }

  /**
   * A request's deadline passed before this replica sent response headers: maybe it hangs, maybe it is only busy.
   * Its health is probed (stall-probe.ts); only a failed probe counts against it.
   */
  suspectStall(): void {
    this.#stallProbe.suspect();
  }

  recordFailure(): void {
    this.failures++;
    this.consecutiveFailures++;
    if (this.state === "healthy" && this.consecutiveFailures >= this.options.cooldown.failureThreshold) {
      this.#coolDown();
    }
  }

  stats(): ReplicaStats {
    const stats: ReplicaStats = {
      url: this.key,
      state: this.state,
      inFlight: this.inFlight,
      consecutiveFailures: this.consecutiveFailures,
      attempts: this.attempts,
      failures: this.failures,
    };
    if (this.cooldownUntil !== undefined) stats.cooldownUntil = this.#wallTime(this.cooldownUntil);
    if (this.heldUntil !== undefined) stats.heldUntil = this.#wallTime(this.heldUntil);
    return stats;
  }

  /** A monotonicNow reading as the wall clock reads it now: what is left of a wait, counted from the current date. */
  #wallTime(monotonicMs: number): number {
    const { clock } = this.options;
    return Math.round(clock.now() + (monotonicMs - clock.monotonicNow()));
  }

  /** `GET /health` answered 200 within `timeoutMs` on the client's clock (health-check.ts); never rejects. */
  checkHealth(timeoutMs: number): Promise<HealthCheckResult> {
    return checkHealth(this, this.options.clock, timeoutMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stallProbe.close();
    if (this.#timer !== undefined) this.options.clock.clearTimeout(this.#timer);
    if (this.#holdTimer !== undefined) this.options.clock.clearTimeout(this.#holdTimer);
    await this.pool.destroy();
  }

  #coolDown(): void {
    this.state = "cooling";
    this.cooldownUntil = this.options.clock.monotonicNow() + this.#cooldownMs;
    this.onStateChange(this);
    this.#timer = this.options.clock.setTimeout(() => void this.#probe(), this.#cooldownMs);
  }

  async #probe(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    // Bounded like every health check: a replica that still hangs is found out in healthCheckTimeoutMs, not after
    // the headers timeout, and cools again.
    const { healthy } = await this.checkHealth(this.options.healthCheckTimeoutMs);
    if (this.#closed) return;
    if (healthy) {
      this.state = "healthy";
      this.cooldownUntil = undefined;
      // One more failure sends it straight back: it has to earn a clean slate with a success.
      this.consecutiveFailures = this.options.cooldown.failureThreshold - 1;
      this.onStateChange(this);
      return;
    }
    this.#cooldownMs = Math.min(this.options.cooldown.maxCooldownMs, Math.max(1, this.#cooldownMs * 2));
    this.#coolDown();
  }
}
