/**
 * The frame-wide bound on indefinite-length string chunks (MAX_FRAME_STRING_CHUNKS) counts every string of the frame,
 * wherever it sits (map keys, map values, array items, bignum contents, at any depth), and starts again at zero with
 * each frame, also after a frame that was refused half-way: the decoder's state is shared by every decode.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cborCodec, type DecodeResult } from "../../codecs/index.ts";
import { MAX_FRAME_STRING_CHUNKS, MAX_STRING_CHUNKS } from "../../codecs/limits.ts";
import { hex } from "./raw-writers.ts";

/** An indefinite-length text string of `chunks` one-byte chunks ("a" each), as hex. */
const chunkedText = (chunks: number, char = "61") => `7f${`61${char}`.repeat(chunks)}ff`;
/** An indefinite-length byte string of `chunks` one-byte chunks, as hex. */
const chunkedBytes = (chunks: number) => `5f${"4101".repeat(chunks)}ff`;

/** Decodes an ack frame whose `res` is `resHex`. */
function decodeRes(resHex: string): DecodeResult<unknown> {
  return cborCodec.decodeUp("ack", hex(`a3 626964 6161 626f6b f5 637265 73 ${resHex}`));
}

/** The two-hex-digit head of a definite map or array of `n` (< 24) items. */
const head = (major: 0x80 | 0xa0, n: number) => (major | n).toString(16);

/**
 * A `res` holding exactly `total` chunks spread over strings in every place a string can be: map keys (distinct),
 * map values, array items, a bignum's content, nested a few levels deep.
 */
function spreadChunks(total: number): string {
  const perString = MAX_STRING_CHUNKS / 4;
  const strings = total / perString;
  assert.ok(Number.isInteger(strings) && strings % 4 === 0, "a multiple of four strings");
  const parts: string[] = [];
  for (let i = 0; i < strings / 4; i++) {
    // A map whose key and value are chunked, inside an array with a chunked byte string and a chunked bignum.
    const key = `7f${"6161".repeat(perString - 1)}61${(0x30 + (i % 10)).toString(16)}${i >= 10 ? "6178" : ""}ff`;
    const bignum = `c2${chunkedBytes(perString)}`;
    parts.push(`${head(0x80, 3)}${head(0xa0, 1)}${key}${chunkedText(perString)}${chunkedBytes(perString)}${bignum}`);
  }
  assert.ok(parts.length < 24);
  return `${head(0x80, parts.length)}${parts.join("")}`;
}

describe("CBOR chunks of indefinite-length strings per frame", () => {
  test("counts the chunks of strings in map keys, map values, array items and bignums at any depth", () => {
    const atLimit = decodeRes(spreadChunks(MAX_FRAME_STRING_CHUNKS));
    assert.equal(atLimit.ok, true, atLimit.ok ? "" : atLimit.message);
    // One more chunk anywhere (here a one-chunk string in the last place) is refused.
    const over = decodeRes(`82 ${spreadChunks(MAX_FRAME_STRING_CHUNKS)} ${chunkedText(1)}`);
    assert.equal(over.ok, false);
    if (!over.ok) {
      assert.equal(over.code, "BRIDGE_ERR_FRAME_INVALID");
      assert.match(over.message, /the limit per frame/);
    }
  });

  test("starts again at zero with each frame", () => {
    for (let i = 0; i < 3; i++) {
      const result = decodeRes(spreadChunks(MAX_FRAME_STRING_CHUNKS));
      assert.equal(result.ok, true, `frame ${i}: ${result.ok ? "" : result.message}`);
    }
  });

  test("starts again at zero after a frame refused half-way, whatever refused it", () => {
    const refusedHalfWay = [
      // Truncated after 4000 chunks.
      `9f ${chunkedText(1000).repeat(4)}`,
      // Invalid UTF-8 after 4000 chunks.
      `9f ${chunkedText(1000).repeat(4)} 61ff ff`,
      // Over the per-frame limit.
      `9f ${chunkedText(1000).repeat(5)} ff`,
      // Over the per-string limit after 3000 chunks.
      `9f ${chunkedText(1000).repeat(3)} ${chunkedText(MAX_STRING_CHUNKS + 1)} ff`,
      // Nested too deep after 4000 chunks.
      `9f ${chunkedText(1000).repeat(4)} ${"81".repeat(40)}00 ff`,
    ];
    for (const bad of refusedHalfWay) {
      assert.equal(decodeRes(bad).ok, false, bad.slice(0, 20));
      const next = decodeRes(spreadChunks(MAX_FRAME_STRING_CHUNKS));
      assert.equal(next.ok, true, next.ok ? "" : next.message);
    }
  });
});
