/** The request id a `reason` frame names its question by (docs/protocol.md, `up/reason`). */
import type { ReasonRequestFrame } from "../../../codecs/frames.ts";

/** Longest request id, in UTF-16 code units: the id goes into rows, task inputs and every frame of the answer. */
export const REQUEST_ID_MAX = 64;

/** The request id of a `reason` frame: a string of 1 to REQUEST_ID_MAX characters, or null when it has none. */
export function reasonRequestId(frame: ReasonRequestFrame | undefined): string | null {
  return typeof frame?.id === "string" && frame.id.length > 0 && frame.id.length <= REQUEST_ID_MAX ? frame.id : null;
}

/**
 * The `id` a refusal of a frame without a usable request id carries: a longer one (the codec takes 256 characters)
 * is echoed, so the device can tell which question was refused.
 */
export function refusedRequestId(frame: ReasonRequestFrame): { id?: string } {
  return typeof frame.id === "string" && frame.id !== "" ? { id: frame.id } : {};
}
