/**
 * A bound on how deeply an operator's (or a tool call's) Value may nest before the agent stores it and sends it to
 * the device. Device frames are bounded by the codecs' `maxDepth` on the way in; values from `runtime.call` are not,
 * and a deep enough one overflowed the stack in the shadow merge and in storage. The same limit keeps what the agent
 * accepts encodable: a frame that nests deeper than `maxDepth` would be dropped by the codec on its way out.
 */
import type { Value } from "../../codecs/frames.ts";
import { resolveLimits } from "../../codecs/index.ts";
import { BridgeError } from "../../errors/bridge-error.ts";

/**
 * Levels of maps and lists a Value in a field of a device frame may have: the codecs count the frame map itself as
 * the first of `maxDepth` levels.
 */
export function maxFieldDepth(): number {
  return resolveLimits().maxDepth - 1;
}

/**
 * How many levels of maps and lists `value` has (a scalar 0, `{}` 1, `{a: [1]}` 2), counted without recursion and
 * stopping once `stopAbove` is exceeded, so a value of any depth costs at most the nodes above that level.
 */
export function nestingDepth(value: Value, stopAbove: number): number {
  let deepest = 0;
  const pending: Array<{ value: Value; depth: number }> = [{ value, depth: 0 }];
  while (pending.length > 0) {
    const next = pending.pop()!;
    const v = next.value;
    if (typeof v !== "object" || v === null || v instanceof Uint8Array) continue;
    const depth = next.depth + 1;
    if (depth > deepest) deepest = depth;
    if (depth > stopAbove) return depth;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const child of children) pending.push({ value: child, depth });
  }
  return deepest;
}

/**
 * Throws when `value` nests deeper than a device frame allows: BRIDGE_ERR_INVALID_ARGUMENT naming `field`, with
 * `details.reason` "too-deep" and `details.maxDepth`. The DeviceAgent's argument code rather than the codecs'
 * BRIDGE_ERR_FRAME_TOO_DEEP: the caller is an operator or a tool call, and the operator API answers this code with a
 * 400 naming the field, like every other refused argument.
 */
export function checkFieldDepth(value: Value, field: string): void {
  const max = maxFieldDepth();
  if (nestingDepth(value, max) > max) {
    throw new BridgeError(
      "BRIDGE_ERR_INVALID_ARGUMENT",
      `${field} nests deeper than ${max} levels of maps and lists (a device frame allows ${max + 1} with the frame)`,
      { field, reason: "too-deep", maxDepth: max },
    );
  }
}
