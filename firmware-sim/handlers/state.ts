import type { DesiredStateFrame } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/**
 * `down/state`: a desired-state delta (or the full desired state). A device with a shadow applies it and reports the
 * fields it changed, based on the reported version it knows; one without a shadow ignores it.
 */
export function handleDesiredState(ctx: DeviceContext, frame: DesiredStateFrame): void {
  ctx.metrics.counters.desiredFrames++;
  const shadow = ctx.shadow;
  if (!shadow) return;
  const outcome = shadow.onDesired(frame);
  if (outcome.status === "stale") return;
  // Report every field the frame names, changed or not: if an earlier report was lost the bridge still shows a delta,
  // and repeating the current value is what clears it.
  const patch = { ...outcome.patch };
  for (const [key, value] of Object.entries(frame.d)) if (!(key in patch) && value !== null) patch[key] = value;
  if (Object.keys(patch).length === 0) return;
  ctx.metrics.counters.stateReports++;
  ctx.send("state", shadow.report(patch));
}
