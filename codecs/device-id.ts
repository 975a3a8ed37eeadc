/**
 * The device id rule (docs/protocol.md), written once for every part that checks one: the MQTT client id, the topic
 * level `devices/{id}/`, the agent id, the `/agents/{id}` and `/api/devices/{id}` paths and the CLI all import it.
 *
 * An id is 1 to 64 characters of `A-Z a-z 0-9 _ . -`, and not `.` or `..`: an id is a URL path segment and part of
 * the agent's file names, and there those two mean "this directory" and "the parent" (a WebSocket client could never
 * open `/agents/..`, which URL normalisation turns into `/`).
 */

/** The characters of a device id, as the body of a RegExp character class (`[${DEVICE_ID_CHARACTERS}]`). */
export const DEVICE_ID_CHARACTERS = "A-Za-z0-9_.-";

/** The longest id, in characters: also the limit of the other ids an operator passes in a path (docs/api.md). */
export const DEVICE_ID_MAX_LENGTH = 64;

/** The rule as RegExp and JSON Schema `pattern` source: the same text works in JavaScript and in ajv. */
export const DEVICE_ID_PATTERN = `^(?!\\.{1,2}$)[${DEVICE_ID_CHARACTERS}]{1,${DEVICE_ID_MAX_LENGTH}}$`;

const DEVICE_ID = new RegExp(DEVICE_ID_PATTERN);

/** The rule in words, for error messages: `device id must be ${DEVICE_ID_RULE}`. */
export const DEVICE_ID_RULE = `1 to ${DEVICE_ID_MAX_LENGTH} characters of A-Z a-z 0-9 _ . -, and not "." or ".."`;

/** True when `id` is a valid device id (it is also the MQTT client id and the agent id). */
export function isValidDeviceId(id: unknown): id is string {
  return typeof id === "string" && DEVICE_ID.test(id);
}
