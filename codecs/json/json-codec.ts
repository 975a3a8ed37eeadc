import type { Codec } from "../codec.ts";
import { createCodec } from "../make-codec.ts";
import { DecodeFault } from "../schema/fault.ts";
import { parseJson } from "./json-parse.ts";
import { fromJsonMap, takeIntegralFloatCount, toJsonMap } from "./json-value.ts";
import { writeJson } from "./json-write.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const textEncoder = new TextEncoder();

function parse(bytes: Uint8Array, maxDepth: number): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new DecodeFault("BRIDGE_ERR_FRAME_DECODE", "payload is not valid UTF-8");
  }
  // Each Value level may take two JSON levels (a `{"$map": {...}}` escape), plus a `$bytes`/`$bigint` leaf; the exact
  // depth is checked by fromJsonMap.
  return parseJson(text, 2 * maxDepth + 2);
}

/**
 * JSON text (UTF-8): the same map as CBOR, byte strings and big integers written as `{"$bytes": ...}` and
 * `{"$bigint": ...}` (see json-value.ts). For operators and the WebSocket protocol; binary devices never get it.
 * Decoding reads plain integer tokens beyond 2^53 exactly (as bigints) and refuses duplicate keys and escapes of lone
 * surrogates (json-parse.ts); bytes that are not UTF-8 are refused before parsing, so the parser sees only
 * well-formed text.
 *
 * @example
 * const bytes = jsonCodec.encodeDown("cmd", { id: "c1", n: "reboot" }); // {"id":"c1","n":"reboot"}
 */
export const jsonCodec: Codec = createCodec({
  name: "json",
  mediaType: "application/json",
  binary: false,
  encode: (_direction, _channel, _schema, frame, maxDepth) => {
    takeIntegralFloatCount();
    const tree = toJsonMap(frame, 1, maxDepth, "", false);
    return textEncoder.encode(takeIntegralFloatCount() === 0 ? JSON.stringify(tree) : writeJson(tree));
  },
  decode: (_direction, _channel, _schema, bytes, limits) => {
    const parsed = parse(bytes, limits.maxDepth);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new DecodeFault("BRIDGE_ERR_FRAME_INVALID", "a frame must be a JSON object");
    }
    return fromJsonMap(parsed as Record<string, unknown>, 1, limits.maxDepth, "", false);
  },
});
