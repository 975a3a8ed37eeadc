/**
 * The usual first mistake with a binary device (its firmware, or a person trying the bridge with mosquitto_pub): JSON
 * text published without the `/json` topic suffix. The CBOR or protobuf decoder's own reason ("length runs past the
 * frame at byte 9") says nothing of that, so the refusal of such a payload names it.
 */
import type { CodecName, UpChannel } from "../codecs/frames.ts";

/** JSON's whitespace (RFC 8259 section 2): space, tab, line feed, carriage return. */
function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/**
 * Whether the payload reads as one JSON object: `{` ... `}` around optional whitespace. A frame is a map, so no CBOR
 * or protobuf frame has this shape (0x7b is a CBOR text head with an 8-byte length, a protobuf group start).
 */
export function looksLikeJsonObject(payload: Uint8Array): boolean {
  let start = 0;
  let end = payload.length - 1;
  while (start <= end && isJsonSpace(payload[start]!)) start++;
  while (end > start && isJsonSpace(payload[end]!)) end--;
  return end > start && payload[start] === 0x7b && payload[end] === 0x7d;
}

/**
 * The message of a refusal of a payload read in `codec` because its topic had no codec suffix: `reason` as it is,
 * unless the payload is JSON text read as a binary codec; then it says so and how to send it.
 */
export function decodeRefusalMessage(
  codec: CodecName,
  channel: UpChannel,
  payload: Uint8Array,
  reason: string,
): string {
  if (codec === "json" || !looksLikeJsonObject(payload)) return reason;
  const advice = `encode it in ${codec} or publish it on .../up/${channel}/json`;
  return `payload looks like JSON text but was read as ${codec}: ${advice} (${reason})`;
}
