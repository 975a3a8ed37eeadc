/** `up/telemetry`: readings (`r` map and/or SenML pack) stored with device time when plausible, else server time. */
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
  );
  if (!result.ok) {
    core.sendError(conn, result.code, result.message);
    return [];
  }
  core.telemetry.insert(result.readings);
  return result.readings;
}
