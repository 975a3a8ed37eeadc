import { executeCommon, type Profile, round1 } from "./profile.ts";

/** A device that asks questions (`up/reason`) and consumes streamed `down/reason` chunks until the final frame. */
export const reasoningProfile: Profile = {
  name: "reasoning",
  firmware: "sim-assistant/1.3",
  binaryOnly: false,
  maxFrameBytes: undefined,
  streams: true,
  hasShadow: false,
  asksReasoning: true,
  readings: (random) => ({ temp: round1(20 + random() * 2) }),
  initialState: () => ({}),
  execute: (name, args) => executeCommon(name, args),
};

/** Questions a reasoning device asks, in turn. */
export const REASONING_QUESTIONS: readonly string[] = [
  "Is my temperature trend normal for this time of day?",
  "Summarise my last readings in one sentence.",
  "Should I lower my reporting rate to save battery?",
];
