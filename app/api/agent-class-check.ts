/**
 * The one check of an agent class name a device is provisioned with, shared by `POST /api/devices {agentClass}` and
 * `agent-bridge devices add --agent-class`, so both refuse the same names in the same words. The names are the
 * bridge's agent classes (`loadServedAgentClasses` in app/bridge/agent-classes.ts). A name stored as given that the
 * bridge does not have would be served by the default class, with only a warning at every start.
 */

/**
 * Why `name` cannot be provisioned, naming `subject` (the body field or the flag) and the valid names; undefined when
 * it can.
 *
 * @example
 * unknownAgentClass("--agent-class", "DeviceAgnet", ["DeviceAgent"]);
 * // "--agent-class DeviceAgnet is not an agent class of this bridge (DeviceAgent)"
 */
export function unknownAgentClass(subject: string, name: string, known: readonly string[]): string | undefined {
  if (known.includes(name)) return undefined;
  return `${subject} ${name} is not an agent class of this bridge (${known.join(", ")})`;
}
