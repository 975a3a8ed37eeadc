/**
 * What DeviceAgent is wired with: values of the embedder that are not options (`RuntimeOptions.agentWiring`, given to
 * each agent as `env.wiring`, apart from its options in `env.config`). `DeviceAgent.validateWiring` checks them when
 * the runtime is created; each agent reads them through the typed view below.
 */
import { BridgeError } from "../../errors/bridge-error.ts";
import type { AgentWiring } from "../types.ts";
import type { CommandObserver } from "./command-observer.ts";

/** DeviceAgent's wiring. A type, not an interface, so that it is an `AgentWiring` (a record of values). */
export type DeviceAgentWiring = {
  /** Told of every command state transition (command-observer.ts, `commandObserverWiring`). Default: none. */
  readonly commandObserver?: CommandObserver;
};

/** Each key DeviceAgent is wired with, and the helper that wires it (for the rules that point an embedder at it). */
const WIRING_HELPERS: Readonly<Record<keyof DeviceAgentWiring, string>> = {
  commandObserver: "commandObserverWiring",
};

function fail(field: string, rule: string): never {
  throw new BridgeError("BRIDGE_ERR_CONFIG", `device agent wiring ${field} ${rule}`, { field, rule });
}

function isWiringKey(key: string): key is keyof DeviceAgentWiring {
  return Object.hasOwn(WIRING_HELPERS, key);
}

/**
 * Checks that `wiring` is DeviceAgent's: only its keys (a misspelt one would be ignored without a word), each of its
 * kind.
 * @throws BridgeError BRIDGE_ERR_CONFIG, `details.field` naming the key and `details.rule` what it must be.
 */
export function checkDeviceAgentWiring(wiring: AgentWiring): void {
  for (const [key, value] of Object.entries(wiring)) {
    if (!isWiringKey(key)) {
      fail(key, `is not something DeviceAgent is wired with (${Object.keys(WIRING_HELPERS).join(", ")})`);
    }
    if (value !== undefined && typeof value !== "function") fail(key, "must be a function");
  }
}

/**
 * `wiring` as a DeviceAgent reads it. It was checked when the runtime was created (checkDeviceAgentWiring), so this
 * only picks DeviceAgent's keys: a subclass may be wired with more (its own `validateWiring` takes those).
 */
export function deviceAgentWiring(wiring: AgentWiring): DeviceAgentWiring {
  const observer = wiring.commandObserver;
  // A function's parameters cannot be checked at run time; validateWiring checked that it is one.
  return typeof observer === "function" ? { commandObserver: observer as CommandObserver } : {};
}

/**
 * The rule for an option named like a wired value (`commandObserver`, an option until agentWiring existed): it says
 * where the value goes now. Undefined for any other key.
 */
export function wiredKeyRule(key: string): string | undefined {
  if (!isWiringKey(key)) return undefined;
  return `is wired in, not an option: pass it in createRuntime's agentWiring (${WIRING_HELPERS[key]}); the bridge wires its own`;
}
