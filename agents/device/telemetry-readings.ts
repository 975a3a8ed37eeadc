/**
 * Turns a telemetry frame into flat readings: the bridge `r` map (nested maps flattened with dots), positional
 * readings `rv` resolved by name through the device's metric alias table (then flattened like `r`), and SenML packs
 * resolved per RFC 8428 section 4.6 (base name and base time carry over to later records; times are seconds;
 * a resolved time below 2**28 is relative to now).
 */
import type { SenmlRecord, TelemetryFrame, Value } from "../../codecs/frames.ts";
import { resolveAliases } from "./metric-aliases.ts";
import { isValueMap } from "./values.ts";

/** One reading ready to store. */
export interface Reading {
  metric: string;
  /** ms since the Unix epoch. */
  ts: number;
  value: Value;
  unit?: string;
}

/** How device times are judged. */
export interface TimePolicy {
  now: number;
  maxPastMs: number;
  maxFutureMs: number;
}

export type ReadingsResult =
  | { ok: true; readings: Reading[]; skipped: number }
  | {
      ok: false;
      code: "BRIDGE_ERR_FRAME_INVALID" | "BRIDGE_ERR_TELEMETRY_TOO_MANY" | "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN";
      message: string;
    };

const METRIC_NAME_MAX = 128;
const FLATTEN_DEPTH = 4;
// RFC 8428 section 4.5.3: times below 2**28 seconds are relative to the current time.
const SENML_RELATIVE_LIMIT_S = 2 ** 28;

/** A device time is used only when it is plausible; devices without a clock (or a 1970 clock) get server time. */
export function plausibleTime(deviceTs: number | undefined, policy: TimePolicy): number {
  if (deviceTs === undefined || !Number.isFinite(deviceTs)) return policy.now;
  if (deviceTs < policy.now - policy.maxPastMs || deviceTs > policy.now + policy.maxFutureMs) return policy.now;
  return Math.round(deviceTs);
}

/**
 * Flattens a telemetry frame; refuses it whole when it is malformed, carries more than `maxReadings`, or carries
 * positional readings (`rv`) that `aliases` (the device's alias table, null when it declared none) cannot name.
 */
export function readingsFromFrame(
  frame: TelemetryFrame,
  policy: TimePolicy,
  maxReadings: number,
  aliases: readonly string[] | null = null,
): ReadingsResult {
  if (!isValueMap(frame as unknown))
    return { ok: false, code: "BRIDGE_ERR_FRAME_INVALID", message: "telemetry frame is not a map" };
  const readings: Reading[] = [];
  let skipped = 0;
  const ts = typeof frame.ts === "number" || typeof frame.ts === "bigint" ? Number(frame.ts) : undefined;
  const frameTime = plausibleTime(ts, policy);
  if (frame.r !== undefined) {
    if (!isValueMap(frame.r))
      return { ok: false, code: "BRIDGE_ERR_FRAME_INVALID", message: "telemetry r must be a map" };
    skipped += flatten("", frame.r, 0, frameTime, readings);
  }
  if (frame.rv !== undefined) {
    if (!Array.isArray(frame.rv))
      return { ok: false, code: "BRIDGE_ERR_FRAME_INVALID", message: "telemetry rv must be an array" };
    const named = resolveAliases(frame.rv, aliases);
    if (!named.ok) return named;
    skipped += flatten("", named.readings, 0, frameTime, readings);
  }
  if (frame.senml !== undefined) {
    if (!Array.isArray(frame.senml))
      return { ok: false, code: "BRIDGE_ERR_FRAME_INVALID", message: "telemetry senml must be an array" };
    const result = resolveSenml(frame.senml, policy);
    readings.push(...result.readings);
    skipped += result.skipped;
  }
  if (readings.length > maxReadings) {
    return {
      ok: false,
      code: "BRIDGE_ERR_TELEMETRY_TOO_MANY",
      message: `telemetry frame carries ${readings.length} readings, more than the limit of ${maxReadings}`,
    };
  }
  return { ok: true, readings, skipped };
}

function flatten(prefix: string, map: { [key: string]: Value }, depth: number, ts: number, out: Reading[]): number {
  let skipped = 0;
  for (const [key, value] of Object.entries(map)) {
    const metric = prefix === "" ? key : `${prefix}.${key}`;
    if (key.length === 0 || metric.length > METRIC_NAME_MAX || value === null) {
      skipped += 1;
    } else if (isValueMap(value) && depth < FLATTEN_DEPTH) {
      skipped += flatten(metric, value, depth + 1, ts, out);
    } else {
      out.push({ metric, ts, value });
    }
  }
  return skipped;
}

/** Resolves a SenML pack into absolute readings (RFC 8428 section 4.6). Records without a value are skipped. */
export function resolveSenml(
  pack: readonly SenmlRecord[],
  policy: TimePolicy,
): { readings: Reading[]; skipped: number } {
  const readings: Reading[] = [];
  let skipped = 0;
  let baseName = "";
  let baseTime = 0;
  for (const raw of pack) {
    if (!isValueMap(raw as unknown)) {
      skipped += 1;
      continue;
    }
    const record = raw as SenmlRecord;
    if (typeof record.bn === "string") baseName = record.bn;
    if (typeof record.bt === "number") baseTime = record.bt;
    const name = baseName + (typeof record.n === "string" ? record.n : "");
    const value = senmlValue(record);
    if (name.length === 0 || name.length > METRIC_NAME_MAX || value === undefined) {
      skipped += 1;
      continue;
    }
    const seconds = baseTime + (typeof record.t === "number" ? record.t : 0);
    const ts =
      seconds < SENML_RELATIVE_LIMIT_S
        ? plausibleTime(policy.now + Math.round(seconds * 1000), policy)
        : plausibleTime(Math.round(seconds * 1000), policy);
    const reading: Reading = { metric: name, ts, value };
    if (typeof record.u === "string") reading.unit = record.u;
    readings.push(reading);
  }
  return { readings, skipped };
}

function senmlValue(record: SenmlRecord): Value | undefined {
  if (typeof record.v === "number" || typeof record.v === "bigint") return Number(record.v);
  if (typeof record.vs === "string") return record.vs;
  if (typeof record.vb === "boolean") return record.vb;
  if (record.vd instanceof Uint8Array) return record.vd;
  return undefined;
}
