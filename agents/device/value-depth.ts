/**
 * A bound on how deeply an operator's (or a tool call's) Value may nest before the agent stores it and sends it to
 * the device. Device frames are bounded by the codecs' `maxDepth` on the way in; values from `runtime.call` are not,
 * and a deep enough one overflowed the stack in the shadow merge and in storage. The same limit keeps what the agent
 * accepts encodable: a frame that nests deeper than `maxDepth` would be dropped by the codec on its way out.
 */
import type { Value } from "../../codecs/frames.ts";
import { cborCodec, resolveLimits } from "../../codecs/index.ts";
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

/**
 * Throws when `value` holds what no codec can write to a device: a lone surrogate in text or a key (JSON.parse, the
 * operator API's body parser, accepts "\ud800"; UTF-8 cannot carry it), a non-finite number, a `__proto__` key or
 * something that is not a Value. Such a value, once stored, failed only when its frame was encoded on the way out:
 * the broker dropped every `down/cmd` (spending the command's attempts) or every shadow delta holding it. The check
 * encodes it as the `a` of a command frame (the three codecs refuse the same values); call it after
 * `checkFieldDepth`, so the encoder's recursion is bounded. BRIDGE_ERR_INVALID_ARGUMENT naming `field`, with
 * `details.reason` "not-encodable" and `details.path` where the bad value sits.
 */
export function checkFieldEncodable(value: Value, field: string): void {
  try {
    cborCodec.encodeDown("cmd", { id: "-", n: "-", a: value });
  } catch (err) {
    if (!(err instanceof BridgeError) || err.code !== "BRIDGE_ERR_FRAME_ENCODE") throw err;
    const cause = err.cause instanceof Error ? err.cause.message : err.message;
    // The encoder names paths inside the frame (`a.label`, `a[2]`); the caller knows the value as `field`.
    const path = typeof err.details.field === "string" ? err.details.field.replace(/^a(?=$|[.[])/, field) : field;
    throw new BridgeError(
      "BRIDGE_ERR_INVALID_ARGUMENT",
      `${field} cannot be sent to a device: ${cause.replace(/^a(?=[.[:])/, field)}`,
      { field, reason: "not-encodable", path },
      { cause: err },
    );
  }
}
