/**
 * `up/state`: a reported-state patch based on reported version `v`. A base that is not the current version is
 * refused with BRIDGE_ERR_STALE_VERSION carrying the current version, so the device can re-read and retry; an applied
 * patch bumps the version by one and sends the delta if it changed. A base ahead of the current version keeps that
 * code (devices resync on it, and the remedy is the same: report the whole state on `v`), as AWS IoT answers both
 * directions with one 409; its message says the version was never issued, and a device tells the cases apart by
 * comparing the `v` it sent with the one it got.
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
  if (result.status !== "ok") {
    const why =
      result.status === "ahead"
        ? `: version ${v} is ahead and was never issued; report the whole state on ${result.version}`
        : "";
    core.sendError(conn, "BRIDGE_ERR_STALE_VERSION", `reported version is ${result.version}, not ${v}${why}`, {
      v: result.version,
    });
    return undefined;
  }
  if (result.deltaChanged) core.pushDelta(core.shadow.get().desired.version, result.delta);
  return result.version;
}
