import { constrainedProfile } from "./constrained.ts";
import type { Profile, ProfileName } from "./profile.ts";
import { reasoningProfile } from "./reasoning.ts";
import { sensorProfile } from "./sensor.ts";
import { thermostatProfile } from "./thermostat.ts";

export { PROFILE_NAMES, type CommandTarget, type Profile, type ProfileName } from "./profile.ts";
export { REASONING_QUESTIONS } from "./reasoning.ts";

const PROFILES: Record<ProfileName, Profile> = {
  sensor: sensorProfile,
  thermostat: thermostatProfile,
  constrained: constrainedProfile,
  reasoning: reasoningProfile,
};

/** The built-in profile called `name`. */
export function getProfile(name: ProfileName): Profile {
  return PROFILES[name];
}
