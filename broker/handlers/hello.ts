import type { HelloFrame } from "../../codecs/frames.ts";
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
    registry.setFirmware(connection.deviceId, frame.fw);
  } catch (err) {
    // The registry is a record, not the event: the hello still reaches the agent.
    ctx.logger.warn({ err, device: connection.deviceId }, "could not record hello in the registry");
  }
}
