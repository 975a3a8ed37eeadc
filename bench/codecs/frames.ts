/** The realistic frames the codec benchmark measures. */
import type { DesiredStateFrame, HelloFrame, ReasonStreamFrame, TelemetryFrame } from "../../codecs/index.ts";

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

/**
 * Metric aliases (docs/protocol.md, "Metric aliases"): a sensor node's 8 readings as its firmware holds them, 3 small
 * integers and 5 decimal readings. `sensorNames` is the alias table its hello declares once.
 */
export const sensorNames = ["temp", "hum", "pres", "co2", "pm25", "batt", "rssi", "door"];
const sensorDecimal = [21.37, 48.2, 1013.25, 612, 8.4, 3.71, -67, 0];

/**
 * The device's natural JSON telemetry frame: readings keyed by name, each decimal printed as the firmware prints it
 * (`%g`-style, shortest text). This is the baseline the compact form is measured against.
 */
export const telemetrySensorJson: TelemetryFrame = {
  ts: 1764201600000,
  r: Object.fromEntries(sensorNames.map((n, i) => [n, sensorDecimal[i]])),
};

/** The same readings as a C sensor driver produces them: decimals in 32-bit `float`s, integers as integers. */
const sensorFloat32 = sensorDecimal.map((v) => (Number.isInteger(v) ? v : Math.fround(v)));

/** Named readings, float32 values: the same-map comparison for the compact form's values. */
export const telemetrySensorFloat32: TelemetryFrame = {
  ts: 1764201600000,
  r: Object.fromEntries(sensorNames.map((n, i) => [n, sensorFloat32[i]])),
};

/** The compact form: positional readings (`rv`) in alias order, float32 values. */
export const telemetryAliased: TelemetryFrame = { ts: 1764201600000, rv: sensorFloat32 };

/** The compact form with float64 decimals (a firmware that keeps `double`s and wants them exact). */
export const telemetryAliasedFloat64: TelemetryFrame = { ts: 1764201600000, rv: sensorDecimal };

/** The hello that declares the alias table, sent once per boot (or when the agent answers ALIASES_UNKNOWN). */
export const helloWithAliases: HelloFrame = { fw: "2.0.1", codec: "cbor", metrics: sensorNames };
