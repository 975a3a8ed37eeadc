import type { RandomSource } from "../clock.ts";
import type { AckFrame, TelemetryFrame, Value, ValueMap } from "../../codecs/frames.ts";

export const PROFILE_NAMES = ["sensor", "thermostat", "constrained", "reasoning"] as const;
/** The kinds of simulated firmware. */
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** What a command handler may do to the device it runs on. */
export interface CommandTarget {
  /** Applies a patch to the device's reported state and reports it (devices with a shadow). */
  applyState(patch: ValueMap): boolean;
}

/**
 * A firmware profile: plain data plus small functions. The device engine (device/virtual-device.ts) is the same for
 * every profile; a profile only says what the firmware reads, reports and understands.
 */
export interface Profile {
  readonly name: ProfileName;
  /** Firmware version sent in the hello. */
  readonly firmware: string;
  /** Speaks binary codecs only: a JSON text frame is a violation, and a JSON codec choice is replaced by CBOR. */
  readonly binaryOnly: boolean;
  /** Largest down frame it can take (announced as `maxFrame`), in bytes; undefined: no announced limit. */
  readonly maxFrameBytes: number | undefined;
  /** Can take streamed reasoning chunks (announced as `stream`). */
  readonly streams: boolean;
  /** Keeps a reported state and follows desired-state deltas. */
  readonly hasShadow: boolean;
  /** Asks reasoning questions. */
  readonly asksReasoning: boolean;
  /** Readings of one telemetry message (the device adds `seq`). */
  readings(random: RandomSource): ValueMap;
  /**
   * The metric alias table the hello declares (docs/protocol.md, "Metric aliases"): readings of these metrics travel
   * by position in `rv`, the others (`seq`) by name in `r`. Undefined: every reading by name.
   */
  readonly metricAliases?: readonly string[];
  /** The reported state at power-on (devices with a shadow). */
  initialState(): ValueMap;
  /** Runs command `name`; the result becomes the ack (without its id). */
  execute(name: string, args: Value | undefined, target: CommandTarget): Omit<AckFrame, "id">;
}

/** Commands every profile understands. */
export function executeCommon(name: string, args: Value | undefined): Omit<AckFrame, "id"> {
  switch (name) {
    case "ping":
      return { ok: true, res: "pong" };
    case "echo":
      return { ok: true, res: args ?? null };
    default:
      return { ok: false, err: `unknown command ${name}` };
  }
}

/** Rounds to one decimal, as a cheap sensor would report. */
export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * The readings of one telemetry frame as the profile's firmware sends them: by position (`rv`, in alias order, null
 * for a metric without a reading) for its aliased metrics, by name (`r`) for the rest.
 */
export function telemetryReadings(profile: Profile, readings: ValueMap): Pick<TelemetryFrame, "r" | "rv"> {
  const aliases = profile.metricAliases;
  if (aliases === undefined || aliases.length === 0) return { r: readings };
  const named: ValueMap = {};
  for (const [key, value] of Object.entries(readings)) if (!aliases.includes(key)) named[key] = value;
  const rv = aliases.map((name) => (Object.hasOwn(readings, name) ? readings[name] : null));
  return Object.keys(named).length > 0 ? { r: named, rv } : { rv };
}
