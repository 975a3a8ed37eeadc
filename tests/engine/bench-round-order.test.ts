/** The order a benchmark's modes run in, round after round (bench/round-order.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { rotated } from "../../bench/round-order.ts";

test("modes rotate by one from round to round, so each runs first equally often", () => {
  const modes = ["baseline", "runtime", "full"];
  assert.deepEqual(
    [0, 1, 2, 3].map((round) => rotated(modes, round)),
    [
      ["baseline", "runtime", "full"],
      ["runtime", "full", "baseline"],
      ["full", "baseline", "runtime"],
      ["baseline", "runtime", "full"],
    ],
  );
  assert.deepEqual(rotated(["direct", "bridge"], 1), ["bridge", "direct"]);
  assert.deepEqual(rotated([], 3), []);
  assert.deepEqual(modes, ["baseline", "runtime", "full"]);
});
