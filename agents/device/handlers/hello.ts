/**
 * `up/hello`: the device's birth message. Records firmware, codec and capabilities, then resyncs the shadow (when the
 * device wants sync) and delivers pending commands to this session. A device that says hello gets its commands
 * here rather than on connect, because by now it has subscribed to its down topics.
 *
 * Identity is not sent here: the runtime sends it when a protocol-enabled connection opens, and sending it again
 * on hello would duplicate it; connections with the protocol flag off never get it at all.
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
  core.resync(conn);
  core.deliverCommands(core.deliveredOnConnect.delete(conn.id), conn);
  return profile;
}
