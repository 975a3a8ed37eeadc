/** The engine client when things go wrong: mid-stream errors, drops, 503 storms, failover, cooldown, secrets. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { type Clock, createEngineClient, isRetryableEngineError } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { ERROR_BODY_TIMEOUT_MS } from "../../engine-client/status-error.ts";
import { collect, fixedRandom, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };
const FAST_RETRY = { baseDelayMs: 1, maxDelayMs: 5 };

describe("engine client faults", () => {
  test("an error object mid-stream fails the stream with STREAM_BROKEN after the text already delivered, without a retry", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { errorAfterTokens: { tokens: 3 } } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, retry: FAST_RETRY });
    try {
      const { events, error } = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(events.length, 3);
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
      assert.equal(isRetryableEngineError(error), false);
      assert.equal(sim.requests().length, 1);
      assert.equal(engine.stats().errors.BRIDGE_ERR_ENGINE_STREAM_BROKEN, 1);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("streams that keep breaking mid-way cool their replica down like refused connections do", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { errorAfterTokens: { tokens: 1 }, healthStatus: 503 },
    });
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      cooldown: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    try {
      for (let i = 0; i < 2; i++) {
        const { error } = await collect(engine.stream(ASK, { agentId: "d" }));
        assert.equal(error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
      }
      assert.equal(engine.stats().replicas[0].state, "cooling");
      const { error } = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
      assert.equal(sim.requests().length, 2);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a connection dropped after the first byte is STREAM_BROKEN; one dropped before it is retried", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { dropAfterTokens: { tokens: 2, count: 1 } } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, retry: FAST_RETRY });
    try {
      const late = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(late.error?.code, "BRIDGE_ERR_ENGINE_STREAM_BROKEN");
      assert.equal(sim.requests().length, 1);
      sim.setFaults({ dropAfterTokens: { tokens: 0, count: 1 } });
      const early = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(early.error, undefined);
      assert.equal(early.events.at(-1)?.type, "done");
      assert.deepEqual(
        sim
          .requests()
          .slice(1)
          .map((r) => r.outcome),
        ["failed", "completed"],
      );
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a short 503 storm is ridden out with retries and the caller never sees it", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { failRequests: { status: 503, count: 2 } } });
    const retries: string[] = [];
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      retry: { baseDelayMs: 4, maxDelayMs: 100 },
      random: fixedRandom(0.5),
      observer: { onRetry: (e) => retries.push(`${e.attempt} ${e.code} ${e.delayMs}`) },
    });
    try {
      const { error } = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(error, undefined);
      assert.deepEqual(
        sim.requests().map((r) => r.status),
        [503, 503, 200],
      );
      assert.equal(engine.stats().retries, 2);
      // full jitter with random 0.5: half of 4 ms, then half of 8 ms
      assert.deepEqual(retries, ["1 BRIDGE_ERR_ENGINE_OVERLOADED 2", "2 BRIDGE_ERR_ENGINE_OVERLOADED 4"]);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a storm longer than the attempts ends in a retryable OVERLOADED error after maxAttempts tries", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { failRequests: { status: 503 } } });
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      retry: { ...FAST_RETRY, maxAttempts: 3 },
      cooldown: { failureThreshold: 10 },
    });
    try {
      const { error } = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_OVERLOADED");
      assert.equal(isRetryableEngineError(error), true);
      assert.equal(sim.requests().length, 3);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("Retry-After is honoured: the wait is at least what the engine asked, and a longer one than maxDelayMs is not waited", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { failRequests: { status: 429, count: 1, retryAfterSeconds: 3 } },
    });
    const delays: number[] = [];
    // The consumer watchdog's timer (a stream's unread answer) is set far above any delay this test is about.
    const consumerIdleTimeoutMs = 3_600_000;
    // Records the backoff the client asks for, and fires at once so the test does not wait three seconds. The bound
    // on reading the 429's body is not a delay of the request: it keeps real time (the body ends long before).
    const clock: Clock = {
      now: () => Date.now(),
      monotonicNow: () => performance.now(),
      setTimeout: (fn, ms) => {
        if (ms === ERROR_BODY_TIMEOUT_MS) return setTimeout(fn, ms);
        if (ms < consumerIdleTimeoutMs / 2) delays.push(ms);
        return setTimeout(fn, 0);
      },
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      clock,
      consumerIdleTimeoutMs,
      retry: { baseDelayMs: 1, maxDelayMs: 5000 },
    });
    try {
      const ok = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(ok.error, undefined);
      assert.deepEqual(delays, [3000, 3000], "the replica is held for 3 s, and the request waits 3 s");
      sim.setFaults({ failRequests: { status: 429, count: 1, retryAfterSeconds: 60 } });
      const refused = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(refused.error?.code, "BRIDGE_ERR_ENGINE_OVERLOADED");
      assert.equal(refused.error?.details.retryAfter, "60");
      assert.deepEqual(delays, [3000, 3000, 60_000], "the replica is held (capped at maxCooldownMs); no wait");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a replica that refuses connections fails over to the other one and is cooled down", async () => {
    const good = await startEngineSimulator({ timeScale: 0 });
    const bad = await startEngineSimulator({ timeScale: 0, faults: { refuseConnections: true, healthStatus: 503 } });
    const states: string[] = [];
    const engine = createEngineClient({
      urls: [bad.url, good.url],
      model: good.model,
      retry: FAST_RETRY,
      cooldown: { failureThreshold: 2, cooldownMs: 60_000 },
      observer: { onReplicaState: (e) => states.push(`${e.replica === bad.url ? "bad" : "good"} ${e.state}`) },
    });
    try {
      for (let i = 0; i < 12; i++) {
        const { error } = await collect(engine.stream(ASK, { agentId: `agent-${i}` }));
        assert.equal(error, undefined, `agent-${i} got an answer`);
      }
      const badStats = engine.stats().replicas.find((r) => r.url === bad.url)!;
      assert.equal(badStats.state, "cooling");
      assert.equal(badStats.failures, 2, "no attempt reaches a cooled replica");
      assert.deepEqual(states, ["bad healthy", "good healthy", "bad cooling"], "initial states, then the change");
      assert.equal(good.requests().length, 12);
      const health = await engine.health();
      assert.equal(health.status, "degraded");
      assert.deepEqual(
        health.replicas.map((r) => [r.url === bad.url ? "bad" : "good", r.state, r.healthy]),
        [
          ["bad", "cooling", false],
          ["good", "healthy", true],
        ],
      );
    } finally {
      await engine.close();
      await good.close();
      await bad.close();
    }
  });

  test("a cooled replica is health-checked back into rotation once it recovers", async () => {
    const sim = await startEngineSimulator({
      timeScale: 0,
      faults: { failRequests: { status: 500 }, healthStatus: 503 },
    });
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      retry: { ...FAST_RETRY, maxAttempts: 2 },
      cooldown: { failureThreshold: 2, cooldownMs: 10, maxCooldownMs: 40 },
    });
    try {
      const failed = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(failed.error?.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
      assert.equal(engine.stats().replicas[0].state, "cooling");
      const whileCooling = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(whileCooling.error?.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
      assert.equal(sim.requests().length, 2, "nothing is sent to a cooling replica");
      sim.clearFaults();
      await waitFor(() => engine.stats().replicas[0].state === "healthy", "the replica to come back");
      const ok = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(ok.error, undefined);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("an error body cut to its first 500 characters never keeps part of an echoed API key", async () => {
    const secret = "sk-bridge-test-secret-0123456789";
    // The key straddles character 500 of a plain-text 401 body: cutting before redacting would keep its first half.
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(401, { "content-type": "text/plain" });
        res.end(`${"x".repeat(485)}Bearer ${secret} is not a valid key`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const engine = createEngineClient({
      urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`],
      model: "m",
      apiKey: secret,
    });
    try {
      const { error } = await collect(engine.stream(ASK, { agentId: "d" }));
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
      const seen = [error?.message, JSON.stringify(error), inspect(error, { depth: 10 })].join("\n");
      assert.ok(!seen.includes(secret.slice(0, 8)), `part of the key leaked: ${error?.message}`);
    } finally {
      await engine.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("the API key is sent as a bearer token and never appears in an error, even when the engine echoes it", async () => {
    const secret = "sk-bridge-test-secret-0123456789";
    const sim = await startEngineSimulator({ timeScale: 0, apiKey: secret });
    const right = createEngineClient({ urls: [sim.url], apiKey: secret });
    const wrongKey = "sk-wrong-key-9876543210";
    const wrong = createEngineClient({ urls: [sim.url], model: sim.model, apiKey: wrongKey });
    const dead = createEngineClient({
      urls: ["http://127.0.0.1:1"],
      apiKey: secret,
      retry: { ...FAST_RETRY, maxAttempts: 2 },
    });
    try {
      const ok = await collect(right.stream(ASK, { agentId: "d" }));
      assert.equal(ok.error, undefined);
      sim.setFaults({ echoApiKey: true });
      const denied = await collect(wrong.stream(ASK, { agentId: "d" }));
      assert.equal(denied.error?.code, "BRIDGE_ERR_ENGINE_BAD_REQUEST");
      assert.equal(denied.error?.details.status, 401);
      assert.match(denied.error?.message ?? "", /\[REDACTED\]/);
      const unreachable = await collect(dead.stream(ASK, { agentId: "d" }));
      assert.equal(unreachable.error?.code, "BRIDGE_ERR_ENGINE_UNAVAILABLE");
      for (const [key, error] of [
        [wrongKey, denied.error],
        [secret, unreachable.error],
      ] as const) {
        const seen = [error?.message, error?.stack, JSON.stringify(error), inspect(error, { depth: 10 })].join("\n");
        assert.ok(!seen.includes(key), "the key leaked into an error");
      }
    } finally {
      await Promise.all([right.close(), wrong.close(), dead.close()]);
      await sim.close();
    }
  });
});
