import { executeCommon, type Profile } from "./profile.ts";

/**
 * A microcontroller with a few kilobytes of RAM: binary frames only (a JSON text frame is a violation), a small
 * receive buffer announced as `maxFrame`, terse readings sent by position through a metric alias table declared in
 * its hello (`metrics`), as compact firmware does. It asks reasoning questions too, but says `stream: false`:
 * the bridge must answer with one final frame, and any partial chunk is a violation.
 */
export const constrainedProfile: Profile = {
  name: "constrained",
  firmware: "sim-mcu/0.9",
  binaryOnly: true,
  maxFrameBytes: 256,
  streams: false,
  hasShadow: false,
  asksReasoning: true,
  readings: (random) => ({ v: Math.floor(3000 + random() * 300) }),
  metricAliases: ["v"],
  initialState: () => ({}),
  execute: (name, args) => executeCommon(name, args),
};
