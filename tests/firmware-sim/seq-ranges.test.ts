import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SeqRanges } from "../../firmware-sim/index.ts";

describe("acknowledged seq set", () => {
  it("holds exactly the numbers added, in ascending order, whatever the arrival order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 300 }), (values) => {
        const set = new SeqRanges();
        for (const v of values) set.add(v);
        const expected = [...new Set(values)].sort((a, b) => a - b);
        assert.deepEqual([...set.values()], expected);
        assert.equal(set.size, expected.length);
        for (let v = 0; v <= 200; v++) assert.equal(set.has(v), expected.includes(v));
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it("counts and finds in-order arrivals of large run-tagged numbers", () => {
    const set = new SeqRanges();
    const base = 3 * 2 ** 44;
    for (let i = 0; i < 1000; i++) set.add(base + i);
    assert.equal(set.size, 1000);
    assert.equal(set.has(base + 999), true);
    assert.equal(set.has(base + 1000), false);
  });
});
