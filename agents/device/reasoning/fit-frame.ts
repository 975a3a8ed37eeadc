/**
 * Fitting `down/reason` frames to a device's `maxFrame`. The size that matters is the encoded size in the device's
 * own codec (CBOR, protobuf and JSON differ by tens of bytes for the same frame), so it is measured with the codec
 * rather than guessed with a fixed allowance: a guess either wastes a small device's frame or empties it entirely.
 */
import type { Codec } from "../../../codecs/codec.ts";
import { longestPrefixWhere } from "../../../codecs/cut-text.ts";
import type { ReasonStreamFrame } from "../../../codecs/frames.ts";

/** Encoded size of a reason frame in `codec`. */
export function reasonFrameBytes(codec: Codec, frame: ReasonStreamFrame): number {
  return codec.encodeDown("reason", frame).byteLength;
}

/**
 * The longest prefix of `text` (cut on a UTF-8 character boundary) for which `frameWith(prefix)` encodes to at most
 * `maxFrame` bytes; "" when not even one character fits. Encoded size grows with the prefix, so a binary search
 * over byte lengths finds it in O(log n) encodings.
 */
export function longestFittingPrefix(
  codec: Codec,
  text: string,
  maxFrame: number,
  frameWith: (text: string) => ReasonStreamFrame,
): string {
  return longestPrefixWhere(text, (candidate) => reasonFrameBytes(codec, frameWith(candidate)) <= maxFrame);
}

/**
 * Puts as much of `text` into the final frame as its encoding in `codec` allows within `maxFrame` bytes. When the
 * text had to be cut, `fr` becomes "length" (the device sees that its answer is partial), unless it is "error" (the
 * turn failed, which says more). When not even the frame without text fits, the text is left out: the final frame is
 * what tells the device the turn ended.
 */
export function fitFinalFrame(
  codec: Codec,
  frame: ReasonStreamFrame,
  text: string,
  maxFrame: number | null,
): ReasonStreamFrame {
  if (text === "") return frame;
  if (maxFrame === null) return { ...frame, text };
  if (reasonFrameBytes(codec, { ...frame, text }) <= maxFrame) return { ...frame, text };
  // Measured with fr "length" in place: it is longer than "stop" and must fit too. A failed turn (the text of its
  // rounds before the failure) keeps fr "error": "length" would tell the device its answer was merely long.
  const out: ReasonStreamFrame = { ...frame, fr: frame.fr === "error" ? "error" : "length" };
  const fitted = longestFittingPrefix(codec, text, maxFrame, (t) => ({ ...out, text: t }));
  if (fitted !== "") out.text = fitted;
  return out;
}

/**
 * Splits one streamed delta into texts whose chunk frames (`{id, seq, text}`) each encode within `maxFrame` bytes
 * in `codec`. `maxSeq` bounds the seqs these chunks will carry (the turn's next seq plus the delta's length is
 * always enough, as every chunk holds at least one character): integer sizes grow with the value in CBOR and
 * protobuf, so measuring with the bound keeps every real chunk within the limit. Characters are never split. A
 * character that does not fit next to the id and seq even alone is left out (so for a very small maxFrame nothing
 * is streamed; the final frame still ends the turn).
 */
export function splitChunkText(
  codec: Codec,
  id: string,
  text: string,
  maxFrame: number | null,
  maxSeq: number,
): string[] {
  if (text === "") return [];
  if (maxFrame === null) return [text];
  const pieces: string[] = [];
  let rest = text;
  while (rest !== "") {
    const piece = longestFittingPrefix(codec, rest, maxFrame, (t) => ({ id, seq: maxSeq, text: t }));
    if (piece === "") {
      // This character (a wide one) cannot fit at all: skip it rather than stall or overflow the device.
      rest = rest.slice(String.fromCodePoint(rest.codePointAt(0) ?? 0).length);
      continue;
    }
    pieces.push(piece);
    rest = rest.slice(piece.length);
  }
  return pieces;
}
