/**
 * The bridge's agent classes as the `devices` commands see them. `devices add --agent-class NAME` (one id or
 * `--count`): the name must be one of the bridge's agent classes, the same list `POST /api/devices` checks
 * (DeviceAgent, and each class of the config's `agents.classes` by class and export name), so a typo is refused before
 * anything is written instead of provisioning a device that the bridge would serve with the default class. `devices
 * list` names the class serving a device whose class the bridge does not serve, as `GET /api/devices` does.
 */
import { unknownAgentClass } from "../api/agent-class-check.ts";
import type { ServedAgentClasses } from "../bridge/agent-classes.ts";
import type { BridgeConfig } from "../config/index.ts";
import { exitOnAgentClassError } from "./config-flags.ts";
import { CliExit, EXIT_USAGE } from "./exit.ts";

/**
 * The classes the bridge started with `config` serves: the configured modules are imported here as `start` imports
 * them, so this needs the config the bridge runs with (`-c/--config` or BRIDGE_CONFIG); without one, DeviceAgent alone.
 * An entry that cannot be loaded ends the command as it ends `start` (exit 1, the entry named).
 */
export async function servedAgentClasses(config: BridgeConfig): Promise<ServedAgentClasses> {
  // Loaded on use: only a command that needs the classes pays for the agent runtime and the configured modules.
  const { DeviceAgent } = await import("../../agents/device/index.ts");
  const { loadServedAgentClasses } = await import("../bridge/agent-classes.ts");
  try {
    return await loadServedAgentClasses(DeviceAgent, config.agents.classes);
  } catch (err) {
    exitOnAgentClassError(err);
    throw err;
  }
}

/**
 * The `--agent-class` flag once checked: undefined when not given, else a name the bridge has. An unknown name is bad
 * usage (exit 2) with one line naming the flag, the name and the valid names.
 */
export async function requireServedAgentClass(
  flags: Readonly<Record<string, unknown>>,
  config: BridgeConfig,
): Promise<string | undefined> {
  const name = flags.agentClass;
  if (name === undefined) return undefined;
  const known = [...(await servedAgentClasses(config)).byName.keys()];
  const unknown = unknownAgentClass("--agent-class", String(name), known);
  if (unknown === undefined) return String(name);
  process.stderr.write(`error: ${unknown}\n`);
  throw new CliExit(EXIT_USAGE);
}
