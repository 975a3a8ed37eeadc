/**
 * The broker's use of codecs/: parsing up topics, naming down topics, decoding and encoding frames in a
 * connection's codec. Kept in one file so the broker's dependency on the codecs API is visible at a glance.
 */
import type { DecodeErrorCode, DecodeLimits } from "../codecs/codec.ts";
import type { CodecName, DownChannel, DownMessage, UpChannel, UpMessage } from "../codecs/frames.ts";
import {
  decodeUpMessage,
  encodeDownMessage,
  formatDownTopic,
  getCodec,
  parseTopic,
  sniffCodec,
  type TopicErrorCode,
} from "../codecs/index.ts";

/** An up topic parsed, or why it cannot be. */
export type UpTopic =
  | { ok: true; channel: UpChannel; codec?: CodecName }
  | { ok: false; code: TopicErrorCode; message: string };

/** Parses `devices/{id}/up/{channel}[/{codec}]` (the ACL already checked the `devices/{id}/up/` prefix). */
export function parseUpTopic(topic: string): UpTopic {
  const parsed = parseTopic(topic);
  if (!parsed.ok) return { ok: false, code: parsed.code, message: parsed.message };
  if (parsed.topic.direction !== "up") {
    return { ok: false, code: "BRIDGE_ERR_TOPIC_INVALID", message: "devices publish to up topics only" };
  }
  return { ok: true, channel: parsed.topic.channel, codec: parsed.topic.codec };
}

/** `devices/{id}/down/{channel}`. */
export function downTopic(deviceId: string, channel: DownChannel): string {
  return formatDownTopic(deviceId, channel);
}

/**
 * The codec of a first hello from a device whose codec nobody knows yet (no suffix, no registry codec): guessed
 * from the payload's first byte, so a JSON-only device can say hello before the bridge knows it speaks JSON.
 */
export function guessHelloCodec(bytes: Uint8Array): CodecName | undefined {
  return sniffCodec(bytes);
}

export type DecodedUp = { ok: true; message: UpMessage } | { ok: false; code: DecodeErrorCode; message: string };

/** Decodes untrusted bytes; never throws (a codec that throws is reported as a decode error). */
export function decodeUp(codec: CodecName, channel: UpChannel, bytes: Uint8Array, limits: DecodeLimits): DecodedUp {
  try {
    const result = decodeUpMessage(getCodec(codec), channel, bytes, limits);
    if (!result.ok) return { ok: false, code: result.code, message: result.message };
    return { ok: true, message: result.frame };
  } catch (err) {
    return { ok: false, code: "BRIDGE_ERR_FRAME_DECODE", message: err instanceof Error ? err.message : "undecodable" };
  }
}

/** Encodes a down frame in `codec`. Throws only on a frame that breaks its schema (a server-side bug). */
export function encodeDown(codec: CodecName, message: DownMessage): Uint8Array {
  return encodeDownMessage(getCodec(codec), message);
}
