/**
 * `up/telemetry`: readings (`r` map, positional `rv` named through the device's alias table, SenML pack) stored by
 * metric name with device time when plausible, else server time.
 */
import type { TelemetryFrame } from "../../../codecs/frames.ts";
import type { Connection } from "../../types.ts";
import type { DeviceCore } from "../device-core.ts";
import type { Reading } from "../telemetry-readings.ts";
import { readingsFromFrame } from "../telemetry-readings.ts";

export function handleTelemetry(core: DeviceCore, conn: Connection, frame: TelemetryFrame): Reading[] {
  const result = readingsFromFrame(
    frame,
    { now: core.ports.now(), maxPastMs: core.options.deviceTsMaxPastMs, maxFutureMs: core.options.deviceTsMaxFutureMs },
    core.options.telemetryMaxReadingsPerFrame,
    // Read only when needed: most frames carry no rv.
    frame?.rv === undefined ? null : core.aliases.table(),
  );
  if (!result.ok) {
    core.sendError(conn, result.code, result.message);
    return [];
  }
  core.telemetry.insert(result.readings);
  return result.readings;
}
