/**
 * The telemetry loop of one device: a reading every `telemetryIntervalMs` on the fleet's scheduler, the first at a
 * random phase. Each reading carries a `seq` unique per run and device instance (the verifier matches PUBACKs and
 * stored rows by it) and, when the device has a clock, the device's own time. Its own file, like the reasoning
 * questions (reason-asker.ts): a producer decides what to send and when; the device's connection loop
 * (virtual-device.ts) only carries it.
 */
import type { UpFrames } from "../../codecs/frames.ts";
import { telemetryReadings } from "../profiles/profile.ts";
import type { ScheduledTask } from "../scheduler.ts";
import type { DeviceConfig, DeviceEnv } from "./device-env.ts";

export class TelemetryProducer {
  #task: ScheduledTask | undefined;
  #count = 0;
  #producing = false;

  constructor(
    private readonly env: Pick<DeviceEnv, "scheduler" | "behaviour" | "random" | "metrics">,
    private readonly config: Pick<DeviceConfig, "profile" | "seqBase">,
    /** The device clock's time, undefined for a device without one (its telemetry has no `ts`). */
    private readonly deviceNowMs: () => number | undefined,
    private readonly publish: (frame: UpFrames["telemetry"], seq: number) => void,
  ) {}

  /** Starts the loop (the device powered on). */
  start(): void {
    this.#producing = true;
    const interval = this.env.behaviour.telemetryIntervalMs;
    // A random phase spreads the fleet's publishes evenly over the interval instead of in lockstep bursts.
    if (interval > 0) this.#task = this.env.scheduler.after(this.env.random.telemetry() * interval, () => this.#tick());
  }

  /** Ends the loop (the end of a run); what was queued still goes out. */
  stop(): void {
    this.#producing = false;
    this.env.scheduler.cancel(this.#task);
  }

  #tick(): void {
    if (!this.#producing) return;
    const { scheduler, behaviour, random, metrics } = this.env;
    const profile = this.config.profile;
    this.#task = scheduler.after(behaviour.telemetryIntervalMs, () => this.#tick());
    const seq = this.config.seqBase + this.#count++;
    const ts = this.deviceNowMs();
    const readings = { seq, ...profile.readings(random.telemetry) };
    metrics.counters.telemetrySent++;
    this.publish({ ...(ts === undefined ? {} : { ts }), ...telemetryReadings(profile, readings) }, seq);
  }
}
