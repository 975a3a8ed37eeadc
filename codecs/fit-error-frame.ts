/**
 * Fitting a `down/error` frame to a device's `maxFrame`: its message is cut so the frame, encoded in the device's
 * codec, fits. Shared by the DeviceAgent (its own refusals) and the broker (refusals of input that never reached the
 * agent), so a constrained device gets neither an oversized frame nor a different cut from either side.
 */
import type { Codec } from "./codec.ts";
import { longestPrefixWhere } from "./cut-text.ts";
import type { ErrorFrame } from "./frames.ts";

/** Encoded size of `frame` in `codec`; undefined when it does not encode (the transport reports that fault). */
function errorFrameBytes(codec: Codec, frame: ErrorFrame): number | undefined {
  try {
    return codec.encodeDown("error", frame).byteLength;
  } catch {
    return undefined;
  }
}

/**
 * `frame` with its message cut (on a UTF-8 character boundary) so that it fits `maxFrame` bytes in `codec`;
 * undefined when not even the frame with an empty message fits, so nothing can be said to this device. A frame that
 * does not encode at all is returned as it is: that fault is the transport's to report.
 */
export function fitErrorFrame(codec: Codec, frame: ErrorFrame, maxFrame: number | null): ErrorFrame | undefined {
  if (maxFrame === null) return frame;
  const fits = (msg: string): boolean => (errorFrameBytes(codec, { ...frame, msg }) ?? 0) <= maxFrame;
  if (fits(frame.msg)) return frame;
  if (!fits("")) return undefined;
  return { ...frame, msg: longestPrefixWhere(frame.msg, fits) };
}
