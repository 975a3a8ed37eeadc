import { executeCommon, type Profile, round1 } from "./profile.ts";

/** A plain environmental sensor: temperature and humidity at the fleet's rate, no shadow. */
export const sensorProfile: Profile = {
  name: "sensor",
  firmware: "sim-sensor/1.0",
  binaryOnly: false,
  maxFrameBytes: undefined,
  streams: true,
  hasShadow: false,
  asksReasoning: false,
  readings: (random) => ({ temp: round1(18 + random() * 8), hum: round1(35 + random() * 30) }),
  initialState: () => ({}),
  execute: (name, args) => executeCommon(name, args),
};
