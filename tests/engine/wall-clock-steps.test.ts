/**
 * The engine client's durations run on the clock's monotonic reading: a step of the wall clock in the middle of one,
 * back an hour or forward a year (NTP on a gateway without a real-time clock, an operator fixing the time), changes
 * nothing. Before, a step forward expired a request's deadline when it was armed and refused its retries, and the
 * cooldown and hold ends in `stats()` kept the time before the step.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { RequestContext } from "../../engine-client/request-context.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import type { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { collect, fixedRandom, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };
const STEPS = [
  ["back an hour", -3_600_000],
  ["forward a year", 365 * 86_400_000],
] as const;

describe("the engine client's durations across a wall clock step", () => {
  for (const [step, ms] of STEPS) {
    test(`a request's deadline passes timeoutMs after the call, the wall clock stepped ${step} before it was armed`, () => {
      const clock = new ManualClock();
      const ctx = new RequestContext({ agentId: "d", timeoutMs: 1000 }, "r", clock, true);
      const wallDeadline = clock.now() + 1000;
      clock.advanceSync(400);
      clock.stepWall(ms);
      ctx.arm();
      assert.equal(ctx.aborted, false, "not over at arm");
      clock.advanceSync(599);
      assert.equal(ctx.aborted, false);
      clock.advanceSync(1);
      assert.equal(ctx.aborted, true, "aborted at the deadline");
      assert.equal((ctx.reason as BridgeError).code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      assert.deepEqual((ctx.reason as BridgeError).details, { deadline: wallDeadline, elapsedMs: 1000 });
    });

    test(`a retry's backoff fits the request's deadline, the wall clock stepped ${step} while it ran`, async () => {
      const sim = await startEngineSimulator({ timeScale: 0, faults: { failRequests: { status: 503, count: 1 } } });
      const clock = new ManualClock();
      const retries: number[] = [];
      const engine = createEngineClient({
        urls: [sim.url],
        model: sim.model,
        clock,
        // Full jitter near its ceiling: the backoff is just under maxDelayMs.
        random: fixedRandom(0.999_999),
        retry: { maxAttempts: 2, baseDelayMs: 1000, maxDelayMs: 1000 },
        observer: { onRetry: (info) => retries.push(info.delayMs) },
      });
      try {
        const answer = collect(engine.stream(ASK, { agentId: "d", timeoutMs: 5000 }));
        clock.stepWall(ms);
        await waitFor(() => retries.length === 1, "the 503 to be retried");
        assert.equal(retries[0], 999);
        await clock.advance(999);
        const { error } = await answer;
        assert.equal(error, undefined, "the retry ran and was answered");
        assert.equal(sim.requests().length, 2);
      } finally {
        await engine.close();
        await sim.close();
      }
    });

    test(`a replica cools for cooldownMs and says when it ends, the wall clock stepped ${step} meanwhile`, async () => {
      const sim = await startEngineSimulator({ timeScale: 0, faults: { failRequests: { status: 500, count: 1 } } });
      const clock = new ManualClock();
      const engine = createEngineClient({
        urls: [sim.url],
        model: sim.model,
        clock,
        retry: { maxAttempts: 1 },
        cooldown: { failureThreshold: 1, cooldownMs: 5000, maxCooldownMs: 60_000 },
      });
      const replica = () => engine.stats().replicas[0];
      try {
        await assert.rejects(engine.complete(ASK, { agentId: "d" }), { code: "BRIDGE_ERR_ENGINE_UNAVAILABLE" });
        assert.equal(replica().cooldownUntil, clock.now() + 5000);
        await clock.advance(2000);
        clock.stepWall(ms);
        assert.equal(replica().state, "cooling");
        assert.equal(replica().cooldownUntil, clock.now() + 3000, "the date it ends, as the wall clock reads now");
        await clock.advance(2999);
        assert.equal(sim.stats().healthChecks, 0, "still cooling");
        await clock.advance(1);
        await waitFor(() => replica().state === "healthy", "the health check that ends the cooldown");
      } finally {
        await engine.close();
        await sim.close();
      }
    });

    test(`a replica's Retry-After hold is kept or lengthened, the wall clock stepped ${step} meanwhile`, async () => {
      const sim = await startEngineSimulator({
        timeScale: 0,
        faults: { failRequests: { status: 503, count: 2, retryAfterSeconds: 4 } },
      });
      const clock = new ManualClock();
      const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock, retry: { maxAttempts: 1 } });
      const heldUntil = () => engine.stats().replicas[0].heldUntil;
      try {
        await collect(engine.stream(ASK, { agentId: "a" }));
        assert.equal(heldUntil(), clock.now() + 4000);
        await clock.advance(1000);
        clock.stepWall(ms);
        assert.equal(heldUntil(), clock.now() + 3000, "the date the hold ends, as the wall clock reads now");
        // A second 503 asks for 4 s again: from now, longer than what is left, so the hold is lengthened.
        const second = collect(engine.stream(ASK, { agentId: "b" }));
        await clock.advance(3000);
        await waitFor(() => sim.requests().length === 2, "the second request to reach the replica");
        await second;
        assert.equal(heldUntil(), clock.now() + 4000);
      } finally {
        await engine.close();
        await sim.close();
      }
    });
  }
});
