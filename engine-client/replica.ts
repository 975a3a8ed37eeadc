/**
 * One engine replica: its keep-alive connection pool, the requests it has in flight, and its health.
 * A replica that fails `failureThreshold` attempts in a row is cooled down (taken out of rotation); when the
 * cooldown ends it is health-checked (`GET /health`) and either comes back or cools again for twice as long.
 */
import { Pool } from "undici";
import type { Clock, TimerHandle } from "./clock.ts";
import type { ReplicaState } from "./observer.ts";
import type { EngineClientOptions } from "./options.ts";

/** Counters of one replica, as `stats()` reports them. */
export interface ReplicaStats {
  /** The replica's URL without credentials. */
  url: string;
  state: ReplicaState;
  inFlight: number;
  consecutiveFailures: number;
  /** Attempts sent to this replica. */
  attempts: number;
  /** Attempts that failed (connection error, 429, 5xx, broken stream). */
  failures: number;
  /** When the current cooldown ends (ms since the epoch), when cooling. */
  cooldownUntil?: number;
}

export class Replica {
  /** The rendezvous key and the label used in metrics and errors; never holds credentials. */
  readonly key: string;
  readonly pool: Pool;
  /** Path prefix of the engine's API root ("" for `http://host:8000`). */
  readonly basePath: string;
  inFlight = 0;
  state: ReplicaState = "healthy";
  consecutiveFailures = 0;
  attempts = 0;
  failures = 0;
  cooldownUntil: number | undefined;
  #cooldownMs: number;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(
    url: string,
    private readonly options: EngineClientOptions,
    private readonly onStateChange: (replica: Replica) => void,
  ) {
    const parsed = new URL(url);
    // OpenAI SDKs are configured with `.../v1`; accept that spelling and keep the API root.
    const path = parsed.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
    this.basePath = path;
    this.key = `${parsed.protocol}//${parsed.host}${path}`;
    this.#cooldownMs = options.cooldown.cooldownMs;
    this.pool = new Pool(parsed.origin, {
      // Two spare sockets so health checks and model lookups never queue behind a full set of long streams.
      connections: options.maxInFlightPerReplica + 2,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      pipelining: 1,
    });
  }

  get clock(): Clock {
    return this.options.clock;
  }

  get hasCapacity(): boolean {
    return this.state === "healthy" && this.inFlight < this.options.maxInFlightPerReplica;
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.#cooldownMs = this.options.cooldown.cooldownMs;
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
    if (this.cooldownUntil !== undefined) stats.cooldownUntil = this.cooldownUntil;
    return stats;
  }

  /** `GET /health` answered 200 within the headers timeout. */
  async checkHealth(): Promise<boolean> {
    try {
      const response = await this.pool.request({ method: "GET", path: `${this.basePath}/health` });
      await response.body.dump();
      return response.statusCode === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.options.clock.clearTimeout(this.#timer);
    await this.pool.destroy();
  }

  #coolDown(): void {
    this.state = "cooling";
    this.cooldownUntil = this.options.clock.now() + this.#cooldownMs;
    this.onStateChange(this);
    this.#timer = this.options.clock.setTimeout(() => void this.#probe(), this.#cooldownMs);
  }

  async #probe(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    const healthy = await this.checkHealth();
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
