/**
 * Which agent class serves which device. Loads the agent classes named in the config (`agents.classes`: pattern,
 * module, export) at start, so a typo in a module path or export name stops the bridge at once with the entry named,
 * instead of failing on the first device; and maps the devices provisioned with `--agent-class NAME` to theirs.
 */
import { pathToFileURL } from "node:url";
import type { Logger } from "pino";
import { Agent, type AgentClass } from "../../agents/index.ts";
import type { DeviceRegistry } from "../../broker/registry/index.ts";
import { BridgeError } from "../../errors/index.ts";
import type { AgentClassConfig } from "../config/index.ts";
import { AGENT_CLASS_ERROR } from "./agent-class-error.ts";
import { type AgentClassFallback, agentClassFallback } from "./agent-class-fallback.ts";

/** An agent class mapped to device ids by a glob pattern, as the runtime takes it. */
export interface LoadedAgentClass {
  pattern: string;
  agentClass: AgentClass;
}

function specifier(module: string): string {
  // Absolute paths (config loading resolved relative ones) need a file URL on every platform.
  return module.startsWith("/") || /^[A-Za-z]:[\\/]/.test(module) ? pathToFileURL(module).href : module;
}

/** Imports every configured class; throws BridgeError BRIDGE_ERR_AGENT_CLASS naming the entry on any problem. */
async function loadAgentClasses(entries: readonly AgentClassConfig[]): Promise<LoadedAgentClass[]> {
  const loaded: LoadedAgentClass[] = [];
  for (const [index, entry] of entries.entries()) {
    const field = `agents.classes[${index}]`;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(specifier(entry.module))) as Record<string, unknown>;
    } catch (cause) {
      throw new BridgeError(
        AGENT_CLASS_ERROR,
        `${field}.module ${entry.module} cannot be loaded`,
        { field },
        { cause },
      );
    }
    const exported = mod[entry.export];
    if (typeof exported !== "function" || !(exported.prototype instanceof Agent)) {
      throw new BridgeError(
        AGENT_CLASS_ERROR,
        `${field}.export ${entry.export} of ${entry.module} is not an Agent subclass`,
        { field },
      );
    }
    loaded.push({ pattern: entry.pattern, agentClass: exported as AgentClass });
  }
  return loaded;
}

/**
 * Agent classes by name, for devices provisioned with `--agent-class NAME`: `DeviceAgent` plus every configured
 * class under its export name and its class name.
 */
function classesByName(
  defaultClass: AgentClass,
  loaded: readonly LoadedAgentClass[],
  exports: readonly string[],
): Map<string, AgentClass> {
  const byName = new Map<string, AgentClass>([[defaultClass.name, defaultClass]]);
  loaded.forEach((entry, index) => {
    byName.set(entry.agentClass.name, entry.agentClass);
    const exportName = exports[index];
    if (exportName !== undefined && exportName !== "default") byName.set(exportName, entry.agentClass);
  });
  return byName;
}

/** The configured classes as loaded, and every class the bridge serves by the names a device is provisioned with. */
export interface ServedAgentClasses {
  /** `agents.classes` in order, as the runtime takes them (pattern and class). */
  configured: LoadedAgentClass[];
  /** `defaultClass` and each configured class by its class and export name ({@link classesByName}). */
  byName: Map<string, AgentClass>;
  /** The class serving a device in place of one it asks for that is not in `byName` (agent-class-fallback.ts). */
  fallback: AgentClassFallback;
}

/**
 * Loads the configured classes and names every class the bridge serves. The keys of `byName` are the one list of
 * names a device may be provisioned with: the bridge hands them to `POST /api/devices`, and `devices add
 * --agent-class` loads them from the same config, so both refuse the same typos. Throws as {@link loadAgentClasses}.
 */
export async function loadServedAgentClasses(
  defaultClass: AgentClass,
  entries: readonly AgentClassConfig[],
): Promise<ServedAgentClasses> {
  const configured = await loadAgentClasses(entries);
  const byName = classesByName(
    defaultClass,
    configured,
    entries.map((entry) => entry.export),
  );
  return { configured, byName, fallback: agentClassFallback(defaultClass, configured, byName) };
}

/** How an operator lists the devices the start warning counts (docs/api.md, docs/cli.md). */
export const FALLBACK_LISTING =
  "GET /api/devices?agentClassFallback=true or agent-bridge devices list --agent-class-fallback (with this config)";

/** What the registry asks of the runtime: the exact-id class entries, and the devices whose class it does not serve. */
export interface RegistryClasses {
  /** One entry per device provisioned with a class the bridge serves, its id as the pattern. */
  exact: LoadedAgentClass[];
  /** The ids of devices asking for a class the bridge does not serve, served by `served.fallback` instead. */
  fallbackIds: string[];
}

/**
 * Exact-id class entries for devices provisioned with `--agent-class NAME`. Read once at start: a device added with
 * a class while the bridge runs gets it from the next start (documented in docs/cli.md). Devices asking for a class
 * the bridge does not serve get one warning in all, counting them and naming how to list them: one line per device
 * drowned a start's log for a large fleet and still left the operator to collect the ids by hand.
 */
export function registryClasses(registry: DeviceRegistry, served: ServedAgentClasses, logger: Logger): RegistryClasses {
  const exact: LoadedAgentClass[] = [];
  const fallbackIds: string[] = [];
  const unserved = new Set<string>();
  for (const device of registry.list()) {
    if (device.agentClass === null) continue;
    const agentClass = served.byName.get(device.agentClass);
    if (agentClass === undefined) {
      fallbackIds.push(device.id);
      unserved.add(device.agentClass);
      continue;
    }
    // Device ids hold no glob characters ([A-Za-z0-9_.-]), so the id itself is an exact pattern.
    exact.push({ pattern: device.id, agentClass });
  }
  if (fallbackIds.length > 0) {
    const devices = fallbackIds.length === 1 ? "1 device asks" : `${fallbackIds.length} devices ask`;
    logger.warn(
      { devices: fallbackIds.length, agentClasses: [...unserved].sort() },
      `${devices} for an agent class this bridge does not serve and ${fallbackIds.length === 1 ? "is" : "are"} ` +
        "served as if provisioned without one (the class of the first pattern the id matches, else the default); " +
        `list them with ${FALLBACK_LISTING}`,
    );
  }
  return { exact, fallbackIds };
}
