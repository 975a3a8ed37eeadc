/**
 * How the app watches command state transitions (for the `bridge_command_states_total` counter) without agents/
 * depending on app/: the composition root wires a function into each DeviceAgent class (`commandObserverWiring`,
 * passed to createRuntime as `agentWiring`; the agent reads it from `env.wiring`); the agent reports every transition
 * to it.
 */
import type { AgentClass } from "../agent.ts";
import type { CommandState } from "./command-outbox.ts";
import { DeviceAgent } from "./device-agent.ts";
import type { DeviceAgentWiring } from "./wiring.ts";

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

/** True for DeviceAgent and its subclasses (the classes that read the observer). */
function isDeviceAgentClass(cls: AgentClass): boolean {
  return cls === DeviceAgent || cls.prototype instanceof DeviceAgent;
}

/**
 * The wiring (createRuntime's `agentWiring`, by class name) that hands `observer` to every class of `classes` that is
 * DeviceAgent or extends it; other classes get nothing. An embedder that wires more into a class merges its own
 * values into that class's entry.
 *
 * @example
 * createRuntime({ ..., agentWiring: commandObserverWiring([DeviceAgent, Thermostat], (t) => count(t.state)) })
 */
export function commandObserverWiring(
  classes: readonly AgentClass[],
  observer: CommandObserver,
): Record<string, DeviceAgentWiring> {
  // Own entries (fromEntries defines them), not assignments: `wiring["__proto__"] = ...` would set the object's
  // prototype, and a class of that name would get no entry.
  return Object.fromEntries(
    classes
      .filter(isDeviceAgentClass)
      .map((cls): [string, DeviceAgentWiring] => [cls.name, { commandObserver: observer }]),
  );
}
