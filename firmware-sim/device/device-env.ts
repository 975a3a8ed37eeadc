import type { CommandBook } from "./command-book.ts";
import type { CodecName } from "../../codecs/frames.ts";
import type { BackoffOptions } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import type { ViolationLog } from "../invariants/violations.ts";
import type { ConnectTarget, SocketFactory } from "../mqtt/lean-connection.ts";
import type { Profile } from "../profiles/index.ts";
import type { DeviceRandom } from "../random-streams.ts";
import type { TaskScheduler } from "../scheduler.ts";
import type { FleetMetrics } from "../stats.ts";

/** Firmware behaviour shared by the devices of a fleet (resolved options; see FleetOptions for meanings). */
export interface DeviceBehaviour {
  telemetryIntervalMs: number;
  backoff: BackoffOptions;
  offlineBufferSize: number;
  maxInflight: number;
  cleanSession: boolean;
  brokerSetsDup: boolean;
  keepaliveSec: number;
  connectTimeoutMs: number;
  duplicateRatio: number;
  networkDropMeanMs: number;
  lastWillTopic: string | undefined;
  reasonIntervalMs: number;
  reasonTimeoutMs: number;
  reasonMaxTokens: number;
}

/** One simulated device's own facts. */
export interface DeviceConfig {
  id: string;
  /** Password; undefined connects without credentials. */
  secret: string | undefined;
  profile: Profile;
  codec: CodecName;
  /** Added to the telemetry counter so `seq` readings are unique per run and per device instance. */
  seqBase: number;
  /** Offset of the device clock from true time, ms. */
  skewMs: number;
  /** A device without a real-time clock sends telemetry without `ts`. */
  hasClock: boolean;
  /** A second device using the same id (client-id takeover). */
  twin: boolean;
  /** Shared with the twin, so a command is booked once per id whichever instance received it. */
  commands?: CommandBook;
}

/** Tells the fleet about a device's connection changes. */
export interface DeviceListener {
  online(deviceId: string): void;
  offline(deviceId: string, reason: string): void;
}

/** Everything a device gets from its fleet. */
export interface DeviceEnv {
  clock: Clock;
  /** The fleet's shared scheduler, as this device's own view (its tasks are tagged with its id). */
  scheduler: TaskScheduler;
  /** This device's random streams, one per purpose (all one shared source where a test scripts the draws). */
  random: DeviceRandom;
  metrics: FleetMetrics;
  violations: ViolationLog;
  behaviour: DeviceBehaviour;
  target: ConnectTarget;
  socketFactory: SocketFactory;
  /** Source address for connection attempt `attempt`; `lastErrorCode` lets it move on from an exhausted address. */
  localAddress(attempt: number, lastErrorCode: string | undefined): string | undefined;
  listener: DeviceListener;
  /** A bug of the simulator: a handler of this device's packets threw (counted, logged once per kind). */
  handlerFailed(err: unknown): void;
}
