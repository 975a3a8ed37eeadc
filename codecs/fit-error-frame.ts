/**
 * Fitting a `down/error` frame to a device's `maxFrame`: its message is cut in the middle (beginning and end kept,
 * an ellipsis between) so the frame, encoded in the device's codec, fits: most messages name the place first and the
 * rule last, and a field path holding a device's own long key would otherwise leave no room for the rule. Shared by
 * the DeviceAgent (its own refusals) and the broker (refusals of input that never reached the agent), so a
 * constrained device gets neither an oversized frame nor a different cut from either side.
 */
import type { Codec } from "./codec.ts";
import { longestHeadTailWhere } from "./cut-text.ts";
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
 * `frame` with its message cut to its longest `head…tail` form (on UTF-8 character boundaries) that fits `maxFrame`
 * bytes in `codec`, or to "" when no such form keeping a character does; undefined when not even the frame with an
 * empty message fits, so nothing can be said to this device. A frame that does not encode at all is returned as it
 * is: that fault is the transport's to report.
 */
export function fitErrorFrame(codec: Codec, frame: ErrorFrame, maxFrame: number | null): ErrorFrame | undefined {
  if (maxFrame === null) return frame;
  const fits = (msg: string): boolean => (errorFrameBytes(codec, { ...frame, msg }) ?? 0) <= maxFrame;
  if (fits(frame.msg)) return frame;
  if (!fits("")) return undefined;
  return { ...frame, msg: longestHeadTailWhere(frame.msg, fits) };
}
