/**
 * Devices that ask for an agent class this bridge does not serve: a name stored before names were checked, or a class
 * since removed from the config or the code. The runtime serves such a device as if it had asked for none (by the
 * class of the first configured pattern its id matches, else the default class); this names that class, so the
 * operator surfaces (the start warning, `GET /api/devices`, `devices list`, the fallback gauge) can show which devices
 * a removed class left behind and what serves them now.
 */
import type { AgentClass } from "../../agents/index.ts";
import { globToRegExp } from "../../agents/ids.ts";
import type { LoadedAgentClass } from "./agent-classes.ts";

/** A device as the registry holds it: its id and the class name it was provisioned with (null: none). */
export interface DeviceClassRecord {
  id: string;
  agentClass?: string | null;
}

/**
 * The name of the class serving `device` in place of the one it asks for; null when the device asks for none or for a
 * class the bridge serves.
 */
export type AgentClassFallback = (device: DeviceClassRecord) => string | null;

/**
 * The {@link AgentClassFallback} of a bridge serving the classes of `byName`, with the `configured` patterns and
 * `defaultClass` for ids no pattern matches. The patterns are tested as the runtime tests them (the same glob, first
 * match wins), so the name is the class that really answers the device. `loadServedAgentClasses` builds it as
 * `ServedAgentClasses.fallback`.
 *
 * @example
 * const { fallback } = await loadServedAgentClasses(DeviceAgent, config.agents.classes);
 * fallback({ id: "thermo-1", agentClass: "RemovedClass" }); // "Thermostat" (pattern thermo-*), else "DeviceAgent"
 */
export function agentClassFallback(
  defaultClass: AgentClass,
  configured: readonly LoadedAgentClass[],
  byName: ReadonlyMap<string, AgentClass>,
): AgentClassFallback {
  const patterns = configured.map((entry) => ({ re: globToRegExp(entry.pattern), name: entry.agentClass.name }));
  return (device) => {
    const asked = device.agentClass;
    if (asked === null || asked === undefined || byName.has(asked)) return null;
    return patterns.find((p) => p.re.test(device.id))?.name ?? defaultClass.name;
  };
}
