import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { Codec } from "../codec.ts";
import type { Direction } from "../frames.ts";
import { createCodec } from "../make-codec.ts";
import { DecodeFault } from "../schema/fault.ts";
import { frameFromPb, frameToPb } from "./pb-frame.ts";
import type { PbObject } from "./pb-value.ts";

/** The parsed bridge.proto, for callers that need the raw types (tests, tools). */
export const bridgeProtoRoot: protobuf.Root = protobuf.parse(
  readFileSync(new URL("../bridge.proto", import.meta.url), "utf8"),
).root;

const FrameType = bridgeProtoRoot.lookupType("agentbridge.v1.Frame");
const FRAME_CASES: readonly string[] = FrameType.oneofsArray[0].fieldsArray.map((f) => f.name);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The oneof case of a channel: `up` + `hello` -> `upHello`. */
export function frameCase(direction: Direction, channel: string): string {
  return `${direction}${channel.charAt(0).toUpperCase()}${channel.slice(1)}`;
}

/** protobufjs decodes strings leniently; the bridge refuses invalid UTF-8 as the other codecs do. */
function strictString(this: protobuf.Reader): string {
  const length = this.uint32();
  const start = this.pos;
  const end = start + length;
  if (end > this.len) throw new DecodeFault("BRIDGE_ERR_FRAME_DECODE", "a string field runs past the frame");
  this.pos = end;
  const buf = this.buf;
  // ASCII fast path: keys and ids are short and plain; TextDecoder's call overhead dominates for them.
  if (length < 24) {
    let s = "";
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (b > 0x7f) return decodeUtf8(buf.subarray(start, end));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decodeUtf8(buf.subarray(start, end));
}

function decodeUtf8(raw: Uint8Array): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw new DecodeFault("BRIDGE_ERR_FRAME_DECODE", "a string field is not valid UTF-8");
  }
}

function decodeFrame(bytes: Uint8Array): PbObject {
  const reader = protobuf.Reader.create(bytes);
  reader.string = strictString;
  try {
    return FrameType.decode(reader) as unknown as PbObject;
  } catch (err) {
    if (err instanceof DecodeFault || err instanceof RangeError) throw err;
    // protobufjs's own recursion limit (100 messages) carries no code, only this text.
    if (err instanceof Error && err.message === "maximum nesting depth exceeded") {
      throw new DecodeFault("BRIDGE_ERR_FRAME_TOO_DEEP", "protobuf messages nested deeper than 100");
    }
    throw new DecodeFault("BRIDGE_ERR_FRAME_DECODE", `malformed protobuf: ${(err as Error).message}`);
  }
}

/**
 * Protocol Buffers: each payload is one `agentbridge.v1.Frame` (codecs/bridge.proto) with the oneof case of its
 * topic's channel. For nanopb and other generated firmware code.
 *
 * @example
 * const bytes = pbCodec.encodeDown("cmd", { id: "c1", n: "reboot" });
 * const result = pbCodec.decodeDown("cmd", bytes);
 */
export const pbCodec: Codec = createCodec({
  name: "pb",
  mediaType: "application/x-protobuf",
  binary: true,
  encode: (direction, channel, schema, frame, maxDepth) => {
    const body = frameToPb(schema, frame, 1, maxDepth, "");
    const bytes = FrameType.encode({ [frameCase(direction, channel)]: body }).finish();
    // protobufjs returns a Buffer cut from Node's shared 8 KiB pool; a plain copy neither pins the pool nor differs
    // in type from what the other codecs return.
    return new Uint8Array(bytes);
  },
  decode: (direction, channel, schema, bytes, limits) => {
    const message = decodeFrame(bytes);
    const expected = frameCase(direction, channel);
    const present = FRAME_CASES.filter((c) => Object.hasOwn(message, c) && message[c] !== null);
    if (present.length !== 1 || present[0] !== expected) {
      const holds = present.length === 0 ? "no body" : present.join(" and ");
      throw new DecodeFault(
        "BRIDGE_ERR_FRAME_INVALID",
        `protobuf Frame holds ${holds}, the topic says ${direction}/${channel}`,
      );
    }
    return frameFromPb(schema, message[expected] as PbObject, 1, limits.maxDepth, "");
  },
});
