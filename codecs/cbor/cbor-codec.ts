import type { Codec } from "../codec.ts";
import { createCodec } from "../make-codec.ts";
import { decodeCborItem } from "./decoder.ts";
import { encodeCborMap } from "./encoder.ts";

/**
 * CBOR (RFC 8949): each frame is one plain map with short text keys, preferred serialization, no tags but bignums.
 *
 * @example
 * const bytes = cborCodec.encodeUp("telemetry", { ts: 1764201600000, r: { temp: 21.5 } });
 * const result = cborCodec.decodeUp("telemetry", bytes); // { ok: true, frame: { ts: ..., r: { temp: 21.5 } } }
 */
export const cborCodec: Codec = createCodec({
  name: "cbor",
  mediaType: "application/cbor",
  binary: true,
  encode: (_direction, _channel, _schema, frame, maxDepth) => encodeCborMap(frame, maxDepth),
  decode: (_direction, _channel, _schema, bytes, limits) => decodeCborItem(bytes, limits.maxDepth),
});
