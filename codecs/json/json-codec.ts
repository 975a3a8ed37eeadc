import type { Codec } from "../codec.ts";
import { createCodec } from "../make-codec.ts";
import { DecodeFault } from "../schema/fault.ts";
import { fromJsonMap, toJsonMap } from "./json-value.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const textEncoder = new TextEncoder();

function parse(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new DecodeFault("BRIDGE_ERR_FRAME_DECODE", "payload is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DecodeFault("BRIDGE_ERR_FRAME_DECODE", `payload is not JSON: ${(err as Error).message}`);
  }
}

/**
 * JSON text (UTF-8): the same map as CBOR, byte strings and big integers written as `{"$bytes": ...}` and
 * `{"$bigint": ...}` (see json-value.ts). For operators and the WebSocket protocol; binary devices never get it.
 *
 * @example
 * const bytes = jsonCodec.encodeDown("cmd", { id: "c1", n: "reboot" }); // {"id":"c1","n":"reboot"}
 */
export const jsonCodec: Codec = createCodec({
  name: "json",
  mediaType: "application/json",
  binary: false,
  encode: (_direction, _channel, _schema, frame, maxDepth) =>
    textEncoder.encode(JSON.stringify(toJsonMap(frame, 1, maxDepth, "", false))),
  decode: (_direction, _channel, _schema, bytes, limits) => {
    const parsed = parse(bytes);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new DecodeFault("BRIDGE_ERR_FRAME_INVALID", "a frame must be a JSON object");
    }
    return fromJsonMap(parsed as Record<string, unknown>, 1, limits.maxDepth, "", false);
  },
});
