/**
 * A replica that accepts requests and never answers is found out by probing its health when a deadline passes before
 * it sent headers; a replica that is only slow (a non-streamed answer's headers come at its end) passes the probe and
 * is left alone. Time is the client's injected clock; the probe's /health request is a real one.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatRequest } from "../../agents/engine.ts";
import { createEngineClient, rendezvousOrder } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { collect, waitFor } from "./support.ts";

const ASK: ChatRequest = { messages: [{ role: "user", content: "status?" }] };

/** A manual clock that counts the timers set with one delay: the stall probe's timeout, armed as a probe starts. */
class ProbeCountingClock extends ManualClock {
  probes = 0;
  constructor(private readonly probeTimeoutMs: number) {
    super();
  }
  override setTimeout(fn: () => void, ms: number): unknown {
    if (ms === this.probeTimeoutMs) this.probes++;
    return super.setTimeout(fn, ms);
  }
}

/** `count` agent ids whose affinity puts them on `first` (a replica URL) before `other`. */
function agentsPreferring(first: string, other: string, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < count; i++) {
    const id = `agent-${i}`;
    if (rendezvousOrder(id, [{ key: first }, { key: other }])[0].key === first) ids.push(id);
  }
  return ids;
}

describe("engine client stall probe", () => {
  test("a replica that never answers is probed when deadlines pass before its headers, cooled after failed probes, and its agents move to the other replica", async () => {
    const stalled = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const good = await startEngineSimulator({ timeScale: 0 });
    const clock = new ProbeCountingClock(2000);
    const engine = createEngineClient({ urls: [stalled.url, good.url], model: good.model, clock });
    const stalledStats = () => engine.stats().replicas.find((r) => r.url === stalled.url)!;
    const agents = agentsPreferring(stalled.url, good.url, 3);
    try {
      // Three agents time out together: one probe, not three.
      const first = agents.map((agentId) => collect(engine.stream(ASK, { agentId, timeoutMs: 10_000 })));
      await waitFor(() => stalled.requests().length === 3, "the stalled replica to hold three requests");
      await clock.advance(10_000);
      for (const { error } of await Promise.all(first)) assert.equal(error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      assert.equal(clock.probes, 1, "one probe, not one per caller");
      await waitFor(() => stalled.stats().healthChecks === 1, "the probe to reach the replica");
      assert.equal(stalledStats().failures, 0, "a passed deadline is not itself a failure");
      await clock.advance(2000);
      await waitFor(() => stalledStats().failures === 1, "the timed-out probe to count as a failure");
      assert.equal(stalledStats().state, "healthy");

      // Two more rounds: three consecutive failed probes (the default threshold) take the replica out of rotation.
      for (let round = 2; round <= 3; round++) {
        const pending = collect(engine.stream(ASK, { agentId: agents[0], timeoutMs: 10_000 }));
        await waitFor(() => stalled.requests().length === round + 2, "the request to reach the stalled replica");
        await clock.advance(10_000);
        assert.equal((await pending).error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
        await clock.advance(2000);
        await waitFor(() => stalledStats().failures === round, `failed probe ${round} to count`);
      }
      assert.equal(stalledStats().state, "cooling");
      assert.equal(clock.probes, 3);
      assert.equal(stalled.stats().healthChecks, 3);

      const moved = await collect(engine.stream(ASK, { agentId: agents[0], timeoutMs: 10_000 }));
      assert.equal(moved.error, undefined, "the agent's request is served by the other replica");
      assert.equal(good.requests().length, 1);
      assert.equal(stalled.requests().length, 5, "nothing more reaches the cooled replica");
    } finally {
      await engine.close();
      await Promise.all([stalled.close(), good.close()]);
    }
  });

  test("a slow but healthy replica passes its probe and is never cooled, and probes are rate limited", async () => {
    // A non-streamed answer's headers come only when it is complete: a deadline shorter than the generation passes
    // before headers although nothing is wrong.
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 600_000 } });
    const clock = new ProbeCountingClock(777);
    const engine = createEngineClient({
      urls: [sim.url],
      model: sim.model,
      clock,
      // One counted failure would cool the only replica: a timeout counted as a failure would show at once.
      cooldown: { failureThreshold: 1, stallProbeTimeoutMs: 777 },
    });
    let sent = 0;
    const timesOut = async (timeoutMs: number) => {
      sent++;
      const pending = engine.complete(ASK, { agentId: "d", timeoutMs }).then(
        () => assert.fail("the answer cannot have come"),
        (err: unknown) => err,
      );
      await waitFor(() => sim.requests().length === sent, "the request to arrive");
      await clock.advance(timeoutMs);
      const err = await pending;
      assert.ok(err instanceof BridgeError);
      assert.equal(err.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
    };
    try {
      // The probe starts before the caller hears of its timeout, so the counts below are exact when it does.
      await timesOut(1000);
      assert.equal(clock.probes, 1, "the deadline passed before headers: the replica is probed");
      await waitFor(() => clock.pending === 0, "the probe to be answered");
      assert.equal(sim.stats().healthChecks, 1);

      await timesOut(500);
      assert.equal(clock.probes, 1, "no second probe within the minimum interval (1000 ms) of the first");
      await timesOut(500);
      assert.equal(clock.probes, 2, "the next deadline after the interval is probed again");
      await waitFor(() => clock.pending === 0, "the probe to be answered");
      assert.equal(sim.stats().healthChecks, 2);

      const replica = engine.stats().replicas[0];
      assert.equal(replica.state, "healthy");
      assert.equal(replica.failures, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a deadline that passes after the headers (a streamed answer waiting for its first token) probes nothing", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { firstTokenDelayMs: 600_000 } });
    const clock = new ProbeCountingClock(2000);
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock });
    try {
      const pending = collect(engine.stream(ASK, { agentId: "d", timeoutMs: 1000 }));
      await waitFor(() => sim.requests().length === 1, "the request to arrive");
      await clock.advance(1000);
      assert.equal((await pending).error?.code, "BRIDGE_ERR_ENGINE_TIMEOUT");
      assert.equal(clock.probes, 0);
      assert.equal(sim.stats().healthChecks, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });

  test("a caller's own cancellation before headers probes nothing: it says nothing about the replica", async () => {
    const sim = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
    const clock = new ProbeCountingClock(2000);
    const engine = createEngineClient({ urls: [sim.url], model: sim.model, clock });
    try {
      const cancel = new AbortController();
      const pending = collect(engine.stream(ASK, { agentId: "d", signal: cancel.signal }));
      await waitFor(() => sim.requests().length === 1, "the request to arrive");
      cancel.abort();
      assert.equal((await pending).error?.code, "BRIDGE_ERR_ENGINE_CANCELLED");
      assert.equal(clock.probes, 0);
      assert.equal(sim.stats().healthChecks, 0);
    } finally {
      await engine.close();
      await sim.close();
    }
  });
});
