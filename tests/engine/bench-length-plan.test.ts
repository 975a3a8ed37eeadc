/** The engine benchmark's answer lengths (bench/engine/length-plan.ts): seeded per request, the same in every mode. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { lengthPlan } from "../../bench/engine/length-plan.ts";

describe("benchmark length plan", () => {
  test("the k-th request of a worker asks for the same length from any plan with the same options", () => {
    const a = lengthPlan(64, 0.5);
    const b = lengthPlan(64, 0.5);
    for (let w = 0; w < 8; w++) for (let k = 0; k < 8; k++) assert.equal(a.lengthOf(w, k), b.lengthOf(w, k));
    const firsts = new Set(Array.from({ length: 16 }, (_, w) => a.lengthOf(w, 0)));
    assert.ok(firsts.size > 4, "workers ask for different lengths");
  });

  test("lengths stay in [round(T(1-S)), round(T(1+S))], cover it, and average about T", () => {
    const plan = lengthPlan(64, 0.5);
    assert.deepEqual([plan.minTokens, plan.maxTokens], [32, 96]);
    const seen = new Set<number>();
    let sum = 0;
    for (let w = 0; w < 64; w++) {
      for (let k = 0; k < 64; k++) {
        const length = plan.lengthOf(w, k);
        assert.ok(length >= 32 && length <= 96, `${length}`);
        seen.add(length);
        sum += length;
      }
    }
    assert.equal(seen.size, 65);
    assert.ok(Math.abs(sum / 4096 - 64) < 1, `mean ${sum / 4096}`);
  });

  test("spread 0 asks for the mean every time", () => {
    const plan = lengthPlan(64, 0);
    assert.deepEqual([plan.minTokens, plan.maxTokens, plan.lengthOf(3, 9)], [64, 64, 64]);
  });

  test("a spread outside [0, 1) or a range reaching 0 tokens is refused", () => {
    assert.throws(() => lengthPlan(64, 1), /--length-spread/);
    assert.throws(() => lengthPlan(64, -0.1), /--length-spread/);
    assert.throws(() => lengthPlan(64, Number.NaN), /--length-spread/);
    assert.throws(() => lengthPlan(1, 0.6), /0 tokens/);
    assert.throws(() => lengthPlan(0, 0), /--output-tokens/);
  });
});
