/**
 * DeviceAgent edges through the real runtime: subclassing, device rpc, approval expiry by alarm, a round cut by a
 * restart, the conversation row-size guard, hibernation, and device-only channels.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConversationEntry, DeviceAgentOptions, Shadow } from "../../agents/device/index.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { getCodec } from "../../codecs/index.ts";
import type { ChatRequest, ChatStreamEvent, ReasoningEngine } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { DEVICE_TOOLS } from "../../agents/device/reasoning/tools.ts";
import { DeviceHarness, RecordingDevice, waitFor, useSimulatedEngine } from "./device-harness.ts";

const env = useSimulatedEngine();
const { harnesses } = env;

class Thermostat extends DeviceAgent {
  static override callable = [...DeviceAgent.callable, "setTarget"];
  static override deviceOptions: Partial<DeviceAgentOptions> = { telemetryMaxRows: 50 };
  seen = 0;

  setTarget(celsius: unknown) {
    if (typeof celsius !== "number") throw new Error("celsius must be a number");
    return this.setDesired({ target: celsius });
  }

  protected override onTelemetry(): void {
    this.seen += 1;
  }

  readingsSeen(): number {
    return this.seen;
  }
}

test("a subclass adds a device-callable method, keeps the built-in ones and gets its class options", async () => {
  const h = new DeviceHarness({ agentClass: Thermostat });
  harnesses.push(h);
  const dev = await h.open("thermo-s1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1" } });
  dev.clear();
  await h.send(dev, { channel: "rpc", frame: { id: "1", m: "setTarget", a: [22] } });
  await h.send(dev, { channel: "rpc", frame: { id: "2", m: "ping" } });
  await h.send(dev, { channel: "rpc", frame: { id: "3", m: "sendCommand", a: [{ name: "x" }] } });
  const rpc = dev.frames("rpc");
  assert.deepEqual(rpc[0], { id: "1", ok: true, res: { status: "ok", version: 1 } });
  assert.equal(rpc[1].ok, true);
  assert.equal(rpc[2].ok, false, "operator-only methods are not device-callable");
  assert.deepEqual(dev.frames("state"), [{ v: 1, d: { target: 22 } }]);
  await h.send(dev, { channel: "telemetry", frame: { r: { t: 1 } } });
  assert.equal(await h.call<number>("thermo-s1", "readingsSeen"), 1);
});

test("device channels from a WebSocket viewer are refused and change nothing", async () => {
  const h = new DeviceHarness();
  harnesses.push(h);
  const viewer = await h.open("cam-s2", "json", "ws");
  await h.send(viewer, { channel: "state", frame: { v: 0, s: { hacked: true } } });
  assert.equal(viewer.frames("error")[0]?.code, "BRIDGE_ERR_DEVICE_ONLY");
  assert.equal((await h.call<Shadow>("cam-s2", "getShadow")).reported.version, 0);
});

test("shadow, outbox and presence survive hibernation of an idle agent", async () => {
  const h = new DeviceHarness({ idleTimeoutMs: 1000 });
  harnesses.push(h);
  const dev = await h.open("sleepy-s3", "cbor");
  await h.send(dev, { channel: "state", frame: { v: 0, s: { a: 1 } } });
  const before = h.runtime.stats().active;
  await h.clock.advance(5000);
  assert.ok(h.runtime.stats().active < before, "the agent hibernated");
  await h.send(dev, { channel: "state", frame: { v: 1, s: { b: 2 } } });
  assert.deepEqual((await h.call<Shadow>("sleepy-s3", "getShadow")).reported, { version: 2, state: { a: 1, b: 2 } });
  assert.equal((await h.call<{ online: boolean }>("sleepy-s3", "getStatus")).online, true);
});

test("a pending approval not resolved in time expires by alarm and the turn answers anyway", async () => {
  const h = new DeviceHarness({ engine: env.engine, agentConfig: { DeviceAgent: { approvalTtlSeconds: 60 } } });
  harnesses.push(h);
  const dev = await h.open("door-s4", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "x", q: "send_command now" } });
  await waitFor(() => h.runtime.directory.list("approval").find((a) => a.agentId === "door-s4"), "approval");
  await h.clock.advance(61_000);
  const fin = await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "final frame");
  assert.equal(fin.fr, "stop");
  const approvals = await h.call<Array<{ status: string }>>("door-s4", "listApprovals", {});
  assert.equal(approvals[0].status, "expired");
  assert.equal(h.runtime.directory.list("approval").filter((a) => a.agentId === "door-s4").length, 0);
});

test("a round in flight at a restart is ended cleanly and does not block the next request", async () => {
  const slowSim = await startEngineSimulator({ timeScale: 1, minOutputTokens: 400, maxOutputTokens: 400 });
  const slowEngine = createEngineClient({ urls: [slowSim.url] });
  const h = new DeviceHarness({ engine: slowEngine });
  harnesses.push(h);
  try {
    const dev = await h.open("cut-s5", "cbor");
    await h.send(dev, { channel: "reason", frame: { id: "r", q: "Long answer please", max: 400 } });
    await waitFor(() => dev.frames("reason").length > 0, "first chunk");
    await h.restart();
    slowSim.setFaults({ failRequests: { status: 400 } });
    const again = await h.open("cut-s5", "cbor");
    await h.send(again, { channel: "reason", frame: { id: "r2", q: "Again" } });
    const errors = again.frames("error").map((e) => e.code);
    assert.ok(!errors.includes("BRIDGE_ERR_REASON_BUSY"), `not busy: ${errors.join(",")}`);
    await waitFor(() => again.frames("reason").find((f) => f.fin === true), "final frame of the second request");
  } finally {
    await h.runtime.shutdown();
    await slowEngine.close();
    await slowSim.close();
  }
});

test("an oversized tool output is compacted with a note instead of failing the write", async () => {
  const h = new DeviceHarness({ engine: env.engine, agentConfig: { DeviceAgent: { maxToolOutputChars: 300 } } });
  harnesses.push(h);
  const dev = await h.open("big-s6", "cbor");
  await h.send(dev, { channel: "state", frame: { v: 0, s: { blob: "x".repeat(5000) } } });
  await h.send(dev, { channel: "reason", frame: { id: "b", q: "read_shadow please" } });
  await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "final frame");
  const conversation = await h.call<ConversationEntry[]>("big-s6", "getConversation", {});
  const tool = conversation.find((m) => m.role === "tool");
  assert.ok(tool !== undefined && (tool.content ?? "").length <= 300);
  assert.match(tool?.content ?? "", /\[compacted: the tool output was \d+ characters; \d+ from the middle were cut\]/);
});

test("a non-streaming device's final frame is cut to its maxFrame and says length", async () => {
  const h = new DeviceHarness({ engine: env.engine });
  harnesses.push(h);
  const dev = await h.open("tiny-s7", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1", stream: false, maxFrame: 180 } });
  await h.send(dev, { channel: "reason", frame: { id: "m", q: "Explain everything" } });
  const fin = await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "final frame");
  // The whole frame, as encoded in the device's codec, fits maxFrame, with as much text as that leaves room for.
  const size = getCodec("cbor").encodeDown("reason", fin).byteLength;
  assert.ok(size <= 180, `a final frame of ${size} bytes`);
  assert.ok((fin.text ?? "").length > 20, `text of ${fin.text?.length} characters`);
  assert.equal(fin.fr, "length");
  const stored = await h.call<ConversationEntry[]>("tiny-s7", "getConversation", {});
  assert.ok((stored.at(-1)?.content ?? "").length > (fin.text ?? "").length, "the conversation keeps the whole answer");
});

test("old finished turns are pruned beyond conversationMaxTurns", async () => {
  const h = new DeviceHarness({ engine: env.engine, agentConfig: { DeviceAgent: { conversationMaxTurns: 1 } } });
  harnesses.push(h);
  const dev = await h.open("chatty-s8", "cbor");
  for (const id of ["p1", "p2", "p3"]) {
    await h.send(dev, { channel: "reason", frame: { id, q: `Question ${id}` } });
    await waitFor(() => dev.frames("reason").find((f) => f.fin === true && f.id === id), `final ${id}`);
  }
  const conversation = await h.call<ConversationEntry[]>("chatty-s8", "getConversation", {});
  assert.deepEqual(conversation.map((m) => m.content).slice(0, 1), ["Question p3"]);
  assert.equal(conversation.length, 2);
  assert.equal(conversation[0].turnId, "turn-3", "ids keep counting after pruning");
});

test("a hello-less device gets the desired state with its first message, and a readonly viewer may not reason", async () => {
  const h = new DeviceHarness({ engine: env.engine });
  harnesses.push(h);
  await h.call("dumb-s9", "setDesired", { led: "on" });
  const dev = await h.open("dumb-s9", "cbor");
  assert.deepEqual(dev.frames("state"), []);
  await h.send(dev, { channel: "state", frame: { v: 0, s: { led: "off" } } });
  assert.deepEqual(dev.frames("state")[0], { v: 1, d: { led: "on" }, full: true });
  const viewer = new RecordingDevice("dumb-s9", "viewer-1", "json", "ws");
  await h.runtime.open("dumb-s9", {
    id: viewer.connectionId,
    kind: "ws",
    codec: "json",
    readonly: true,
    transport: viewer.transport,
  });
  await h.send(viewer, { channel: "reason", frame: { id: "v", q: "hi" } });
  assert.equal(viewer.frames("error")[0]?.code, "BRIDGE_ERR_READONLY");
  // Like every other refusal of a question, it names the request, so a client with several open can tell which.
  assert.equal(viewer.frames("error")[0]?.id, "v");
});

test("tool-call rounds per turn are bounded: the last round keeps the tools but may not call them", async () => {
  const requests: ChatRequest[] = [];
  const looping: ReasoningEngine = {
    async *stream(request: ChatRequest): AsyncIterable<ChatStreamEvent> {
      requests.push(request);
      const usage = { promptTokens: 10, completionTokens: 1, cachedTokens: 0 };
      if (request.toolChoice !== "none") {
        yield { type: "tool-call", call: { id: `c${requests.length}`, name: "read_shadow", arguments: "{}" } };
        yield { type: "done", finishReason: "tool_calls", usage };
      } else {
        yield { type: "text", text: "done" };
        yield { type: "done", finishReason: "stop", usage };
      }
    },
  };
  const h = new DeviceHarness({ engine: looping, agentConfig: { DeviceAgent: { maxToolRounds: 2 } } });
  harnesses.push(h);
  const dev = await h.open("loop-s10", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "l", q: "loop forever" } });
  const fin = await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "final frame");
  assert.equal(fin.fr, "stop");
  // The tools stay in every round's prompt (its cached prefix), the last round answers in text.
  assert.deepEqual(
    requests.map((r) => [r.tools?.length ?? 0, r.toolChoice]),
    [
      [DEVICE_TOOLS.length, undefined],
      [DEVICE_TOOLS.length, undefined],
      [DEVICE_TOOLS.length, "none"],
    ],
  );
  assert.deepEqual(fin.u, { p: 30, c: 3, k: 0 });
});
