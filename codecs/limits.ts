import { BridgeError } from "../errors/index.ts";
import { type DecodeLimits, DEFAULT_DECODE_LIMITS } from "./codec.ts";

/**
 * Hard ceiling on `maxDepth`. protoc and protobufjs stop at 100 nested messages by default, and each level of a
 * Value map costs three (Value, MapValue, MapEntry), so 32 is the deepest a frame can be and still be read by any
 * standard protobuf runtime; it also bounds the recursion of the bridge's own decoders.
 */
export const MAX_DEPTH_CEILING = 32;

/**
 * Most chunks one indefinite-length text or byte string may have (RFC 8949 section 3.2.3). Each chunk is one byte on
 * the wire at least but a head to read and a piece to join, so a 64 KiB frame of empty chunks cost ~12 ms to decode
 * against ~3 ms for the worst ordinary frame. An encoder that streams a string through a small buffer (64 bytes, a
 * 64 KiB string) stays within it.
 */
export const MAX_STRING_CHUNKS = 1024;

/** Most chunks all the indefinite-length strings of one frame may have together: bounds the work per frame. */
export const MAX_FRAME_STRING_CHUNKS = 4096;

/**
 * Merges caller limits over the defaults and checks them. Called on every decode, so a bad limit is a programming
 * fault and throws `BRIDGE_ERR_CONFIG` naming the field.
 */
export function resolveLimits(limits?: Partial<DecodeLimits>): DecodeLimits {
  if (limits === undefined) return DEFAULT_DECODE_LIMITS;
  const maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_DECODE_LIMITS.maxFrameBytes;
  const maxDepth = limits.maxDepth ?? DEFAULT_DECODE_LIMITS.maxDepth;
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) {
    throw new BridgeError("BRIDGE_ERR_CONFIG", "maxFrameBytes must be a positive integer", { field: "maxFrameBytes" });
  }
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_DEPTH_CEILING) {
    throw new BridgeError("BRIDGE_ERR_CONFIG", `maxDepth must be an integer from 1 to ${MAX_DEPTH_CEILING}`, {
      field: "maxDepth",
    });
  }
  return { maxFrameBytes, maxDepth };
}
