/**
 * `up/hello`: the device's birth message. Records firmware, codec and capabilities, then resyncs the shadow (when the
 * device wants sync) and delivers pending commands to this session. A device that says hello gets its commands
 * here rather than on connect, because by now it has subscribed to its down topics.
 *
 * A hello with `metrics` replaces the device's metric alias table (kept across sessions); one without leaves it.
 *
 * Identity is answered here to protocol-enabled connections (never to others). The runtime also emits it when the
 * connection opens, but an MQTT session opens before its CONNACK, has subscribed to nothing, and the broker drops
 * it; the hello is the first moment the device can receive it.
 */
import type { HelloFrame } from "../../../codecs/frames.ts";
import type { Connection } from "../../types.ts";
import type { DeviceCore } from "../device-core.ts";
import type { DeviceProfile } from "../presence.ts";

export function handleHello(core: DeviceCore, conn: Connection, frame: HelloFrame): DeviceProfile | undefined {
  if (typeof frame?.fw !== "string") {
    core.sendError(conn, "BRIDGE_ERR_FRAME_INVALID", "hello needs fw (firmware version, text)");
    return undefined;
  }
  const profile = core.presence.recordHello(frame);
  if (Array.isArray(frame.metrics) && frame.metrics.length > 0) core.aliases.replace(frame.metrics);
  if (conn.protocol) core.sendIdentity(conn);
  core.resync(conn);
  // A session greeted earlier (it published before its hello) already got the unacknowledged ones.
  core.deliverCommands(!core.markGreeted(conn), conn);
  return profile;
}
