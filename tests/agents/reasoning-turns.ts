/**
 * Shared set-up of the tests that drive a device's reasoning turns against a scripted engine (open turns, slots,
 * stranded turns): harnesses with one turn slot by default, disposed after the file's tests, and the waits they all
 * use (a request's final frame, the pending approvals of an agent).
 */
import { after } from "node:test";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import type { AgentClass } from "../../agents/agent.ts";
import { DeviceHarness, type HarnessOptions, type RecordingDevice, waitFor } from "./device-harness.ts";
import type { ScriptedEngine } from "./scripted-engine.ts";

/**
 * Registers an after() hook in the calling test file and returns a factory of harnesses over `engine`, running
 * `agentClass` (default DeviceAgent) with `maxConcurrentTurns: 1` unless `config` says otherwise, and any other
 * harness `options`; every harness it made is disposed by that hook.
 */
export function oneSlotHarnesses(
  agentClass?: AgentClass,
): (engine: ScriptedEngine, config?: Record<string, unknown>, options?: HarnessOptions) => DeviceHarness {
  const harnesses: DeviceHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.dispose();
  });
  const className = agentClass?.name ?? "DeviceAgent";
  return (engine, config = {}, options = {}) => {
    const h = new DeviceHarness({
      ...options,
      engine,
      ...(agentClass === undefined ? {} : { agentClass }),
      agentConfig: { [className]: { maxConcurrentTurns: 1, ...config } },
    });
    harnesses.push(h);
    return h;
  };
}

/** Waits for the final `down/reason` frame of request `id`. */
export function finalFrame(dev: RecordingDevice, id: string): Promise<ReasonStreamFrame> {
  return waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
}

/** Waits until `agentId` has `count` pending approvals in the fleet directory; their ids, oldest first. */
export function pendingApprovals(h: DeviceHarness, agentId: string, count: number): Promise<string[]> {
  return waitFor(() => {
    const keys = h.runtime.directory
      .list("approval")
      .filter((entry) => entry.agentId === agentId)
      .map((entry) => entry.key);
    return keys.length === count ? keys.sort() : undefined;
  }, `${count} pending approvals of ${agentId}`);
}
