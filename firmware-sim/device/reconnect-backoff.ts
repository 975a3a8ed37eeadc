/**
 * A device's reconnect backoff: the retry count behind each wait (full jitter, backoff.ts) and when it goes back to 0.
 * Real SDKs (AWS IoT Device SDK v2, Paho's automatic reconnect) reset it only once a connection has stayed up
 * `stableConnectionMs`: a broker that kicks the device right after its hello must see it back later and later, not
 * every base/2 on average. The wait is drawn at close from the device's backoff stream (random-streams.ts).
 */
import { backoffDelayMs } from "../backoff.ts";
import type { ScheduledTask } from "../scheduler.ts";
import type { DeviceEnv } from "./device-env.ts";

export class ReconnectBackoff {
  readonly #env: Pick<DeviceEnv, "behaviour" | "scheduler" | "random">;
  #attempt = 0;
  #stable: ScheduledTask | undefined;

  constructor(env: Pick<DeviceEnv, "behaviour" | "scheduler" | "random">) {
    this.#env = env;
  }

  /** Attempts since the last reset (a fleet spread over local addresses picks one by it). */
  get attempt(): number {
    return this.#attempt;
  }

  /** The connection came online: the count resets once it stayed up, if `stillOnline` says so then. */
  cameOnline(stillOnline: () => boolean): void {
    const stableMs = this.#env.behaviour.backoff.stableConnectionMs;
    if (stableMs === 0) {
      this.#attempt = 0;
      return;
    }
    this.#stable = this.#env.scheduler.after(stableMs, () => {
      if (stillOnline()) this.#attempt = 0;
    });
  }

  /** The connection closed: a pending reset no longer applies. */
  closed(): void {
    this.#env.scheduler.cancel(this.#stable);
  }

  /** The wait before the next attempt, which it counts. */
  nextDelayMs(): number {
    return backoffDelayMs(this.#attempt++, this.#env.behaviour.backoff, this.#env.random.backoff);
  }
}
