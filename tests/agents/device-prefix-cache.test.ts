/**
 * The prefix-cache target of the DeviceAgent prompt layout: on a fixed multi-turn workload (telemetry and state
 * change between questions) the engine simulator must find at least 80% of all prompt tokens in its prefix cache.
 * The figure comes from token counts the simulator reports (`u.k` / `u.p` of the final frames), so it is a property
 * of the prompt layout, not a timing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatUsage, ReasoningEngine } from "../../agents/engine.ts";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import { type TurnUsage, multiTurnWorkload, overallHitRate } from "../../bench/engine/multi-turn.ts";
import { DeviceHarness, waitFor, useSimulatedEngine } from "./device-harness.ts";

const env = useSimulatedEngine();
const { harnesses } = env;

/** Runs the workload on one device and returns the usage of every answered question. */
async function runWorkload(deviceId: string, turns: number, config?: Record<string, unknown>): Promise<TurnUsage[]> {
  const h = new DeviceHarness({ engine: env.engine, agentConfig: config ? { DeviceAgent: config } : undefined });
  harnesses.push(h);
  const dev = await h.open(deviceId, "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "3.1.0" } });
  const usages: TurnUsage[] = [];
  for (const [i, step] of multiTurnWorkload(turns).entries()) {
    for (const frame of step.telemetry) {
      await h.clock.advance(20_000);
      await h.send(dev, { channel: "telemetry", frame });
    }
    await h.send(dev, { channel: "state", frame: step.state });
    await h.send(dev, { channel: "reason", frame: { id: `q${i}`, q: step.question } });
    const fin = await waitFor(
      () => dev.frames("reason").find((f: ReasonStreamFrame) => f.id === `q${i}` && f.fin === true),
      `final frame q${i}`,
    );
    assert.equal(fin.fr, "stop", `question ${i} answered`);
    usages.push({ promptTokens: fin.u?.p ?? 0, cachedTokens: fin.u?.k ?? 0 });
  }
  return usages;
}

test("a device asking 24 questions with telemetry and state changing between them finds at least 80% of its prompt tokens in the prefix cache", async (t) => {
  const usages = await runWorkload("cache-multi-1", 24);
  const rate = overallHitRate(usages);
  t.diagnostic(
    `hit rate ${rate.toFixed(3)}; per turn ${usages.map((u) => `${u.cachedTokens}/${u.promptTokens}`).join(" ")}`,
  );
  assert.ok(
    rate >= 0.8,
    `hit rate ${rate.toFixed(3)}; per turn ${usages.map((u) => `${u.cachedTokens}/${u.promptTokens}`).join(" ")}`,
  );
});

test("the next question lists only readings stored since the previous one, a late reading with an old device time included", async () => {
  const h = new DeviceHarness({ engine: env.engine });
  harnesses.push(h);
  const dev = await h.open("cache-late-2", "cbor");
  await h.send(dev, { channel: "telemetry", frame: { r: { temp: 11.5 } } });
  await h.send(dev, { channel: "reason", frame: { id: "a", q: "First?" } });
  await waitFor(() => dev.frames("reason").find((f) => f.id === "a" && f.fin === true), "final frame a");
  await h.clock.advance(60_000);
  // Stamped before the first question by the device, but stored after it.
  await h.send(dev, { channel: "telemetry", frame: { ts: h.clock.now() - 120_000, r: { temp: 12.5 } } });
  await h.send(dev, { channel: "reason", frame: { id: "b", q: "Second?" } });
  await waitFor(() => dev.frames("reason").find((f) => f.id === "b" && f.fin === true), "final frame b");
  const body = env.sim.requests().at(-1)?.body as { messages: Array<{ role: string; content: string }> };
  const users = body.messages.filter((m) => m.role === "user").map((m) => m.content);
  assert.equal(users.length, 2);
  assert.match(users[0], /^First\?\n\n---\n.*Recent telemetry \(newest first\):\n- \S+ temp=11\.5$/s);
  assert.match(
    users[1],
    /^Second\?\n\n---\n.*Telemetry since the previous question \(newest first\):\n- \S+ temp=12\.5$/s,
  );
});

test("without history every question lists the latest readings", async () => {
  await runWorkload("cache-nohist-3", 2, { maxHistoryTurns: 0, promptTelemetryRows: 4 });
  const body = env.sim.requests().at(-1)?.body as { messages: Array<{ role: string; content: string }> };
  assert.deepEqual(
    body.messages.map((m) => m.role),
    ["system", "user"],
  );
  // Four rows: the three readings of the newest instant on one line, one of the instant before on the next.
  const [, readings] = body.messages[1].content.split("Recent telemetry (newest first):\n");
  assert.equal(readings.split("\n").length, 2);
  assert.match(readings, /^- \S+ co2=\d+, hum=[\d.]+, temp=[\d.]+\n- \S+ co2=\d+$/);
});

test("the round after the last tool round keeps the tools in its prompt, so the engine's prefix cache serves it", async () => {
  // Each round's usage as the engine reports it (the device sees only the turn's sums).
  const rounds: ChatUsage[] = [];
  const recording: ReasoningEngine = {
    async *stream(request, options) {
      for await (const event of env.engine.stream(request, options)) {
        if (event.type === "done") rounds.push(event.usage);
        yield event;
      }
    },
  };
  const h = new DeviceHarness({ engine: recording, agentConfig: { DeviceAgent: { maxToolRounds: 1 } } });
  harnesses.push(h);
  const dev = await h.open("cache-last-round-3", "cbor");
  // The simulator calls a tool the user's message names (docs/engine.md): round 1 calls it, round 2 may not.
  await h.send(dev, { channel: "reason", frame: { id: "t", q: "Use read_shadow and tell me the state." } });
  const fin = await waitFor(() => dev.frames("reason").find((f) => f.id === "t" && f.fin === true), "final frame");
  assert.equal(fin.fr, "stop");
  assert.equal(rounds.length, 2);
  const [first, last] = rounds;
  // Round 2's prompt is round 1's plus the tool call and its output: all of round 1's full 16-token blocks are cached.
  // Asked without the tools, the prompt's first tokens changed and next to nothing was.
  assert.ok(
    last.cachedTokens >= first.promptTokens - 16,
    `round 2 cached ${last.cachedTokens} of ${last.promptTokens}; round 1 prompt ${first.promptTokens}`,
  );
});
