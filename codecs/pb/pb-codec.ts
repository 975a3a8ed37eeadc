import type { Codec } from "../codec.ts";
import { createCodec } from "../make-codec.ts";
import { CASE_NAMES, DOWN_CASES, UP_CASES } from "./layout.ts";
import { readPbFrame } from "./pb-reader.ts";
import { writePbFrame } from "./pb-writer.ts";

export { bridgeProtoRoot } from "./layout.ts";

const describeCase = (n: number): string => CASE_NAMES.get(n) ?? "";

/**
 * Protocol Buffers: each payload is one `agentbridge.v1.Frame` (codecs/bridge.proto) with the oneof case of its
 * topic's channel. For nanopb and other generated firmware code. The reader and writer are schema-driven code over
 * the field numbers of the parsed .proto (layout.ts): protobufjs's own message objects cost a conversion each way,
 * which made protobuf half as fast as JSON.
 *
 * @example
 * const bytes = pbCodec.encodeDown("cmd", { id: "c1", n: "reboot" });
 * const result = pbCodec.decodeDown("cmd", bytes);
 */
export const pbCodec: Codec = createCodec({
  name: "pb",
  mediaType: "application/x-protobuf",
  binary: true,
  encode: (direction, channel, _schema, frame, maxDepth) => {
    const c = (direction === "up" ? UP_CASES : DOWN_CASES).get(channel)!;
    return writePbFrame(c.number, c.body, frame, maxDepth);
  },
  decode: (direction, channel, _schema, bytes, limits) => {
    const c = (direction === "up" ? UP_CASES : DOWN_CASES).get(channel)!;
    return readPbFrame(bytes, c.number, c.body, limits.maxDepth, describeCase, `${direction}/${channel}`);
  },
});
