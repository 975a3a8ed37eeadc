/**
 * `up/state`: a reported-state patch based on reported version `v`. A stale base is refused with
 * BRIDGE_ERR_STALE_VERSION carrying the current version, so the device can re-read and retry; an applied patch
 * bumps the version by one and sends the delta if it changed.
 */
import type { ReportedStateFrame } from "../../../codecs/frames.ts";
import type { Connection } from "../../types.ts";
import type { DeviceCore } from "../device-core.ts";
import { isValueMap } from "../values.ts";

export function handleReportedState(core: DeviceCore, conn: Connection, frame: ReportedStateFrame): number | undefined {
  const v = typeof frame?.v === "bigint" ? Number(frame.v) : frame?.v;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || !isValueMap(frame.s)) {
    core.sendError(conn, "BRIDGE_ERR_FRAME_INVALID", "state needs v (integer >= 0) and s (map)");
    return undefined;
  }
  const result = core.shadow.report(v, frame.s);
  if (result.status === "stale") {
    core.sendError(conn, "BRIDGE_ERR_STALE_VERSION", `reported version is ${result.version}, not ${v}`, {
      v: result.version,
    });
    return undefined;
  }
  if (result.deltaChanged) core.pushDelta(core.shadow.get().desired.version, result.delta);
  return result.version;
}
