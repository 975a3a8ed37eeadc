import assert from "node:assert/strict";
import { test } from "node:test";
import { lengthPlan, unitOf } from "../../bench/engine/length-plan.ts";
import { checkThinkMs, thinkMsOf } from "../../bench/engine/think-plan.ts";

test("think times are the same for every mode and spread over [0, thinkMs)", () => {
  const pauses: number[] = [];
  for (let worker = 0; worker < 64; worker++) {
    for (let k = 0; k < 8; k++) {
      const pause = thinkMsOf(20, worker, k);
      assert.equal(pause, thinkMsOf(20, worker, k));
      assert.ok(pause >= 0 && pause < 20, `pause ${pause}`);
      pauses.push(pause);
    }
  }
  // Uniform enough that arrivals fall anywhere in a step: every fifth of the range is used, none holds half.
  for (let fifth = 0; fifth < 5; fifth++) {
    const inFifth = pauses.filter((p) => Math.floor(p / 4) === fifth).length;
    assert.ok(inFifth > pauses.length / 10 && inFifth < pauses.length / 2, `fifth ${fifth}: ${inFifth}`);
  }
});

test("no think time waits nothing, and a bad one is refused", () => {
  assert.equal(thinkMsOf(0, 3, 1), 0);
  assert.equal(checkThinkMs(12.5), 12.5);
  assert.throws(() => checkThinkMs(-1), /--think-ms must be a number >= 0/);
  assert.throws(() => checkThinkMs(Number.NaN), /--think-ms/);
});

test("the pauses do not follow the lengths drawn from the same (worker, k), and the lengths are as before", () => {
  const plan = lengthPlan(64, 0.5);
  let same = 0;
  for (let worker = 0; worker < 32; worker++) {
    for (let k = 0; k < 8; k++) {
      const lengthUnit = (plan.lengthOf(worker, k) - plan.minTokens) / (plan.maxTokens - plan.minTokens + 1);
      if (Math.abs(lengthUnit - thinkMsOf(1, worker, k)) < 0.02) same++;
    }
  }
  assert.ok(same < 20, `${same} of 256 pauses track their lengths`);
  assert.equal(unitOf(5, 2), unitOf(5, 2, 0));
});
