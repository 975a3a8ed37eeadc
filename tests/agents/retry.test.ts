import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffDelayMs, resolveRetryOptions } from "../../agents/index.ts";
import { retryAtMs, retryWithBackoff } from "../../agents/retry.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

/** A clock that records every delay asked for and fires it at once. */
class RecordingClock extends ManualClock {
  delays: number[] = [];
  override setTimeout(fn: () => void, ms: number): unknown {
    this.delays.push(ms);
    queueMicrotask(fn);
    return 0;
  }
}

describe("retry with exponential backoff and full jitter", () => {
  test("delays stay within [0, min(max, base * 2^(attempt-1))) for the injected random values", async () => {
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      const clock = new RecordingClock();
      let calls = 0;
      await assert.rejects(
        retryWithBackoff(
          async () => {
            calls++;
            throw new Error("always");
          },
          { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1000 },
          clock,
          () => r,
        ),
        /always/,
      );
      assert.equal(calls, 6);
      const ceilings = [100, 200, 400, 800, 1000];
      assert.deepEqual(
        clock.delays,
        ceilings.map((c) => Math.floor(r * c)),
      );
      for (const [i, d] of clock.delays.entries()) assert.ok(d >= 0 && d < ceilings[i]);
    }
  });

  test("the defaults are 3 attempts, 100 ms base and 3000 ms cap, and a success ends the retries", async () => {
    assert.deepEqual(resolveRetryOptions(undefined), {
      maxAttempts: 3,
      baseDelayMs: 100,
      maxDelayMs: 3000,
      shouldRetry: undefined,
    });
    const clock = new RecordingClock();
    let calls = 0;
    const v = await retryWithBackoff(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new Error("not yet");
        return "done";
      },
      undefined,
      clock,
      () => 0.999,
    );
    assert.equal(v, "done");
    assert.equal(calls, 3);
    assert.deepEqual(clock.delays, [99, 199]);
    assert.equal(
      backoffDelayMs(resolveRetryOptions({ baseDelayMs: 1000, maxDelayMs: 3000 }), 10, () => 0.5),
      1500,
    );
  });

  test("shouldRetry can stop early and sees the error and attempt number", async () => {
    const clock = new RecordingClock();
    const seen: number[] = [];
    await assert.rejects(
      retryWithBackoff(
        async () => {
          throw new BridgeError("BRIDGE_ERR_FATAL", "no point");
        },
        {
          maxAttempts: 5,
          shouldRetry: (err, attempt) => {
            seen.push(attempt);
            return !(err instanceof BridgeError && err.code === "BRIDGE_ERR_FATAL");
          },
        },
        clock,
        () => 0.5,
      ),
      /no point/,
    );
    assert.deepEqual(seen, [1]);
    assert.deepEqual(clock.delays, []);
  });

  test("bad options are refused when called, with BRIDGE_ERR_INVALID_OPTION naming the field", async () => {
    const clock = new RecordingClock();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ maxAttempts: 0 }, "retry.maxAttempts"],
      [{ maxAttempts: 1.5 }, "retry.maxAttempts"],
      [{ baseDelayMs: -1 }, "retry.baseDelayMs"],
      [{ maxDelayMs: "x" }, "retry.maxDelayMs"],
      [{ baseDelayMs: 500, maxDelayMs: 100 }, "retry.baseDelayMs"],
      // Longer than a Node timer can wait: setTimeout would fire it after 1 ms, retrying at once instead of waiting.
      [{ maxDelayMs: 2 ** 31 }, "retry.maxDelayMs"],
    ];
    for (const [opts, field] of cases) {
      let ran = false;
      const p = retryWithBackoff(
        async () => {
          ran = true;
        },
        opts,
        clock,
        () => 0,
      );
      await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof BridgeError);
        assert.equal(err.code, "BRIDGE_ERR_INVALID_OPTION");
        assert.equal(err.details.field, field);
        return true;
      });
      assert.equal(ran, false);
    }
  });

  test("a failed schedule or queue item runs again at least 1 ms after its failure, even when the backoff draws 0", () => {
    const policy = resolveRetryOptions({ maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 });
    const now = 1_000_000;
    const zero = () => 0;
    const half = () => 0.5;
    assert.equal(retryAtMs(policy, 1, now, zero), now + 1);
    assert.equal(retryAtMs(policy, 3, now, zero), now + 1);
    assert.equal(retryAtMs(policy, 1, now, half), now + 50);
    assert.equal(retryAtMs(policy, 3, now, half), now + 200);
  });
});
