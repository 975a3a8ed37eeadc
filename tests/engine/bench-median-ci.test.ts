import assert from "node:assert/strict";
import { test } from "node:test";
import { medianWithInterval } from "../../bench/engine/median-ci.ts";

test("the median's bootstrap interval holds the median, is the same for the same values, and moves with them", () => {
  const values = Array.from({ length: 96 }, (_, i) => ((i * 37) % 96) / 48); // 0 to ~2, shuffled
  const a = medianWithInterval(values);
  assert.equal(a.p50, values.toSorted((x, y) => x - y)[47]);
  assert.ok(a.ci95[0] <= a.p50 && a.p50 <= a.ci95[1], `${a.ci95} holds ${a.p50}`);
  assert.ok(a.ci95[0] < a.ci95[1], "spread values give an interval of some width");
  assert.deepEqual(medianWithInterval(values), a, "deterministic");
  const shifted = medianWithInterval(values.map((v) => v + 10));
  assert.deepEqual(
    shifted.ci95.map((v) => Number((v - 10).toFixed(9))),
    a.ci95.map((v) => Number(v.toFixed(9))),
  );
});

test("equal values give a point interval; more values a narrower one; none gives NaN", () => {
  assert.deepEqual(medianWithInterval([0.5, 0.5, 0.5]), { p50: 0.5, ci95: [0.5, 0.5] });
  const spreadOf = (n: number) => {
    const { ci95 } = medianWithInterval(Array.from({ length: n }, (_, i) => (i % 10) / 10));
    return ci95[1] - ci95[0];
  };
  assert.ok(spreadOf(1000) < spreadOf(20), "the interval narrows as pairs are added");
  const none = medianWithInterval([]);
  assert.ok(Number.isNaN(none.p50) && none.ci95.every(Number.isNaN));
});
