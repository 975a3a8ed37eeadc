/** The engine benchmarks' one result per mode and concurrency (bench/engine/args.ts medianOfRounds). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { medianOfRounds } from "../../bench/engine/args.ts";

test("each number field is its own median over the rounds, other fields come from the first round", () => {
  const rounds = [
    { mode: "bridge", concurrency: 16, tokensPerSecond: 300, firstP50Ms: 9, tokensPerChunk: Number.NaN },
    { mode: "bridge", concurrency: 16, tokensPerSecond: 100, firstP50Ms: 7, tokensPerChunk: Number.NaN },
    { mode: "bridge", concurrency: 16, tokensPerSecond: 200, firstP50Ms: 8, tokensPerChunk: Number.NaN },
  ];
  const result = medianOfRounds(rounds);
  assert.deepEqual(result, {
    mode: "bridge",
    concurrency: 16,
    tokensPerSecond: 200,
    firstP50Ms: 8,
    tokensPerChunk: Number.NaN,
  });
  assert.equal(rounds[0].tokensPerSecond, 300, "the rounds are left as they were");
});
