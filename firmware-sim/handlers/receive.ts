/**
 * The firmware's receive path for one down PUBLISH: topic -> channel, the binary-device and max-frame checks, decode
 * in the device's own codec, then the channel's handler. Everything a device must never be sent is a violation here.
 */
import type { Codec } from "../../codecs/codec.ts";
import type { DownMessage } from "../../codecs/frames.ts";
import { type DeviceTopics, looksLikeJsonText } from "../wire.ts";
import type { Delivery } from "../device/command-book.ts";
import type { DeviceContext } from "./context.ts";
import { dispatchDown } from "./index.ts";

export function receiveDown(
  ctx: DeviceContext,
  codec: Codec,
  topics: DeviceTopics,
  topic: string,
  payload: Uint8Array,
  delivery: Delivery,
): void {
  const channel = topics.parseDown(topic);
  if (channel === undefined) return;
  if (channel === "unknown") ctx.metrics.counters.unknownDownChannel++;
  // Checked before decoding: a JSON codec would happily decode it, the device's binary parser would not. Also on a
  // down topic the firmware does not know: it arrives under the device's subscription all the same.
  if (codec.binary && looksLikeJsonText(payload)) {
    const where = channel === "unknown" ? topic : `down/${channel}`;
    ctx.violation("json-to-binary-device", `${codec.name} device received JSON text on ${where}`);
    return;
  }
  if (channel === "unknown") return;
  const maxFrame = ctx.profile.maxFrameBytes;
  if (maxFrame !== undefined && payload.byteLength > maxFrame) {
    ctx.violation("frame-too-large", `down/${channel}: ${payload.byteLength} bytes, maxFrame ${maxFrame}`);
    return;
  }
  const decoded = codec.decodeDown(channel, payload, maxFrame === undefined ? undefined : { maxFrameBytes: maxFrame });
  if (!decoded.ok) {
    const head = Buffer.from(payload.subarray(0, 16)).toString("hex");
    ctx.violation(
      "undecodable-down-frame",
      `down/${channel}: ${decoded.code} ${decoded.message} (${payload.byteLength} bytes: ${head}...)`,
    );
    return;
  }
  dispatchDown(ctx, { channel, frame: decoded.frame } as DownMessage, delivery);
}
