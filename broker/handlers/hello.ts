import { cutText } from "../../codecs/cut-text.ts";
import type { HelloFrame } from "../../codecs/frames.ts";
import { MAX_FIRMWARE_LENGTH } from "../../codecs/index.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `up/hello`: the device's birth. A codec in it becomes the connection's codec for every later down frame (and for up
 * frames without a codec suffix), and is remembered in the registry so the next session starts with it.
 */
export function handleHello(ctx: HandlerContext, frame: HelloFrame): void {
  const { connection, registry } = ctx;
  if (frame.codec !== undefined) connection.noteHello(frame.codec);
  if (!ctx.registered) return;
  try {
    if (frame.codec !== undefined) registry.setCodec(connection.deviceId, frame.codec);
    // Cut as the agent cuts it: every fleet listing shows it, and a hello may be as large as the payload limit.
    registry.setFirmware(connection.deviceId, cutText(frame.fw, MAX_FIRMWARE_LENGTH));
  } catch (err) {
    // The registry is a record, not the event: the hello still reaches the agent.
    ctx.logger.warn({ err, device: connection.deviceId }, "could not record hello in the registry");
  }
}
