/**
 * The broker's durations run on the clock's monotonic reading: a step of the wall clock in the middle of one, back
 * an hour or forward a year (NTP on a gateway without a real-time clock, an operator fixing the time), changes
 * nothing. Before, a step back blocked an address for an hour more and stalled the rate limits; a step forward ended
 * every block at once.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConnectGuard } from "../../broker/connect-guard/index.ts";
import { CredentialCache } from "../../broker/registry/credential-cache.ts";
import { TokenBucket } from "../../broker/token-bucket.ts";
import { ManualClock } from "../support/manual-clock.ts";

const STEPS = [
  ["back an hour", -3_600_000],
  ["forward a year", 365 * 86_400_000],
] as const;

describe("the broker's durations across a wall clock step", () => {
  for (const [step, ms] of STEPS) {
    test(`an address block lasts authBlockMs, the wall clock stepped ${step} in the middle of it`, async () => {
      const clock = new ManualClock();
      const guard = new ConnectGuard(
        {
          maxConcurrentVerifications: 1,
          maxQueuedVerifications: 1,
          authFailuresPerAddress: 2,
          authFailureRefillMs: 60_000,
          authBlockMs: 5000,
        },
        clock,
      );
      for (let i = 0; i < 2; i++) {
        const ticket = await guard.admit("192.0.2.1", () => true);
        assert.equal(ticket.status, "granted");
        if (ticket.status === "granted") ticket.finish(true);
      }
      assert.equal(guard.isBlocked("192.0.2.1"), true);
      clock.advanceSync(2000);
      clock.stepWall(ms);
      assert.deepEqual(await guard.admit("192.0.2.1", () => true), { status: "refused", reason: "address-blocked" });
      clock.advanceSync(2999);
      assert.equal(guard.isBlocked("192.0.2.1"), true, "blocked until authBlockMs after the failure");
      clock.advanceSync(1);
      assert.equal(guard.isBlocked("192.0.2.1"), false, "and not a moment longer");
    });

    test(`a token bucket refills at its rate, the wall clock stepped ${step} in the middle of a refill`, () => {
      const clock = new ManualClock();
      const bucket = new TokenBucket(3, 2, clock);
      assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
      clock.advanceSync(250);
      clock.stepWall(ms);
      clock.advanceSync(249);
      assert.equal(bucket.take(), false, "not a whole token yet");
      clock.advanceSync(1);
      assert.equal(bucket.take(), true, "one token 500 ms after the bucket emptied");
      assert.equal(bucket.take(), false);
    });

    test(`a verified secret is remembered for ttlMs, the wall clock stepped ${step} meanwhile`, () => {
      const clock = new ManualClock();
      const cache = new CredentialCache({ ttlMs: 1000, maxEntries: 10, clock, key: Buffer.alloc(32, 7) });
      cache.remember("d1", "hash-1", "s3cret");
      clock.stepWall(ms);
      clock.advanceSync(999);
      assert.equal(cache.has("d1", "hash-1", "s3cret"), true);
      clock.advanceSync(1);
      assert.equal(cache.has("d1", "hash-1", "s3cret"), false);
    });
  }
});
