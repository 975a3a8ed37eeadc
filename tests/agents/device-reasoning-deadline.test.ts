/**
 * Device reasoning has a deadline and a priority: a stalled engine (no token, only keep-alive comments) ends the
 * turn with BRIDGE_ERR_ENGINE_TIMEOUT and a final frame fr "error", and the device can ask again.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { resolveDeviceAgentOptions } from "../../agents/device/options.ts";
import type { ChatOptions, ReasoningEngine } from "../../agents/engine.ts";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import { type Clock, createEngineClient } from "../../engine-client/index.ts";
import type { EngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import type { EngineSimulator } from "../../engine-client/sim/index.ts";
import { DeviceHarness, type RecordingDevice, waitFor } from "./device-harness.ts";

let sim: EngineSimulator;
let client: EngineClient;
let h: DeviceHarness | undefined;
const asked: ChatOptions[] = [];

/**
 * The engine client's clock: real time, but its timers (here only request deadlines) are held until the test fires
 * them, so a slow machine can never time out the request that should succeed. The agents run on the harness's fake
 * clock, months away from real time: the round's budget must not depend on the two agreeing.
 */
const timers = new Map<number, { delayMs: number; fn: () => void }>();
let timerSeq = 0;
const agentTime: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
  setTimeout: (fn, delayMs) => {
    timers.set(++timerSeq, { delayMs, fn });
    return timerSeq;
  },
  clearTimeout: (handle) => {
    timers.delete(handle as number);
  },
};

/**
 * Whether `timer` is one of a deadline `budgetMs` after the request: armed once the request was written, it waits what
 * is left of the budget then (a few ms may have passed), never more.
 */
function isDeadline(timer: { delayMs: number }, budgetMs: number): boolean {
  return timer.delayMs <= budgetMs && timer.delayMs >= budgetMs - 50;
}

/** Fires the timers of a deadline `budgetMs` after the request; returns how many there were. */
function fireDeadlines(budgetMs: number): number {
  let fired = 0;
  for (const [id, timer] of [...timers]) {
    if (!isDeadline(timer, budgetMs)) continue;
    timers.delete(id);
    timer.fn();
    fired++;
  }
  return fired;
}

/** Records what each round asked for, then calls the real client. */
const spy: ReasoningEngine = {
  stream(request, options) {
    asked.push(options);
    return client.stream(request, options);
  },
};

before(async () => {
  sim = await startEngineSimulator({ timeScale: 0 });
  client = createEngineClient({ urls: [sim.url], model: sim.model, clock: agentTime });
});

after(async () => {
  await h?.dispose();
  await client.close();
  await sim.close();
});

function finalFrame(dev: RecordingDevice, id: string): Promise<ReasonStreamFrame> {
  return waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
}

test("a stalled engine ends the turn with BRIDGE_ERR_ENGINE_TIMEOUT and fr error, and the device can ask again", async () => {
  h = new DeviceHarness({ engine: spy, agentConfig: { DeviceAgent: { reasonTimeoutMs: 200, reasonPriority: 7 } } });
  const dev = await h.open("stall-d1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  sim.setFaults({ firstTokenDelayMs: 1500, keepAliveCommentMs: 10 });
  await h.send(dev, { channel: "reason", frame: { id: "slow", q: "Are you there?" } });
  // The engine holds the request and sends only keep-alive comments; then the 200 ms deadline passes.
  await waitFor(() => sim.requests()[0]?.outcome === "running" || undefined, "the engine to hold the request");
  // The client arms the deadline after its write: the engine may see the request first.
  await waitFor(
    () => [...timers.values()].some((timer) => isDeadline(timer, 200)),
    "the request's deadline to be armed",
  );
  assert.equal(fireDeadlines(200), 1, "one deadline of reasonTimeoutMs was armed");
  const fin = await finalFrame(dev, "slow");
  assert.equal(fin.fr, "error");
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_ENGINE_TIMEOUT", "slow"]],
  );
  assert.equal(asked[0].timeoutMs, 200, "the round's budget is reasonTimeoutMs");
  assert.equal(asked[0].priority, 7);
  await waitFor(() => sim.requests()[0]?.outcome === "aborted" || undefined, "the engine to see the abort");

  sim.clearFaults();
  await h.send(dev, { channel: "reason", frame: { id: "again", q: "Are you there now?" } });
  const second = await finalFrame(dev, "again");
  assert.equal(second.fr, "stop");
  assert.equal(dev.frames("error").length, 1, "no new error");
});

test("reasonTimeoutMs and reasonPriority have defaults and are validated naming the field", () => {
  const defaults = resolveDeviceAgentOptions();
  assert.equal(defaults.reasonTimeoutMs, 120_000);
  assert.equal(defaults.reasonPriority, 0);
  assert.equal(resolveDeviceAgentOptions({ reasonPriority: -3 }).reasonPriority, -3);
  assert.throws(() => resolveDeviceAgentOptions({ reasonTimeoutMs: 0 }), /reasonTimeoutMs/);
  assert.throws(() => resolveDeviceAgentOptions({ reasonPriority: 1.5 }), /reasonPriority/);
});
