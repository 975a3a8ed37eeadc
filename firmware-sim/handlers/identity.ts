import type { IdentityFrame } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/** `down/identity`: the bridge introduces the agent. Firmware only counts it. */
export function handleIdentity(ctx: DeviceContext, _frame: IdentityFrame): void {
  ctx.metrics.counters.identityFrames++;
}
