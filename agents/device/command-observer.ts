/**
 * How the app watches command state transitions (for the `bridge_command_states_total` counter) without agents/
 * depending on app/: the composition root puts a function under `commandObserver` in the config of each DeviceAgent
 * class (`env.config`, see `withCommandObserver`); the agent reports every transition to it.
 */
import type { AgentClass } from "../agent.ts";
import type { CommandState } from "./command-outbox.ts";

/** The `env.config` key that carries the observer; never a config file key (a file cannot hold a function). */
export const COMMAND_OBSERVER_CONFIG_KEY = "commandObserver";

/** One transition: a new command (`from` null, `state` QUEUED), a delivery, an ack, an expiry, attempts run out. */
export interface CommandTransition {
  agentId: string;
  commandId: string;
  from: CommandState | null;
  state: CommandState;
}

/**
 * Told of each transition when the agent makes it, inside the event; an event that then fails rolls the row back but
 * not the call, so the counts are an operator's view, not a ledger. It must not throw (a throw is logged and ignored)
 * and must be quick: it runs on the agent's event.
 */
export type CommandObserver = (transition: CommandTransition) => void;

/** The observer in an agent's `env.config`, if the app put one there. */
export function commandObserverFrom(config: Readonly<Record<string, unknown>>): CommandObserver | undefined {
  const value = config[COMMAND_OBSERVER_CONFIG_KEY];
  return typeof value === "function" ? (value as CommandObserver) : undefined;
}

/** `config` without the observer key: what the option validator sees. */
export function withoutCommandObserver(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { [COMMAND_OBSERVER_CONFIG_KEY]: _observer, ...rest } = config;
  return rest;
}

/** True for DeviceAgent and its subclasses (the classes that read the observer). */
function isDeviceAgentClass(cls: AgentClass, deviceAgent: AgentClass): boolean {
  return cls === deviceAgent || cls.prototype instanceof deviceAgent;
}

/**
 * Returns `agentConfig` with `observer` added to the config of every class in `classes` that is `deviceAgent` or
 * extends it (the runtime hands each class `agentConfig[ClassName]`). Other classes' configs are left as they are.
 * Given `{}`, it is what to pass as `createRuntime`'s `agentWiring`: wired in beside the options, the observer is
 * given to no class's `validateConfig` (one that refuses keys it does not know would refuse it).
 *
 * @example
 * createRuntime({ agentWiring: withCommandObserver({}, [DeviceAgent, Thermostat], DeviceAgent, (t) => count(t.state)) })
 */
export function withCommandObserver(
  agentConfig: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
  classes: readonly AgentClass[],
  deviceAgent: AgentClass,
  observer: CommandObserver,
): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, config] of Object.entries(agentConfig)) out[name] = { ...config };
  for (const cls of classes) {
    if (!isDeviceAgentClass(cls, deviceAgent)) continue;
    out[cls.name] = { ...(out[cls.name] ?? {}), [COMMAND_OBSERVER_CONFIG_KEY]: observer };
  }
  return out;
}
