import type { CodecName, DownChannel, DownFrames, UpChannel, UpFrames } from "./frames.ts";

/** Limits applied while decoding untrusted bytes. */
export interface DecodeLimits {
  /** Largest accepted payload in bytes. Default 65536. */
  maxFrameBytes: number;
  /** Deepest accepted nesting of maps and arrays inside a frame. Default 16. */
  maxDepth: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxFrameBytes: 65536, maxDepth: 16 };

/** Stable codes of decode failures (docs/errors.md). */
export type DecodeErrorCode =
  | "BRIDGE_ERR_FRAME_TOO_LARGE"
  | "BRIDGE_ERR_FRAME_DECODE"
  | "BRIDGE_ERR_FRAME_INVALID"
  | "BRIDGE_ERR_FRAME_TOO_DEEP"
  | "BRIDGE_ERR_UNKNOWN_CHANNEL";

/** Decoding is expected to fail on bad input, so it returns a value rather than throwing. */
export type DecodeResult<F> =
  | { ok: true; frame: F }
  | { ok: false; code: DecodeErrorCode; message: string; field?: string };

/**
 * One wire encoding of the frames. Implementations: json, cbor, pb. All pass the same contract suite
 * (tests/codecs/codec-contract.test.ts).
 */
export interface Codec {
  readonly name: CodecName;
  /** MIME type, e.g. application/cbor. */
  readonly mediaType: string;
  /** True for codecs whose bytes are not text (a binary device must never receive JSON). */
  readonly binary: boolean;
  encodeUp<C extends UpChannel>(channel: C, frame: UpFrames[C]): Uint8Array;
  decodeUp<C extends UpChannel>(
    channel: C,
    bytes: Uint8Array,
    limits?: Partial<DecodeLimits>,
  ): DecodeResult<UpFrames[C]>;
  encodeDown<C extends DownChannel>(channel: C, frame: DownFrames[C]): Uint8Array;
  decodeDown<C extends DownChannel>(
    channel: C,
    bytes: Uint8Array,
    limits?: Partial<DecodeLimits>,
  ): DecodeResult<DownFrames[C]>;
}
