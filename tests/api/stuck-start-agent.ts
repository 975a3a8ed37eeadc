/**
 * A device agent whose onStart hangs while its switch says so, for the API suites that need a device answering
 * `503 BRIDGE_ERR_AGENT_START_TIMEOUT`: the runtime gives up on the start after its callbackTimeoutMs and tries again
 * after a backoff (agents/start-backoff.ts).
 */
import { type AgentClass, DeviceAgent, RUNTIME_DEFAULTS } from "../../agents/index.ts";
import type { ApiFixture } from "./helpers.ts";

/** How long the runtime waits for onStart: its default callbackTimeoutMs (the API fixture keeps it). */
export const START_TIMEOUT_MS = RUNTIME_DEFAULTS.callbackTimeoutMs;

/** The switch of a stuck agent class: its onStart hangs while `hanging`; `starts` counts the tries. */
export interface StuckSwitch {
  hanging: boolean;
  starts: number;
}

/**
 * A fresh agent class whose onStart hangs until `stuck.hanging` is set to false.
 *
 * @example
 * const { agentClass, stuck } = stuckStartAgent();
 * const f = await createApiFixture({ agentClasses: [{ pattern: "stuck-*", agentClass }] });
 */
export function stuckStartAgent(): { agentClass: AgentClass; stuck: StuckSwitch } {
  const stuck: StuckSwitch = { hanging: true, starts: 0 };
  class StuckDevice extends DeviceAgent {
    override onStart(): void | Promise<void> {
      stuck.starts++;
      if (stuck.hanging) return new Promise(() => {});
      return super.onStart();
    }
  }
  return { agentClass: StuckDevice, stuck };
}

/** Closes `f` once its stuck agents may start: a hanging onStart ends at the start timeout, which the clock skips. */
export async function closeUnstuck(f: ApiFixture, stuck: StuckSwitch): Promise<void> {
  stuck.hanging = false;
  const closed = f.close();
  await f.clock.advance(START_TIMEOUT_MS);
  await closed;
}
