import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffCapMs, backoffDelayMs, DEFAULT_BACKOFF } from "../../firmware-sim/index.ts";

describe("reconnect backoff", () => {
  const options = { mode: "exponential" as const, baseDelayMs: 100, maxDelayMs: 5000 };

  it("doubles the window per attempt up to the maximum", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 50, 5000].map((a) => backoffCapMs(a, options)),
      [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000],
    );
  });

  it("draws full jitter: 0 at the bottom of the random range and just under the cap at the top", () => {
    for (const attempt of [0, 3, 10]) {
      const cap = backoffCapMs(attempt, options);
      assert.equal(
        backoffDelayMs(attempt, options, () => 0),
        0,
      );
      assert.equal(
        backoffDelayMs(attempt, options, () => 0.999999),
        cap - 1,
      );
      assert.equal(
        backoffDelayMs(attempt, options, () => 0.5),
        cap / 2,
      );
    }
  });

  it("stays within [0, cap) for any random value", () => {
    let x = 0.123;
    const random = () => {
      x = ((x * 9301 + 49297) % 233280) / 233280;
      return x;
    };
    for (let attempt = 0; attempt < 40; attempt++) {
      const delay = backoffDelayMs(attempt, options, random);
      assert.ok(delay >= 0 && delay < backoffCapMs(attempt, options), `attempt ${attempt}: ${delay}`);
    }
  });

  it("reconnects with no delay at all in the broken zero mode", () => {
    const zero = { ...options, mode: "zero" as const };
    assert.equal(
      backoffDelayMs(0, zero, () => 0.99),
      0,
    );
    assert.equal(
      backoffDelayMs(12, zero, () => 0.99),
      0,
    );
  });

  it("keeps a zero base window at 0 however many retries failed, never NaN", () => {
    // 2 ** 1024 is Infinity and 0 * Infinity is NaN: a device refused 1024 times in a row drew a NaN delay.
    const zeroBase = { mode: "exponential" as const, baseDelayMs: 0, maxDelayMs: 0 };
    for (const attempt of [0, 1023, 1024, 5000]) {
      assert.equal(backoffCapMs(attempt, zeroBase), 0, `attempt ${attempt}`);
      assert.equal(
        backoffDelayMs(attempt, zeroBase, () => 0.5),
        0,
        `attempt ${attempt}`,
      );
    }
  });

  it("defaults to exponential backoff from one second up to thirty, reset after a 30 s stable connection", () => {
    assert.deepEqual(DEFAULT_BACKOFF, {
      mode: "exponential",
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      stableConnectionMs: 30_000,
    });
  });
});
