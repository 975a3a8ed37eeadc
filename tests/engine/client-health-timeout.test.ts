/**
 * Every health check the client makes on its own (`health()`, the check that ends a cooldown) has a short bound of
 * its own, `healthCheckTimeoutMs`, on the client's clock: a hung replica (the simulator's `stall` fault) is reported
 * unhealthy within it instead of after the 60 s headers timeout, and a slow but alive one still passes.
 */
import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settledWithin, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };

describe("engine client health checks are bounded", () => {
  test("health() reports a stalled replica unhealthy after healthCheckTimeoutMs, naming why, and the engine degraded", async () => {
    const stalled = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const good = await startEngineSimulator({ timeScale: 0 });
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [stalled.url, good.url], model: good.model, clock });
    try {
      const pending = engine.health();
      await waitFor(() => stalled.stats().healthChecks === 1, "the health check to reach the stalled replica");
      await clock.advance(1999);
      await clock.advance(1);
      const health = await settledWithin(pending, 5000, "health()");
      assert.equal(health.status, "degraded");
      assert.deepEqual(health.replicas[1], { url: good.url, state: "healthy", healthy: true });
      const hung = health.replicas[0];
      assert.equal(hung.url, stalled.url);
      assert.equal(hung.healthy, false);
      assert.equal(hung.state, "healthy", "an observation: health() does not take the replica out of rotation");
      assert.deepEqual(hung.problem, {
        reason: "timeout",
        message: "GET /health got no answer within 2000 ms",
      });
      assert.equal(engine.stats().replicas[0].failures, 0, "nor does it count as a failed attempt");
    } finally {
      await engine.close();
      await Promise.all([stalled.close(), good.close()]);
    }
  });

  test("a configured healthCheckTimeoutMs bounds health(); a replica answering another status is named with it", async () => {
    const stalled = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const sick = await startEngineSimulator({ timeScale: 0, faults: { healthStatus: 503 } });
    const clock = new ManualClock();
    const engine = createEngineClient({
      urls: [stalled.url, sick.url],
      model: sick.model,
      clock,
      healthCheckTimeoutMs: 250,
    });
    try {
      const pending = engine.health();
      await waitFor(() => stalled.stats().healthChecks === 1, "the health check to reach the stalled replica");
      await clock.advance(250);
      const health = await settledWithin(pending, 5000, "health()");
      assert.equal(health.status, "down");
      assert.deepEqual(
        health.replicas.map((r) => r.problem),
        [
          { reason: "timeout", message: "GET /health got no answer within 250 ms" },
          { reason: "status", message: "GET /health answered 503" },
        ],
      );
    } finally {
      await engine.close();
      await Promise.all([stalled.close(), sick.close()]);
    }
  });

  test("a slow but alive replica passes: an answer just inside the bound counts as healthy", async () => {
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {
      req.resume();
      if (req.url === "/health") held.push(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [url], model: "m", clock });
    try {
      const pending = engine.health();
      await waitFor(() => held.length === 1, "the health check to arrive");
      await clock.advance(1999);
      held[0].writeHead(200, { "content-length": 0 }).end();
      const health = await settledWithin(pending, 5000, "health()");
      assert.deepEqual(health, { status: "ok", replicas: [{ url, state: "healthy", healthy: true }] });
    } finally {
      await engine.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a replica that sends a 200 but never ends its body is a timeout, not healthy", async () => {
    // Headers and part of the body, then nothing: the bound covers the body too, and the abort that ends the read
    // must not let the 200 it already saw count as an answer.
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {
      req.resume();
      if (req.url !== "/health") return void res.writeHead(404).end();
      res.writeHead(200, { "content-length": 10 });
      res.write("ok");
      held.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const clock = new ManualClock();
    const engine = createEngineClient({ urls: [url], model: "m", clock, healthCheckTimeoutMs: 500 });
    try {
      const pending = engine.health();
      await waitFor(() => held.length === 1, "the health check to get its headers");
      await clock.advance(500);
      const health = await settledWithin(pending, 5000, "health()");
      assert.equal(health.status, "down");
      assert.deepEqual(health.replicas[0].problem, {
        reason: "timeout",
        message: "GET /health got no answer within 500 ms",
      });
    } finally {
      await engine.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a cooled replica that stalls is not brought back by its health check; once it recovers it is", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { failRequests: { status: 500 } } });
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
      assert.equal(replica().state, "cooling");
      const firstUntil = replica().cooldownUntil;
      sim.setFaults({ failRequests: null, stall: true });

      await clock.advance(5000);
      await waitFor(() => sim.stats().healthChecks === 1, "the health check that ends the cooldown");
      await clock.advance(2000);
      // Before the bound existed this waited for the 60 s headers timeout, in real time.
      await settledWithin(
        waitFor(() => replica().cooldownUntil !== firstUntil, "the failed check to cool the replica again", 4000),
        5000,
        "the health check",
      );
      assert.equal(replica().state, "cooling", "a replica that does not answer stays out of rotation");
      assert.equal(replica().cooldownUntil, clock.now() + 10_000, "the next cooldown is twice as long");

      sim.clearFaults();
      await clock.advance(10_000);
      await waitFor(() => replica().state === "healthy", "the recovered replica to come back");
      assert.equal(sim.stats().healthChecks, 2);
      const answer = await engine.complete(ASK, { agentId: "d" });
      assert.ok(answer.text.length > 0, "the replica serves again");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("healthCheckTimeoutMs must be a positive integer", () => {
    assert.throws(() => createEngineClient({ urls: ["http://127.0.0.1:1"], healthCheckTimeoutMs: 0 }), {
      code: "BRIDGE_ERR_CONFIG",
      details: { field: "engine.healthCheckTimeoutMs" },
    });
  });
});
