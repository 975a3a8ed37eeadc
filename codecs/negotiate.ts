/**
 * Which codec a device's payloads are in (DESIGN section 3): the topic's codec suffix (for that one up message),
 * then the codec of the device's last hello, then its registry record, then (down frames of a device nothing else is
 * known about) the suffix of its latest up message, then the bridge default (`cbor`).
 */
import type { CodecName } from "./frames.ts";
import { isCodecName } from "./topics.ts";

/** The bridge-wide default codec. */
export const DEFAULT_CODEC: CodecName = "cbor";

export interface CodecHints {
  /** The `{codec}` suffix of the up topic; absent for down frames, which always use the device's codec. */
  topicCodec?: CodecName;
  /** The `codec` field of the device's last hello. */
  helloCodec?: CodecName;
  /** The codec stored in the device registry. */
  registryCodec?: CodecName;
  /**
   * For down frames: the `{codec}` suffix of the device's latest up message. Added after the first contract. A weak
   * hint, used only when neither a hello nor the registry names a codec: a suffix applies to its own message, so a
   * device known to be binary that sends one `/json` message keeps its codec (a binary device never gets JSON text).
   */
  latestTopicCodec?: CodecName;
  /** The bridge default. Default `cbor`. */
  defaultCodec?: CodecName;
}

export type CodecSource = "topic" | "hello" | "registry" | "default";

/**
 * Picks the codec by precedence and says where it came from. Unknown names are skipped, so a corrupt registry row
 * falls through to the default instead of failing.
 *
 * @example
 * negotiateCodec({ helloCodec: "pb", registryCodec: "json" }); // { codec: "pb", source: "hello" }
 */
export function negotiateCodec(hints: CodecHints): { codec: CodecName; source: CodecSource } {
  if (isCodecName(hints.topicCodec)) return { codec: hints.topicCodec, source: "topic" };
  if (isCodecName(hints.helloCodec)) return { codec: hints.helloCodec, source: "hello" };
  if (isCodecName(hints.registryCodec)) return { codec: hints.registryCodec, source: "registry" };
  if (isCodecName(hints.latestTopicCodec)) return { codec: hints.latestTopicCodec, source: "topic" };
  return { codec: isCodecName(hints.defaultCodec) ? hints.defaultCodec : DEFAULT_CODEC, source: "default" };
}

/**
 * Guesses the codec of a payload from its first byte, for a hello sent without a suffix by a device whose codec is
 * not known yet. The three encodings never share a first byte: JSON starts with `{` (or a space, tab or CR), a CBOR frame
 * with a map head (0xa0-0xbf) or the self-described tag 55799 (0xd9), a protobuf Frame with the key of field 1-12.
 * Undefined when the byte fits none.
 */
export function sniffCodec(bytes: Uint8Array): CodecName | undefined {
  if (bytes.length === 0) return undefined;
  const b = bytes[0];
  // 0x0a is both a newline and the protobuf key of field 1 (up_hello); it is read as protobuf.
  if (b === 0x7b || b === 0x20 || b === 0x09 || b === 0x0d) return "json";
  if ((b >= 0xa0 && b <= 0xbf) || b === 0xd9) return "cbor";
  // A protobuf key byte is (field << 3) | wire type 2 (length-delimited) for fields 1-12 of Frame.
  if ((b & 7) === 2 && b >> 3 >= 1 && b >> 3 <= 12) return "pb";
  return undefined;
}
