/**
 * Codecs and the device wire protocol (docs/protocol.md): the three encodings of frames, the topic scheme, codec
 * negotiation and the frame types.
 */
export { cborCodec } from "./cbor/cbor-codec.ts";
export type { Codec, DecodeErrorCode, DecodeLimits, DecodeResult } from "./codec.ts";
export { DEFAULT_DECODE_LIMITS } from "./codec.ts";
export { DEVICE_ID_CHARACTERS, DEVICE_ID_PATTERN, DEVICE_ID_RULE, isValidDeviceId } from "./device-id.ts";
export type * from "./frames.ts";
export {
  CODEC_NAMES,
  DOWN_CHANNELS,
  isValueMap,
  PROTOCOL_CHANNELS,
  PROTOCOL_VERSION,
  UP_CHANNELS,
} from "./frames.ts";
export { jsonCodec } from "./json/json-codec.ts";
export { MAX_DEPTH_CEILING, resolveLimits } from "./limits.ts";
export { decodeDownMessage, decodeUpMessage, encodeDownMessage, encodeUpMessage } from "./messages.ts";
export { type CodecHints, type CodecSource, DEFAULT_CODEC, negotiateCodec, sniffCodec } from "./negotiate.ts";
export { bridgeProtoRoot, pbCodec } from "./pb/pb-codec.ts";
export { ALL_CODECS, getCodec } from "./registry.ts";
export {
  DOWN_SCHEMAS,
  type FieldKind,
  type FieldSpec,
  type FrameSchema,
  MAX_METRIC_ALIASES,
  MAX_FIRMWARE_LENGTH,
  MAX_METRIC_NAME_LENGTH,
  UP_SCHEMAS,
} from "./schema/channels.ts";
export {
  type DeviceTopic,
  deviceTopicFilters,
  formatDownTopic,
  formatUpTopic,
  isCodecName,
  isDownChannel,
  isUpChannel,
  parseTopic,
  type TopicErrorCode,
  type TopicParseResult,
} from "./topics.ts";
