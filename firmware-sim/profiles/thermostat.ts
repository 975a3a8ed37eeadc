import type { ValueMap } from "../../codecs/frames.ts";
import { executeCommon, type Profile, round1 } from "./profile.ts";

/**
 * A thermostat: telemetry, a reported state (`mode`, `target`), follows desired-state deltas, and understands
 * `set` (a state patch as arguments) besides the common commands.
 */
export const thermostatProfile: Profile = {
  name: "thermostat",
  firmware: "sim-thermostat/2.1",
  binaryOnly: false,
  maxFrameBytes: undefined,
  streams: true,
  hasShadow: true,
  asksReasoning: false,
  readings: (random) => ({ temp: round1(19 + random() * 4), duty: Math.floor(random() * 100) }),
  initialState: () => ({ mode: "heat", target: 21 }),
  execute(name, args, target) {
    if (name !== "set") return executeCommon(name, args);
    if (typeof args !== "object" || args === null || Array.isArray(args) || args instanceof Uint8Array) {
      return { ok: false, err: "set expects a map of state fields" };
    }
    target.applyState(args as ValueMap);
    return { ok: true, res: null };
  },
};
