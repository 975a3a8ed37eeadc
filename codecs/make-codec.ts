/**
 * Builds a `Codec` from a wire format, so every codec shares one boundary: channel lookup, limits, the size check,
 * schema validation and the rule that decoding never throws while encoding throws `BridgeError` for a bad frame.
 */
import { BridgeError } from "../errors/index.ts";
import type { Codec, DecodeLimits, DecodeResult } from "./codec.ts";
import { DEFAULT_DECODE_LIMITS } from "./codec.ts";
import type { CodecName, Direction, DownChannel, DownFrames, UpChannel, UpFrames } from "./frames.ts";
import { resolveLimits } from "./limits.ts";
import { DOWN_SCHEMAS, type FrameSchema, UP_SCHEMAS } from "./schema/channels.ts";
import { checkFrame } from "./schema/check.ts";
import { DecodeFault, toFailure } from "./schema/fault.ts";

/** What a wire format supplies; both functions throw `DecodeFault`. */
export interface WireFormat {
  readonly name: CodecName;
  readonly mediaType: string;
  readonly binary: boolean;
  /** Encodes a frame already checked against `schema` (only its fields, in schema order). */
  encode(
    direction: Direction,
    channel: string,
    schema: FrameSchema,
    frame: Record<string, unknown>,
    maxDepth: number,
  ): Uint8Array;
  /** Decodes bytes (within the size limit) into a map for `checkFrame`, enforcing `limits.maxDepth`. */
  decode(direction: Direction, channel: string, schema: FrameSchema, bytes: Uint8Array, limits: DecodeLimits): unknown;
}

function schemaFor(direction: Direction, channel: string): FrameSchema | undefined {
  const table: Readonly<Record<string, FrameSchema>> = direction === "up" ? UP_SCHEMAS : DOWN_SCHEMAS;
  return Object.hasOwn(table, channel) ? table[channel] : undefined;
}

function encodeWith(format: WireFormat, direction: Direction, channel: string, frame: unknown): Uint8Array {
  const schema = schemaFor(direction, channel);
  if (schema === undefined) {
    throw new BridgeError("BRIDGE_ERR_UNKNOWN_CHANNEL", `no ${direction} channel named ${String(channel)}`, {
      field: "channel",
    });
  }
  try {
    const checked = checkFrame(schema, frame);
    return format.encode(direction, channel, schema, checked, DEFAULT_DECODE_LIMITS.maxDepth);
  } catch (err) {
    if (err instanceof DecodeFault) {
      throw new BridgeError(
        "BRIDGE_ERR_FRAME_ENCODE",
        `cannot encode ${schema.name} as ${format.name}: ${err.message}`,
        { field: err.field, reason: err.code },
        { cause: err },
      );
    }
    throw err;
  }
}

function decodeWith<F>(
  format: WireFormat,
  direction: Direction,
  channel: string,
  bytes: Uint8Array,
  partial: Partial<DecodeLimits> | undefined,
): DecodeResult<F> {
  const schema = schemaFor(direction, channel);
  if (schema === undefined) {
    return {
      ok: false,
      code: "BRIDGE_ERR_UNKNOWN_CHANNEL",
      message: `no ${direction} channel named ${String(channel)}`,
    };
  }
  const limits = resolveLimits(partial);
  if (!(bytes instanceof Uint8Array)) {
    return { ok: false, code: "BRIDGE_ERR_FRAME_DECODE", message: "payload is not a byte array" };
  }
  if (bytes.length > limits.maxFrameBytes) {
    return {
      ok: false,
      code: "BRIDGE_ERR_FRAME_TOO_LARGE",
      message: `frame of ${bytes.length} bytes exceeds the limit of ${limits.maxFrameBytes}`,
    };
  }
  try {
    const raw = format.decode(direction, channel, schema, bytes, limits);
    return { ok: true, frame: checkFrame(schema, raw) as F };
  } catch (err) {
    return toFailure(err);
  }
}

/** Wraps a wire format into the `Codec` interface. */
export function createCodec(format: WireFormat): Codec {
  return {
    name: format.name,
    mediaType: format.mediaType,
    binary: format.binary,
    encodeUp<C extends UpChannel>(channel: C, frame: UpFrames[C]): Uint8Array {
      return encodeWith(format, "up", channel, frame);
    },
    decodeUp<C extends UpChannel>(channel: C, bytes: Uint8Array, limits?: Partial<DecodeLimits>) {
      return decodeWith<UpFrames[C]>(format, "up", channel, bytes, limits);
    },
    encodeDown<C extends DownChannel>(channel: C, frame: DownFrames[C]): Uint8Array {
      return encodeWith(format, "down", channel, frame);
    },
    decodeDown<C extends DownChannel>(channel: C, bytes: Uint8Array, limits?: Partial<DecodeLimits>) {
      return decodeWith<DownFrames[C]>(format, "down", channel, bytes, limits);
    },
  };
}
