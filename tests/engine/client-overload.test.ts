/**
 * Overload semantics of the engine client: 429/503 are back-pressure (retried, honouring Retry-After, never a
 * reason to cool a replica down); connection errors and other 5xx are failures that cool it, and a health check
 * brings it back. Deadlines hold while a stream is open and sends nothing but keep-alive comments.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import {
  type Clock,
  ENGINE_CLIENT_DEFAULTS,
  createEngineClient,
  isEngineBackPressure,
} from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { collect, fixedRandom, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };

/**
 * Records every delay the client asks for. Timers up to `fireBelowMs` fire almost at once (backoff, Retry-After,
 * cooldowns), so the default thresholds can be used without waiting; longer ones (deadlines) never fire.
 */
function recordingClock(fireBelowMs = 100_000): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => Date.now(),
    monotonicNow: () => performance.now(),
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return ms < fireBelowMs ? setTimeout(fn, 1) : undefined;
    },
    clearTimeout: (h) => {
      if (h !== undefined) clearTimeout(h as ReturnType<typeof setTimeout>);
    },
  };
}

describe("engine client overload and failure", () => {
  test("a 503 storm is back-pressure: retried without cooling; real failures then cool the replica with the default threshold, and it is health-checked back in", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { failRequests: { status: 503, count: 3, retryAfterSeconds: 0 } },
    });
    const clock = recordingClock();
    const states: string[] = [];
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      clock,
      random: fixedRandom(0),
      observer: { onReplicaState: (e) => states.push(e.state) },
    });
    try {
      const storm = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(storm.error, undefined, "three 503s in a row are ridden out by the four default attempts");
      assert.deepEqual(
        sim.requests().map((r) => r.status),
        [503, 503, 503, 200],
      );
      let replica = engine.stats().replicas[0];
      assert.equal(replica.state, "healthy");
      assert.equal(replica.failures, 0, "back-pressure is not a replica failure");
      assert.deepEqual(states, ["healthy"]);

      sim.setFaults({ failRequests: { status: 500 }, healthStatus: 503 });
      const broken = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(broken.error?.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
      replica = engine.stats().replicas[0];
      assert.equal(replica.state, "cooling");
      assert.equal(replica.failures, 3, "cooled at the default threshold of 3 consecutive failures");
      assert.ok(clock.delays.includes(5000), "the default cooldown of 5000 ms was armed");

      sim.clearFaults();
      await waitFor(() => engine.stats().replicas[0].state === "healthy", "the health check to bring it back");
      const ok = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(ok.error, undefined);
      assert.equal(states[0], "healthy");
      assert.equal(states[1], "cooling");
      assert.equal(states.at(-1), "healthy");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("requests queued behind a replica answering 503 keep waiting and are all served, never failed as UNAVAILABLE", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { failRequests: { status: 503, count: 6, retryAfterSeconds: 0 } },
    });
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      maxInFlightPerReplica: 1,
      clock: recordingClock(),
      random: fixedRandom(0),
    });
    try {
      const results = await Promise.all(
        ["a", "b", "c", "d"].map((agentId) => collect(engine.stream(ASK, { agentId }))),
      );
      assert.deepEqual(
        results.map((r) => r.error?.code),
        [undefined, undefined, undefined, undefined],
      );
      assert.equal(sim.requests().filter((r) => r.status === 503).length, 6);
      assert.equal(engine.stats().replicas[0].state, "healthy");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a Retry-After longer than maxDelayMs is waited by a request whose deadline leaves room for it", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { failRequests: { status: 429, count: 1, retryAfterSeconds: 10 } },
    });
    const clock = recordingClock(60_000);
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock, random: fixedRandom(0) });
    try {
      const ok = await collect(engine.stream(ASK, { agentId: "d", deadline: Date.now() + 600_000 }));
      assert.equal(ok.error, undefined);
      assert.ok(clock.delays.includes(10_000), `waited the engine's 10 s (asked: ${clock.delays.join(", ")})`);
      sim.setFaults({ failRequests: { status: 429, count: 1, retryAfterSeconds: 100 } });
      const short = await collect(engine.stream(ASK, { agentId: "d", deadline: Date.now() + 70_000 }));
      assert.equal(short.error?.code, "BRIDGE_ERR_ENGINE_OVERLOADED", "a deadline too close ends the retries");
      assert.ok(!clock.delays.includes(100_000), "a wait past the deadline is not even started");
      assert.equal(engine.stats().replicas[0].failures, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a stream that sends only keep-alive comments past its deadline is aborted with TIMEOUT and the engine sees the disconnect", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { firstTokenDelayMs: 1500, keepAliveCommentMs: 10 },
    });
    let firstTokens = 0;
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      observer: { onFirstToken: () => firstTokens++ },
    });
    try {
      const { events, error } = await collect(engine.stream(ASK, { agentId: "d", deadline: Date.now() + 150 }));
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      assert.deepEqual(events, []);
      assert.equal(firstTokens, 0);
      await waitFor(() => sim.requests()[0]?.outcome === "aborted", "the simulator to see the request aborted");
      assert.equal(engine.stats().replicas[0].failures, 0, "a deadline is the caller's limit, not a replica fault");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a timeoutMs budget becomes a deadline on the client's own clock, and the earlier of it and deadline wins", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { firstTokenDelayMs: 1500, keepAliveCommentMs: 10 },
    });
    const clock = recordingClock(1000);
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock });
    try {
      const budget = await collect(engine.stream(ASK, { agentId: "d", timeoutMs: 40 }));
      assert.equal(budget.error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      // 900 ms: under 1000, so recordingClock fires it, and room for a loaded machine to stall between here and
      // the arming (a deadline already past arms no timer).
      const both = await collect(engine.stream(ASK, { agentId: "d", timeoutMs: 900_000, deadline: Date.now() + 900 }));
      assert.equal(both.error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      // These deadlines fire (1 ms later, see recordingClock) before the headers come: the replica's health is
      // probed, which arms the probe's timeout too.
      const deadlines = clock.delays.filter((ms) => ms !== ENGINE_CLIENT_DEFAULTS.cooldown.stallProbeTimeoutMs);
      // Armed after the request's write: what is left of the 40 ms budget then, on the client's clock.
      assert.ok(deadlines[0] > 0 && deadlines[0] <= 40, `the budget armed the timer (${deadlines[0]} ms left)`);
      assert.ok(
        deadlines[1] > 0 && deadlines[1] <= 900,
        `the absolute deadline, being earlier, armed the timer (timers armed: ${deadlines.join(", ")} ms)`,
      );
      const bad = await collect(engine.stream(ASK, { agentId: "d", timeoutMs: Number.NaN }));
      assert.equal(bad.error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("only 429 and 503 answers are back-pressure", () => {
    const overloaded = (status: number) =>
      new BridgeError("BRIDGE_ERR_ENGINE_OVERLOADED", "busy", { status, replica: "http://x" });
    assert.equal(isEngineBackPressure(overloaded(429)), true);
    assert.equal(isEngineBackPressure(overloaded(503)), true);
    assert.equal(isEngineBackPressure(new BridgeError("BRIDGE_ERR_ENGINE_OVERLOADED", "queue full", {})), false);
    assert.equal(isEngineBackPressure(new BridgeError("BRIDGE_ERR_ENGINE_UNAVAILABLE", "500", { status: 500 })), false);
    assert.equal(isEngineBackPressure(new Error("ECONNREFUSED")), false);
  });
});

describe("a replica's Retry-After holds new attempts", () => {
  test("while held, new requests wait in the queue (until their deadline) and are let in when the hold ends", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { failRequests: { status: 503, count: 1, retryAfterSeconds: 1 } },
    });
    // Timers are held until the test fires them, by the delay they were armed with.
    const timers = new Map<number, { ms: number; fn: () => void }>();
    let seq = 0;
    const clock: Clock = {
      now: () => Date.now(),
      monotonicNow: () => performance.now(),
      setTimeout: (fn, ms) => {
        timers.set(++seq, { ms, fn });
        return seq;
      },
      clearTimeout: (h) => {
        timers.delete(h as number);
      },
    };
    // Fires the timers armed with `ms`, or up to `slackMs` less: a deadline's timer is armed for what is left of it
    // when the request is queued, a millisecond or more after the call on a loaded machine. None found fails the test
    // here instead of leaving it to hang.
    const fire = (ms: number, slackMs = 0) => {
      const due = [...timers].filter(([, t]) => t.ms <= ms && t.ms >= ms - slackMs);
      assert.ok(due.length > 0, `a timer armed with ${ms} ms (armed: ${[...timers.values()].map((t) => t.ms)})`);
      for (const [id, t] of due) {
        timers.delete(id);
        t.fn();
      }
    };
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock, random: fixedRandom(0) });
    try {
      const first = collect(engine.stream(ASK, { agentId: "a" }));
      await waitFor(() => engine.stats().replicas[0].heldUntil !== undefined, "the 503 to hold the replica");
      const second = collect(engine.stream(ASK, { agentId: "b" }));
      const late = collect(engine.stream(ASK, { agentId: "c", timeoutMs: 30_000 }));
      await waitFor(() => engine.stats().queued === 2, "both new requests to queue");
      assert.equal(sim.requests().length, 1, "nothing is sent to a held replica");
      assert.equal(engine.stats().replicas[0].state, "healthy", "held, not cooling");
      fire(30_000, 1_000);
      assert.equal((await late).error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT", "a queued request still has its deadline");
      fire(1000);
      const results = await Promise.all([first, second]);
      assert.deepEqual(
        results.map((r) => r.error?.code),
        [undefined, undefined],
      );
      assert.deepEqual(
        sim.requests().map((r) => r.status),
        [503, 200, 200],
      );
      assert.equal(engine.stats().replicas[0].failures, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});
