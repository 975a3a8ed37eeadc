/** The benchmarks' one percentile rule (bench/percentile.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { median, percentile, percentileOfSorted } from "../../bench/percentile.ts";

const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

test("nearest rank: p of n values is the value at rank ceil(p/100 * n), a measured value", () => {
  // floor(q * n) as an index, the rule the fleet and agents suites had, gave 51 and 100 here: one rank above.
  assert.equal(percentile(oneToHundred, 50), 50);
  assert.equal(percentile(oneToHundred, 99), 99);
  assert.equal(percentile(oneToHundred, 90), 90);
  assert.equal(percentile(oneToHundred, 100), 100);
  assert.equal(percentile(oneToHundred, 0), 1);
  assert.equal(percentile(oneToHundred, 0.5), 1);
  // (7 / 100) * 100 is 7.000000000000001 in floating point; its ceiling would be rank 8.
  assert.equal(percentile(oneToHundred, 7), 7);
  assert.equal(percentile([5, 1, 3], 50), 3);
  assert.equal(percentile([42], 99), 42);
  const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.equal(percentile(thousand, 99.9), 999);
  assert.equal(percentile(thousand, 2.5), 25);
});

test("the median is percentile 50: the lower middle of an even count", () => {
  assert.equal(median([40, 10, 30, 20]), 20);
  assert.equal(median([3, 1, 2]), 2);
});

test("the values are sorted on a copy; a sorted typed array is read as it is", () => {
  const values = [3, 1, 2];
  assert.equal(percentile(values, 100), 3);
  assert.deepEqual(values, [3, 1, 2]);
  assert.equal(percentileOfSorted(Float64Array.from([0.5, 1.5, 2.5, 3.5]), 75), 2.5);
});

test("no values give NaN; a percentile outside 0 to 100 is a mistake, not a value", () => {
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.ok(Number.isNaN(percentileOfSorted(new Float64Array(0), 99)));
  for (const p of [-1, 101, Number.NaN]) assert.throws(() => percentile([1], p), RangeError);
});
