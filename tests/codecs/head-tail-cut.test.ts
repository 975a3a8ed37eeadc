/**
 * The middle cut of a text: its longest `head…tail` form within a size, the two ends alike, never a split character.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { longestHeadTailWhere } from "../../codecs/cut-text.ts";

const withinBytes =
  (max: number) =>
  (candidate: string): boolean =>
    Buffer.byteLength(candidate, "utf8") <= max;

test("a text that fits is kept whole", () => {
  assert.equal(longestHeadTailWhere("abcdef", withinBytes(6)), "abcdef");
});

test("half of what fits besides the ellipsis goes to each end, the odd byte to the tail", () => {
  assert.equal(longestHeadTailWhere("abcdefghijk", withinBytes(9)), "abc…ijk");
  assert.equal(longestHeadTailWhere("abcdefghijk", withinBytes(10)), "abc…hijk");
  assert.equal(longestHeadTailWhere("abcdefghijk", withinBytes(4)), "…k");
});

test("bytes a multi-byte character could not use go to the other end rather than being lost", () => {
  // 11 bytes besides the ellipsis: a head of 6 would take the emoji (4 bytes, a surrogate pair) and leave the tail 5,
  // so the head stops before it and the tail takes what the emoji would have used.
  assert.equal(longestHeadTailWhere("ab🌡cdefghijklmn", withinBytes(14)), "ab…fghijklmn");
  // At the tail's cut the emoji does not fit: the head takes the bytes it leaves.
  assert.equal(longestHeadTailWhere("abcdef🌡xy", withinBytes(9)), "abcd…xy");
  assert.equal(longestHeadTailWhere("abcdef🌡xy", withinBytes(11)), "abcdef…xy");
});

test("nothing is kept when not even one character and the ellipsis fit", () => {
  assert.equal(longestHeadTailWhere("abcdef", withinBytes(3)), "");
  assert.equal(longestHeadTailWhere("🌡🌡", withinBytes(6)), "");
});
