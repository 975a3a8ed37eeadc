import type { ApiDriveResult } from "./api-driver.ts";
import type { SimulatorErrorSummary } from "./simulator-errors.ts";
import type { LatencySummary } from "../latency.ts";
import type { Violation, ViolationKind } from "../invariants/violations.ts";
import type { FleetStats } from "../stats.ts";

/** How the telemetry read-back went. */
export type TelemetryCheckResult =
  | { status: "skipped"; reason: string }
  | { status: "checked"; devices: number; ackedMessages: number; missingMessages: number; unavailableDevices: number };

/** How the command read-back went. */
export type CommandCheckResult =
  | { status: "skipped"; reason: string }
  | {
      status: "checked";
      devices: number;
      commands: number;
      /** Acked but still QUEUED or SENT. */
      unrecorded: number;
      /** Finished with another outcome than the ack's (ok -> SUCCEEDED, not ok -> FAILED). */
      mismatched: number;
      /** Acked but unknown to the bridge (404). */
      missing: number;
      unavailableDevices: number;
    };

/** The outcome of a run: what `stop()` resolves to and what `--json` prints. */
export interface FleetReport {
  /** True when the run passed: at least one device came online, no invariant was violated, no simulator error. */
  ok: boolean;
  /** Why `ok` is false, one sentence each (violations, no device online, simulator errors); empty when it is true. */
  reasons: string[];
  /** Number of violations found (all counted, details capped). */
  violations: number;
  violationCounts: Partial<Record<ViolationKind, number>>;
  violationDetails: readonly Violation[];
  /** Bugs of the simulator (device tasks or handlers that threw), one entry per kind; all are in `stats.counters`. */
  simulatorErrors: SimulatorErrorSummary[];
  telemetryCheck: TelemetryCheckResult;
  commandCheck: CommandCheckResult;
  /** From start() to the end of stop(), ms. */
  durationMs: number;
  /** Time devices were producing (start to stop), ms. */
  activeMs: number;
  /** Messages still queued or unacknowledged when the drain timed out (not violations: never acknowledged). */
  undelivered: number;
  /** Up messages acknowledged during the active time, per second of it (the drain's PUBACKs after it do not count). */
  ackedPerSec: number;
  pubackLatency: LatencySummary;
  stats: FleetStats;
  /** What the API driver did (`driveApi`); absent when the run did not drive the API. */
  apiDrive?: ApiDriveResult;
}
