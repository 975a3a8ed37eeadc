import { DEVICE_ID_RULE, isValidDeviceId } from "../codecs/device-id.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";

/** Agent ids follow the device id rule of the wire protocol (codecs/device-id.ts). */
export function isValidAgentId(id: unknown): id is string {
  return isValidDeviceId(id);
}

/** Throws BRIDGE_ERR_INVALID_AGENT_ID for a bad id. */
export function assertAgentId(id: unknown): asserts id is string {
  if (!isValidAgentId(id)) {
    throw new BridgeError(AGENT_ERRORS.INVALID_AGENT_ID, `agent id must be ${DEVICE_ID_RULE}`, {
      id: typeof id === "string" ? id.slice(0, 80) : typeof id,
    });
  }
}

/** A 16-character id from the injected random source (deterministic in tests). */
export function randomId(random: () => number): string {
  const a = Math.floor(random() * 2 ** 40)
    .toString(36)
    .padStart(8, "0");
  const b = Math.floor(random() * 2 ** 40)
    .toString(36)
    .padStart(8, "0");
  return (a + b).slice(0, 16);
}

/** Glob on ids: `*` any run of characters, `?` one character; everything else literal. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
