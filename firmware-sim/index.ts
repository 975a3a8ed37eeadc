/**
 * Fleet simulator: virtual MQTT devices with real firmware behaviours, as a library (`createFleet`) and a CLI
 * (`runSimCli`). It is a device: it depends on the codecs and an MQTT client only, never on server code, so it can
 * point at any broker. See docs/firmware-sim.md.
 */
export { type BackoffOptions, backoffCapMs, backoffDelayMs, DEFAULT_BACKOFF } from "./backoff.ts";
export {
  type CancelTimer,
  type Clock,
  createManualClock,
  type ManualClock,
  type RandomSource,
  seededRandom,
  systemClock,
} from "./clock.ts";
export { readApiTokenFile, simApiToken } from "./api-token.ts";
export { createSimCommand, runSimCli, type SimCliIo } from "./cli.ts";
export { type DeviceCredential, loadCredentials, parseCredentials } from "./credentials.ts";
export { SimErrorCode } from "./errors.ts";
export {
  type ApiDriveOptions,
  type ApiDriver,
  type ApiDriveResult,
  type ApiDriveTarget,
  startApiDriver,
  validateApiDriveOptions,
} from "./fleet/api-driver.ts";
export { createFleet, type Fleet, type FleetEvents } from "./fleet/fleet.ts";
export { FLEET_DEFAULTS, type FleetOptions } from "./fleet/options.ts";
export type { SimulatorErrorSummary } from "./fleet/simulator-errors.ts";
export type { CommandCheckResult, FleetReport, TelemetryCheckResult } from "./fleet/report.ts";
export {
  type AckedCommand,
  type CommandReadback,
  type CommandVerifier,
  ackMatchesState,
  httpCommandVerifier,
  type MismatchedCommand,
} from "./invariants/command-check.ts";
export {
  type HttpVerifierOptions,
  httpTelemetryVerifier,
  type TelemetryReadback,
  type TelemetryVerifier,
  verifierFromReader,
} from "./invariants/telemetry-check.ts";
export { SeqRanges } from "./invariants/seq-ranges.ts";
export type { Violation, ViolationKind } from "./invariants/violations.ts";
export { LatencyHistogram, type LatencySummary } from "./latency.ts";
export {
  type CloseReason,
  type ConnectTarget,
  defaultSocketFactory,
  type SocketFactory,
} from "./mqtt/lean-connection.ts";
export { type BufferPush, OfflineBuffer } from "./offline-buffer.ts";
export { PROFILE_NAMES, type ProfileName } from "./profiles/index.ts";
export {
  DRAW_PURPOSES,
  type DeviceRandom,
  type DrawPurpose,
  deriveSeed,
  type FleetRandom,
  seededFleetRandom,
  sharedFleetRandom,
} from "./random-streams.ts";
export { formatProgress, formatSummary } from "./report/format.ts";
export { type ScheduledTask, type TaskScheduler, TickScheduler } from "./scheduler.ts";
export type { FleetCounters, FleetStats } from "./stats.ts";
export { looksLikeJsonText } from "./wire.ts";
