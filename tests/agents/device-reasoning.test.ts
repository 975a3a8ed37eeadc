/**
 * DeviceAgent reasoning through the real runtime and the real engine client, against the engine simulator over
 * loopback: streaming, single final frames, binary devices, prefix sharing, missing engine, engine errors,
 * disconnect aborts, tools, and approvals that survive a runtime restart.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DOWN_CHANNELS } from "../../codecs/frames.ts";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import type { Approval, CommandRecord, ConversationEntry, UsageTotals } from "../../agents/device/index.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import type { EngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { DeviceHarness, type RecordingDevice, waitFor, useSimulatedEngine } from "./device-harness.ts";

const env = useSimulatedEngine();
const { harnesses } = env;

function harness(options: { engine?: EngineClient | null; config?: Record<string, unknown> } = {}): DeviceHarness {
  const h = new DeviceHarness({
    engine: options.engine === null ? undefined : (options.engine ?? env.engine),
    agentConfig: options.config ? { DeviceAgent: options.config } : undefined,
  });
  harnesses.push(h);
  return h;
}

function finalFrame(dev: RecordingDevice, id: string): Promise<ReasonStreamFrame> {
  return waitFor(() => dev.frames("reason").find((f) => f.id === id && f.fin === true), `final reason frame ${id}`);
}

test("a streaming device gets numbered chunks then one final QoS 1 frame with usage, and the turn is persisted", async () => {
  const h = harness();
  const dev = await h.open("thermo-r1", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.2.3" } });
  await h.send(dev, { channel: "telemetry", frame: { r: { temp: 21.5 } } });
  await h.send(dev, { channel: "reason", frame: { id: "q1", q: "Is it warm in here?" } });
  const fin = await finalFrame(dev, "q1");
  const reasons = dev.sent.filter((s) => s.message.channel === "reason");
  const chunks = reasons.slice(0, -1).map((s) => s.message.frame as ReasonStreamFrame);
  assert.ok(chunks.length > 1, "streamed in several chunks");
  assert.deepEqual(
    chunks.map((c) => c.seq),
    chunks.map((_c, i) => i),
  );
  assert.ok(reasons.slice(0, -1).every((s) => s.qos === 0));
  assert.equal(reasons.at(-1)?.qos, 1);
  assert.equal(fin.seq, chunks.length);
  assert.equal(fin.fr, "stop");
  assert.equal(fin.text, undefined, "a streaming device gets no text in the final frame");
  // Deltas that arrive close together share one chunk, so there are at most as many chunks as tokens.
  assert.ok(fin.u !== undefined && fin.u.p > 0 && fin.u.c >= chunks.length);
  const conversation = await h.call<ConversationEntry[]>("thermo-r1", "getConversation", { limit: 10 });
  assert.deepEqual(
    conversation.map((m) => [m.role, m.content]),
    [
      ["user", "Is it warm in here?"],
      ["assistant", chunks.map((c) => c.text).join("")],
    ],
  );
  const prompt = env.sim.requests().at(-1)?.body as { messages: Array<{ role: string; content: string }> };
  assert.match(prompt.messages[0].content, /firmware: "1\.2\.3"/);
  assert.match(prompt.messages.at(-1)?.content ?? "", /^Is it warm in here\?\n\n---\nDevice context .*temp=21\.5/s);
});

test("the chunk interval is a class option: one longer than the answer sends its first text, then the rest at the end", async () => {
  const h = harness({ config: { reasonChunkIntervalMs: 600_000, reasonBusyChunkIntervalMs: 600_000 } });
  const dev = await h.open("thermo-r9", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.2.3" } });
  await h.send(dev, { channel: "reason", frame: { id: "q9", q: "Is it warm in here?", max: 24 } });
  const fin = await finalFrame(dev, "q9");
  const chunks = dev.frames("reason").filter((f) => f.fin !== true);
  assert.ok(fin.u !== undefined && fin.u.c > 2, `${fin.u?.c} tokens`);
  // The first text is never held and the end never waits for the window: two chunks, not one per token.
  assert.equal(chunks.length, 2);
  assert.deepEqual(
    chunks.map((c) => c.seq),
    [0, 1],
  );
  const conversation = await h.call<ConversationEntry[]>("thermo-r9", "getConversation", { limit: 10 });
  assert.equal(conversation.at(-1)?.content, chunks.map((c) => c.text).join(""));
});

test("a binary device that cannot stream gets exactly one final frame with the whole text and no protocol frames", async () => {
  const h = harness();
  const dev = await h.open("tiny-r2", "pb");
  await h.send(dev, { channel: "hello", frame: { fw: "0.9", codec: "pb", stream: false } });
  await h.send(dev, { channel: "reason", frame: { id: "q2", q: "Status?" } });
  const fin = await finalFrame(dev, "q2");
  assert.deepEqual(dev.protocol, [], "no runtime protocol frames for a binary device");
  const reasons = dev.frames("reason");
  assert.equal(reasons.length, 1);
  assert.equal(fin.seq, 0);
  assert.ok(typeof fin.text === "string" && fin.text.length > 0);
  for (const s of dev.sent) {
    assert.ok(DOWN_CHANNELS.includes(s.message.channel), "only down frames, encoded by the transport in pb");
    assert.equal(typeof s.message.frame, "object");
  }
});

test("consecutive requests of one device share their prompt prefix and hit the engine's prefix cache", async () => {
  const h = harness();
  env.sim.reset();
  const dev = await h.open("cache-r3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "2.0" } });
  await h.send(dev, { channel: "reason", frame: { id: "a", q: "First question about the device." } });
  const first = await finalFrame(dev, "a");
  await h.send(dev, { channel: "telemetry", frame: { r: { temp: 30 } } });
  await h.send(dev, { channel: "reason", frame: { id: "b", q: "Second question." } });
  const second = await finalFrame(dev, "b");
  assert.equal(first.u?.k, 0, "a cold cache");
  const [r1, r2] = env.sim
    .requests()
    .slice(-2)
    .map((r) => r.body as { messages: Array<{ role: string; content: string }> });
  assert.deepEqual(r2.messages[0], r1.messages[0], "the same system message");
  assert.deepEqual(r2.messages[1], r1.messages[1], "history holds the question with its context exactly as sent");
  assert.match(
    r2.messages.at(-1)?.content ?? "",
    /Telemetry since the previous question \(newest first\):\n- .* temp=30$/,
  );
  const p1 = first.u?.p ?? 0;
  const k2 = second.u?.k ?? 0;
  // Everything up to the first question's context (tools, system, profile, question) is shared.
  assert.ok(k2 > 0.6 * p1, `cached ${k2} of a first prompt of ${p1} tokens`);
  const usage = await h.call<UsageTotals>("cache-r3", "getUsage");
  assert.equal(usage.requests, 2);
  assert.equal(usage.cachedTokens, k2);
  assert.equal(usage.promptTokens, p1 + (second.u?.p ?? 0));
});

test("without an engine a reasoning request gets BRIDGE_ERR_ENGINE_NOT_CONFIGURED with its id", async () => {
  const h = harness({ engine: null });
  const dev = await h.open("none-r4", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "z", q: "Anyone?" } });
  assert.deepEqual(dev.frames("error"), [
    { code: "BRIDGE_ERR_ENGINE_NOT_CONFIGURED", msg: "no reasoning engine is configured on this bridge", id: "z" },
  ]);
  assert.deepEqual(dev.frames("reason"), []);
});

test("a reason id over 64 characters is refused with the id it came with, so the device knows which question", async () => {
  const h = harness();
  const dev = await h.open("long-id-r4b", "cbor");
  const id = "q".repeat(65);
  await h.send(dev, { channel: "reason", frame: { id, q: "Too long an id?" } });
  assert.deepEqual(dev.frames("error"), [
    { code: "BRIDGE_ERR_FRAME_INVALID", msg: "reason needs id (1-64 characters)", id },
  ]);
  assert.deepEqual(dev.frames("reason"), []);
});

test("an engine error becomes an error frame with its code and a final frame with fr error", async () => {
  const h = harness();
  const dev = await h.open("err-r5", "cbor");
  env.sim.setFaults({ failRequests: { status: 400, count: 1 } });
  try {
    await h.send(dev, { channel: "reason", frame: { id: "e", q: "Fail please" } });
    const fin = await finalFrame(dev, "e");
    assert.equal(fin.fr, "error");
    const [error] = dev.frames("error");
    assert.equal(error.id, "e");
    assert.match(error.code, /^BRIDGE_ERR_ENGINE_/);
  } finally {
    env.sim.clearFaults();
  }
});

test("a second request while one runs is refused as busy", async () => {
  const h = harness();
  const dev = await h.open("busy-r6", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "one", q: "First" } });
  await h.send(dev, { channel: "reason", frame: { id: "two", q: "Second" } });
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_REASON_BUSY", "two"]],
  );
  await finalFrame(dev, "one");
});

test("a read-only tool runs at once and the turn continues with its output", async () => {
  const h = harness();
  const dev = await h.open("tool-r7", "cbor");
  await h.send(dev, { channel: "telemetry", frame: { r: { co2: 812 } } });
  await h.send(dev, { channel: "reason", frame: { id: "t", q: "Check read_telemetry for co2" } });
  const fin = await finalFrame(dev, "t");
  assert.equal(fin.fr, "stop");
  const conversation = await h.call<ConversationEntry[]>("tool-r7", "getConversation", {});
  assert.deepEqual(
    conversation.map((m) => m.role),
    ["user", "assistant", "tool", "assistant"],
  );
  assert.equal(conversation[1].toolCalls?.[0].name, "read_telemetry");
  // The simulator fills arguments from the tool's schema; whatever they were, the agent ran the query and answered.
  const args = JSON.parse(conversation[1].toolCalls?.[0].arguments ?? "{}") as { metric?: string };
  const output = JSON.parse(conversation[2].content ?? "null") as Array<{ metric: string }>;
  assert.ok(Array.isArray(output));
  assert.ok(output.every((row) => args.metric === undefined || row.metric === args.metric));
});

test("the device disconnecting aborts its running generation", async () => {
  const slowSim = await startEngineSimulator({ timeScale: 1, minOutputTokens: 400, maxOutputTokens: 400 });
  const slowEngine = createEngineClient({ urls: [slowSim.url] });
  try {
    const h = harness({ engine: slowEngine });
    const dev = await h.open("gone-r8", "cbor");
    await h.send(dev, { channel: "reason", frame: { id: "long", q: "Tell me a long story", max: 400 } });
    await waitFor(() => dev.frames("reason").length > 0, "the first chunk");
    await h.close(dev, "disconnect");
    await waitFor(() => slowSim.requests()[0]?.outcome === "aborted", "the engine request aborted");
    assert.equal(
      dev.frames("reason").some((f) => f.fin === true),
      false,
    );
    const conversation = await h.call<ConversationEntry[]>("gone-r8", "getConversation", {});
    assert.deepEqual(
      conversation.map((m) => m.role),
      ["user"],
    );
  } finally {
    await slowEngine.close();
    await slowSim.close();
  }
});

test("a tool needing approval waits, survives a runtime restart, and resumes when an operator approves", async () => {
  const h = harness();
  let dev = await h.open("door-r9", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "5.0" } });
  await h.send(dev, { channel: "reason", frame: { id: "act", q: "Please send_command to open the door" } });
  const approvals = await waitFor(() => {
    const list = h.runtime.directory.list("approval");
    return list.length > 0 ? list : undefined;
  }, "a pending approval in the fleet directory");
  assert.equal(approvals[0].agentId, "door-r9");
  const approvalId = approvals[0].key;
  const listed = await h.call<Approval[]>("door-r9", "listApprovals", { status: "pending" });
  assert.equal(listed[0].tool, "send_command");
  assert.equal(
    dev.frames("reason").some((f) => f.fin === true),
    false,
    "the turn is not over",
  );

  await h.restart();
  dev = await h.open("door-r9", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "5.0" } });
  assert.equal(h.runtime.directory.list("approval").length, 1, "still pending after the restart");
  const resolved = await h.call<{ status: string }>("door-r9", "resolveApproval", approvalId, true, "ok by operator");
  assert.equal(resolved.status, "ok");
  const fin = await finalFrame(dev, "act");
  assert.equal(fin.fr, "stop");
  assert.deepEqual(h.runtime.directory.list("approval"), []);
  const commands = await h.call<CommandRecord[]>("door-r9", "listCommands", {});
  assert.equal(commands.length, 1);
  assert.match(commands[0].name, /^sim-/);
  assert.equal(commands[0].state, "SENT", "the approved command went to the online device");
  const again = await h.call<{ status: string }>("door-r9", "resolveApproval", approvalId, false);
  assert.equal(again.status, "already_resolved");
});

test("an approval decided while the device is offline resumes the turn when the device is back, not before", async () => {
  const h = harness();
  let dev = await h.open("door-r11", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "5.0" } });
  await h.send(dev, { channel: "reason", frame: { id: "later", q: "Please send_command to open the door" } });
  const [entry] = await waitFor(() => {
    const list = h.runtime.directory.list("approval").filter((a) => a.agentId === "door-r11");
    return list.length > 0 ? list : undefined;
  }, "a pending approval");
  await h.close(dev);
  const resolved = await h.call<{ status: string }>("door-r11", "resolveApproval", entry.key, true, "ok");
  assert.equal(resolved.status, "ok");
  // A round would have been handed to the engine client inside the resolving event (an eager task).
  assert.equal(env.engine.stats().inFlight, 0, "no round is asked for while nobody can receive it");

  dev = await h.open("door-r11", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "5.0" } });
  const fin = await finalFrame(dev, "later");
  assert.equal(fin.fr, "stop", "the device that asked gets the answer in its next session");
});

test("a refused approval tells the model and the turn still ends with an answer", async () => {
  const h = harness();
  const dev = await h.open("door-r10", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "no", q: "set_desired please" } });
  const [entry] = await waitFor(() => {
    const list = h.runtime.directory.list("approval").filter((a) => a.agentId === "door-r10");
    return list.length > 0 ? list : undefined;
  }, "approval");
  await h.call("door-r10", "resolveApproval", entry.key, false, "not now");
  const fin = await finalFrame(dev, "no");
  assert.equal(fin.fr, "stop");
  const conversation = await h.call<ConversationEntry[]>("door-r10", "getConversation", {});
  const tool = conversation.find((m) => m.role === "tool");
  assert.match(tool?.content ?? "", /operator refused.*not now/);
  assert.equal((await h.call<{ desired: { version: number } }>("door-r10", "getShadow")).desired.version, 0);
});
