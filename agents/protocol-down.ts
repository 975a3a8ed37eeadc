/**
 * How a device transport (MQTT) carries the runtime's protocol messages: as `down/identity` and `down/state` frames.
 * Part of the host contract (host.ts), kept here so that the broker sends, and the DeviceAgent measures against a
 * device's maxFrame, the very same frame. A WebSocket client gets the JSON protocol's own shapes instead.
 */
import { type DesiredStateFrame, type DownMessage, isValueMap } from "../codecs/frames.ts";
import type { ProtocolMessage } from "./host.ts";

/** Maps a runtime protocol message to its down frame. */
export function protocolToDown(message: ProtocolMessage): DownMessage {
  if (message.type === "identity") {
    return {
      channel: "identity",
      frame: { name: message.name, id: message.agent, pv: message.protocolVersion, t: message.serverTime },
    };
  }
  // The runtime's state broadcast is the whole state; a device sees it as a full state at version 0. A desired-state
  // document at version 0 is only ever the empty one of a device nothing was desired for yet (docs/protocol.md,
  // down/state, tells firmware how to tell the two apart).
  const frame: DesiredStateFrame = {
    v: 0,
    d: isValueMap(message.state) ? message.state : { value: message.state },
    full: true,
  };
  return { channel: "state", frame };
}
