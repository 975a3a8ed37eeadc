/**
 * `up/hello`: the device's birth message. Records firmware, codec and capabilities, then resyncs the shadow (when the
 * device wants sync) and delivers pending commands to this session. A device that says hello gets its commands
 * here rather than on connect, because by now it has subscribed to its down topics.
 *
 * A hello with `metrics` replaces the device's metric alias table (kept across sessions); one without leaves it.
 *
 * No identity is sent here: a protocol-enabled connection gets exactly one per session, the runtime's, emitted when
 * the connection opens. The MQTT broker holds that one until the session subscribes to its down topics (within its
 * subscribe grace period), so answering the hello with another would make two. The protocol flag was decided at open
 * from the connection's codec; a hello that reveals JSON later does not turn it on (the next session opens with it).
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
  conn.setFrameLimit(profile.caps.maxFrame);
  if (Array.isArray(frame.metrics) && frame.metrics.length > 0) core.aliases.replace(frame.metrics);
  core.resync(conn);
  // A session greeted earlier (it published before its hello) already got the unacknowledged ones.
  core.deliverCommands(!core.markGreeted(conn), conn);
  return profile;
}
