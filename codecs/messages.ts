/**
 * Decoding and encoding with the channel given as an untrusted string (a topic level), yielding the discriminated
 * `UpMessage` / `DownMessage` unions the agent host works with.
 */
import type { Codec, DecodeLimits, DecodeResult } from "./codec.ts";
import type { DownMessage, UpMessage } from "./frames.ts";
import { isDownChannel, isUpChannel } from "./topics.ts";

/**
 * Decodes an up payload whose channel came from a topic.
 *
 * @example
 * const r = decodeUpMessage(cborCodec, "telemetry", payload);
 * if (r.ok) host.deliver(id, connId, r.frame);
 */
export function decodeUpMessage(
  codec: Codec,
  channel: string,
  bytes: Uint8Array,
  limits?: Partial<DecodeLimits>,
): DecodeResult<UpMessage> {
  if (!isUpChannel(channel)) {
    return { ok: false, code: "BRIDGE_ERR_UNKNOWN_CHANNEL", message: `no up channel named ${String(channel)}` };
  }
  const result = codec.decodeUp(channel, bytes, limits);
  return result.ok ? { ok: true, frame: { channel, frame: result.frame } as UpMessage } : result;
}

/** Decodes a down payload whose channel came from a topic (the device side: firmware simulator, tests). */
export function decodeDownMessage(
  codec: Codec,
  channel: string,
  bytes: Uint8Array,
  limits?: Partial<DecodeLimits>,
): DecodeResult<DownMessage> {
  if (!isDownChannel(channel)) {
    return { ok: false, code: "BRIDGE_ERR_UNKNOWN_CHANNEL", message: `no down channel named ${String(channel)}` };
  }
  const result = codec.decodeDown(channel, bytes, limits);
  return result.ok ? { ok: true, frame: { channel, frame: result.frame } as DownMessage } : result;
}

/** Encodes a down message in `codec`. Throws `BridgeError` (BRIDGE_ERR_FRAME_ENCODE) for a frame that breaks its schema. */
export function encodeDownMessage(codec: Codec, message: DownMessage): Uint8Array {
  return codec.encodeDown(message.channel, message.frame as never);
}

/** Encodes an up message in `codec`. Throws `BridgeError` (BRIDGE_ERR_FRAME_ENCODE) for a frame that breaks its schema. */
export function encodeUpMessage(codec: Codec, message: UpMessage): Uint8Array {
  return codec.encodeUp(message.channel, message.frame as never);
}
