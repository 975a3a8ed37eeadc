import type { DesiredStateFrame, ValueMap } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/**
 * What a `down/state` frame carries. Two things arrive there in the same shape (docs/protocol.md, "Desired state or
 * agent state on down/state"): the DeviceAgent's shadow (desired-state deltas, or the full desired state) and the
 * runtime's broadcast of the agent's own state (an agent class calling `setState`), which goes to protocol-enabled
 * connections: JSON devices by default.
 */
export type DownState = { kind: "desired"; frame: DesiredStateFrame } | { kind: "agent-state"; state: ValueMap };

/**
 * Tells the two apart. The agent's state always comes as `{v: 0, d: state, full: true}`. The desired version is 1 or
 * more once anything was desired and never goes back, so the shadow sends version 0 only as the empty desired state
 * `{v: 0, d: {}, full: true}` ("nothing desired yet", after a hello). That leaves one overlap, which the protocol
 * settles this way: an agent state set to an empty map reads as that empty desired state.
 */
export function readDownState(frame: DesiredStateFrame): DownState {
  if (frame.v === 0 && frame.full === true && Object.keys(frame.d).length > 0) {
    return { kind: "agent-state", state: frame.d };
  }
  return { kind: "desired", frame };
}

/**
 * `down/state`. The agent's state is only counted: this firmware has no use for it (a device with a panel would show
 * it). It must never reach the shadow: taken for desired state, its fields would be "applied" and reported as the
 * device's own. A desired-state frame goes to the shadow: a device with one applies it and reports the fields it
 * changed, based on the reported version it knows; one without a shadow ignores it.
 */
export function handleDownState(ctx: DeviceContext, frame: DesiredStateFrame): void {
  const read = readDownState(frame);
  if (read.kind === "agent-state") {
    ctx.metrics.counters.agentStateFrames++;
    return;
  }
  ctx.metrics.counters.desiredFrames++;
  const shadow = ctx.shadow;
  if (!shadow) return;
  const outcome = shadow.onDesired(read.frame);
  if (outcome.status === "stale") return;
  // Report every field the frame names, changed or not: if an earlier report was lost the bridge still shows a delta,
  // and repeating the current value is what clears it.
  const patch = { ...outcome.patch };
  for (const [key, value] of Object.entries(frame.d)) if (!(key in patch) && value !== null) patch[key] = value;
  if (Object.keys(patch).length === 0) return;
  ctx.metrics.counters.stateReports++;
  ctx.send("state", shadow.report(patch));
}
