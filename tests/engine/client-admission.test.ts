/** Admission: fairness, priorities, deadlines, cancellation, affinity and the bounded queue. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { collect, waitFor } from "./support.ts";

const ask = (content: string): ChatRequest => ({ messages: [{ role: "user", content }] });

describe("engine client admission", () => {
  test("a device flooding the engine does not delay another device's single request behind all of its own", async () => {
    const sim = await startEngineSimulator({ timeScale: 0 });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, maxInFlightPerReplica: 1 });
    try {
      const finished: string[] = [];
      const run = (agentId: string, label: string) =>
        collect(engine.stream(ask(label), { agentId })).then((r) => {
          assert.equal(r.error, undefined);
          finished.push(label);
        });
      const flood = Array.from({ length: 20 }, (_, i) => run("flooder", `flood-${i}`));
      await waitFor(() => engine.stats().queued === 19, "the flood to queue");
      const single = run("quiet", "single");
      await Promise.all([...flood, single]);
      assert.ok(finished.indexOf("single") <= 2, `single finished at position ${finished.indexOf("single")}`);
      assert.deepEqual(
        finished.filter((l) => l !== "single"),
        Array.from({ length: 20 }, (_, i) => `flood-${i}`),
        "one agent's requests stay in order",
      );
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a higher-priority request overtakes waiting lower-priority ones", async () => {
    // The first request holds the only slot for a while: with an instant answer it could finish before the test
    // sees the other two waiting (a race that failed this test on a loaded machine).
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 200 } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, maxInFlightPerReplica: 1 });
    try {
      const finished: string[] = [];
      const run = (agentId: string, priority: number) =>
        collect(engine.stream(ask(agentId), { agentId, priority })).then(() => finished.push(agentId));
      const all = [run("first", 0), run("low-1", 0), run("low-2", 0)];
      await waitFor(() => engine.stats().queued === 2, "two to wait");
      all.push(run("urgent", 10));
      await Promise.all(all);
      assert.deepEqual(finished, ["first", "urgent", "low-1", "low-2"]);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a low-priority request completes while higher-priority ones keep the only slot busy (priority aging)", async () => {
    // Each finished urgent request moves the client's clock by one aging step, as if every answer took that long.
    // Three urgent agents resubmit as soon as theirs finish, so the replica never idles and urgent work always waits.
    const clock = new ManualClock();
    const sim = await startEngineSimulator({ timeScale: 0 });
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      maxInFlightPerReplica: 1,
      priorityAgingMs: 1000,
      clock,
    });
    try {
      const finished: string[] = [];
      const urgentRounds = 30;
      const urgent = async (agentId: string) => {
        for (let round = 0; round < urgentRounds / 3; round++) {
          const { error } = await collect(engine.stream(ask(`${agentId} ${round}`), { agentId, priority: 5 }));
          assert.equal(error, undefined);
          finished.push(agentId);
          clock.advanceSync(1000);
        }
      };
      const urgentAgents = [urgent("urgent-a"), urgent("urgent-b"), urgent("urgent-c")];
      await waitFor(() => engine.stats().queued === 2, "urgent work to wait");
      const finishedBefore = finished.length;
      const low = collect(engine.stream(ask("low"), { agentId: "quiet", priority: 0 })).then(({ error }) => {
        assert.equal(error, undefined);
        finished.push("quiet");
      });
      await Promise.all([...urgentAgents, low]);
      const overtakenBy = finished.indexOf("quiet") - finishedBefore;
      // It ranks 0 + floor(waited / 1000) against 5 + the urgent level's own, shorter wait (one or two steps), so it
      // wins after about eight urgent answers. Strict priority would serve it after every urgent request.
      assert.ok(
        overtakenBy <= 9,
        `${overtakenBy} urgent requests finished before the low-priority one: ${finished.slice(finishedBefore)}`,
      );
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a deadline that passes before the first token aborts the request with TIMEOUT and the engine sees the abort", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 2000 } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model });
    try {
      const { error } = await collect(engine.stream(ask("slow"), { agentId: "d", deadline: Date.now() + 100 }));
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      await waitFor(() => sim.requests()[0]?.outcome === "aborted", "the simulator to record the abort");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a deadline or budget longer than the longest Node timer (about 24.8 days) does not fire at once", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 50 } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model });
    const monthMs = 30 * 86_400_000;
    try {
      const byDeadline = await collect(engine.stream(ask("far"), { agentId: "d", deadline: Date.now() + monthMs }));
      assert.equal(byDeadline.error, undefined);
      assert.equal(byDeadline.events.at(-1)?.type, "done");
      const byBudget = await collect(engine.stream(ask("far"), { agentId: "d", timeoutMs: monthMs }));
      assert.equal(byBudget.error, undefined);
      assert.equal(byBudget.events.at(-1)?.type, "done");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a deadline or an abort ends a request that waits for the engine's model list, without waiting for the lookup", async () => {
    // An engine that takes the request for its model list and never answers: the lookup gives up only after 5 s.
    const server = createServer((req) => req.resume());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const engine = createEngineClient({ urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] });
    const withinLookup = <T>(promise: Promise<T>) =>
      Promise.race([
        promise,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("waited for the model lookup")), 2500)),
      ]);
    try {
      const timed = await withinLookup(collect(engine.stream(ask("x"), { agentId: "d", timeoutMs: 20 })));
      assert.equal(timed.error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      const controller = new AbortController();
      const cancelled = engine.complete(ask("x"), { agentId: "d", signal: controller.signal });
      setTimeout(() => controller.abort(), 20);
      await assert.rejects(withinLookup(cancelled), { code: "BRIDGE_ERR_ENGINE_CANCELLED" });
    } finally {
      await engine.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a request whose deadline passes while it waits in the queue fails with TIMEOUT and leaves the queue", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 300 } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, maxInFlightPerReplica: 1 });
    try {
      const blocker = collect(engine.stream(ask("blocker"), { agentId: "a" }));
      await waitFor(() => engine.stats().inFlight === 1, "the blocker to start");
      const late = await collect(engine.stream(ask("late"), { agentId: "b", deadline: Date.now() + 30 }));
      assert.equal(late.error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      assert.equal(engine.stats().queued, 0);
      assert.equal((await blocker).error, undefined);
      assert.equal(sim.requests().length, 1, "the late request never reached the engine");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("aborting the signal mid-stream ends with CANCELLED and the engine sees the client go away", async () => {
    const sim = await startEngineSimulator({ timeScale: 1, minOutputTokens: 400, maxOutputTokens: 400 });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model });
    try {
      const controller = new AbortController();
      const events: string[] = [];
      const result = collect(
        (async function* () {
          for await (const event of engine.stream(ask("long"), { agentId: "d", signal: controller.signal })) {
            events.push(event.type);
            if (events.length === 3) controller.abort();
            yield event;
          }
        })(),
      );
      const { error } = await result;
      assert.equal(error?.code, "BRIDGE_ERR_ENGINE_CANCELLED");
      await waitFor(() => sim.requests()[0]?.outcome === "aborted", "the simulator to record the abort");
      assert.ok(sim.requests()[0].completionTokens < 400);
      assert.equal(engine.stats().inFlight, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a consumer that stops reading early closes the stream and frees its slot", async () => {
    const sim = await startEngineSimulator({ timeScale: 1, minOutputTokens: 400, maxOutputTokens: 400 });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model });
    try {
      let seen = 0;
      for await (const _ of engine.stream(ask("long"), { agentId: "d" })) {
        if (++seen === 2) break;
      }
      await waitFor(() => sim.requests()[0]?.outcome === "aborted", "the simulator to record the abort");
      assert.equal(engine.stats().inFlight, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("an agent always lands on the same replica, agents spread over replicas, and they move when theirs is gone", async () => {
    const sims = [await startEngineSimulator({ timeScale: 0 }), await startEngineSimulator({ timeScale: 0 })];
    const engine = createEngineClient({
      urls: sims.map((s) => s.url),
      model: sims[0].model,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      cooldown: { failureThreshold: 1, cooldownMs: 60_000 },
    });
    const replicaOf = (agent: string) =>
      sims.findIndex((s) => s.requests().some((r) => JSON.stringify(r.body).includes(`"${agent} `)));
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 10; i++)
          await collect(engine.stream(ask(`agent-${i} round ${round}`), { agentId: `agent-${i}` }));
      }
      const placement = new Map<string, number>();
      for (let i = 0; i < 10; i++) {
        const hits = sims.map(
          (s) => s.requests().filter((r) => JSON.stringify(r.body).includes(`"agent-${i} `)).length,
        );
        assert.ok(hits.includes(3) && hits.includes(0), `agent-${i} stayed on one replica: ${hits}`);
        placement.set(`agent-${i}`, replicaOf(`agent-${i}`));
      }
      assert.equal(new Set(placement.values()).size, 2, "both replicas serve someone");
      const gone = 0;
      sims[gone].setFaults({ refuseConnections: true });
      for (let i = 0; i < 10; i++) {
        const { error } = await collect(engine.stream(ask(`agent-${i} after`), { agentId: `agent-${i}` }));
        assert.equal(error, undefined);
      }
      assert.equal(sims[1].requests().filter((r) => JSON.stringify(r.body).includes(" after")).length, 10);
    } finally {
      await engine.close();
      await Promise.all(sims.map((s) => s.close()));
    }
  });

  test("when the client's queue is full the next request is OVERLOADED at once, and close cancels the waiting ones", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 200 } });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, maxInFlightPerReplica: 1, maxQueued: 1 });
    try {
      const running = collect(engine.stream(ask("one"), { agentId: "a" }));
      await waitFor(() => engine.stats().inFlight === 1, "the first to start");
      const waiting = collect(engine.stream(ask("two"), { agentId: "b" }));
      await waitFor(() => engine.stats().queued === 1, "the second to queue");
      const third = await collect(engine.stream(ask("three"), { agentId: "c" }));
      assert.equal(third.error?.code, "BRIDGE_ERR_ENGINE_OVERLOADED");
      await engine.close();
      assert.equal((await waiting).error?.code, "BRIDGE_ERR_ENGINE_CANCELLED");
      assert.equal((await running).error?.code, "BRIDGE_ERR_ENGINE_CANCELLED");
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("the engine's own bounded queue answers 503 when full, which the client reports as OVERLOADED", async () => {
    const sim = await startEngineSimulator({
      timeScale: 1,
      maxNumSeqs: 1,
      maxWaiting: 1,
      minOutputTokens: 200,
      maxOutputTokens: 200,
    });
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, retry: { maxAttempts: 1 } });
    try {
      const a = collect(engine.stream(ask("a"), { agentId: "a" }));
      await waitFor(() => sim.stats().running === 1, "one to run");
      const b = collect(engine.stream(ask("b"), { agentId: "b" }));
      await waitFor(() => sim.stats().waiting === 1, "one to wait");
      const c = await collect(engine.stream(ask("c"), { agentId: "c" }));
      assert.equal(c.error?.code, "BRIDGE_ERR_ENGINE_OVERLOADED");
      assert.equal(c.error?.details.status, 503);
      assert.equal(c.error?.details.retryAfter, "1");
      await engine.close();
      await Promise.all([a, b]);
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});
