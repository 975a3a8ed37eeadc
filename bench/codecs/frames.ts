/** The realistic frames the codec benchmark measures. */
import type { DesiredStateFrame, ReasonStreamFrame, TelemetryFrame } from "../../codecs/index.ts";

/** A sensor node's periodic report: 8 readings of mixed kinds and a device timestamp. */
export const telemetry: TelemetryFrame = {
  ts: 1764201600000,
  r: { temp: 21.5, hum: 48.2, pres: 1013.25, co2: 612, pm25: 8.4, batt: 3.71, rssi: -67, door: false },
};

/** A shadow delta the agent pushes down: a few settings and a nested schedule. */
export const shadowDelta: DesiredStateFrame = {
  v: 42,
  d: { led: "on", setpoint: 21.5, mode: "eco", schedule: { on: "07:00", off: "22:30" } },
};

/** One streamed reasoning chunk of 200 characters. */
export const reasonChunk: ReasonStreamFrame = {
  id: "q-17",
  seq: 3,
  text: "The room is cold because the window sensor reports open since 06:40 while the heating runs at setpoint 21.5; close the window or lower the setpoint in eco mode to save energy until people come at 8:00",
};

/**
 * The same report as a C firmware holds it: each decimal reading stored in a 32-bit `float` (48.2 becomes
 * 48.20000076293945). Binary codecs carry it in 4 bytes; JSON has to print every digit to keep it exact.
 */
export const telemetryFloat32: TelemetryFrame = {
  ts: 1764201600000,
  r: Object.fromEntries(
    Object.entries(telemetry.r ?? {}).map(([k, v]) => [k, typeof v === "number" ? Math.fround(v) : v]),
  ),
};
