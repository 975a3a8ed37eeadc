import type { ErrorFrame } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/**
 * `down/error`: something the device sent was refused. Three cases need firmware action: a stale reported-state
 * version (the frame carries the current one in `v`; re-report the whole state on it), telemetry refused because the
 * agent does not know the metric alias table (say hello with it again, then resend), and the failure of the open
 * reasoning request (give up on it).
 */
export function handleError(ctx: DeviceContext, frame: ErrorFrame): void {
  const m = ctx.metrics;
  m.counters.errorFrames++;
  m.errorCodes.set(frame.code, (m.errorCodes.get(frame.code) ?? 0) + 1);
  if (ctx.shadow && typeof frame.v === "number" && isStaleCode(frame.code)) {
    m.counters.staleStateErrors++;
    m.counters.stateReports++;
    ctx.send("state", ctx.shadow.onStale(frame.v));
    return;
  }
  if (frame.code === "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN") {
    ctx.aliases.aliasesUnknown();
    return;
  }
  if (frame.id !== undefined && frame.id === ctx.reasons.openId) {
    m.counters.reasonErrors++;
    ctx.reasons.abandon();
    ctx.reasonDone();
  }
}

// Codes are stable identifiers (docs/errors.md); any code naming a stale version is the shadow's version check.
function isStaleCode(code: string): boolean {
  return /(^|_)STALE($|_)/.test(code);
}
