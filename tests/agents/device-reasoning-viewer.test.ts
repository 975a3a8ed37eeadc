/**
 * A reasoning turn a WebSocket viewer started belongs to that viewer: when its connection closes, its turns that wait
 * (for an approval, or queued for a slot) end, their pending approvals are cancelled so no operator is asked about
 * them, and the answer never goes to the device, which did not ask. Against a scripted engine.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { Approval, CommandRecord, ResolveApprovalResult } from "../../agents/device/index.ts";
import type { ChatStreamEvent, ReasoningEngine } from "../../agents/engine.ts";
import { DeviceHarness, type RecordingDevice, settle, waitFor } from "./device-harness.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

function harness(engine: ScriptedEngine, config: Record<string, unknown> = {}): DeviceHarness {
  const h = new DeviceHarness({ engine, agentConfig: { DeviceAgent: config } });
  harnesses.push(h);
  return h;
}

function pendingApprovalIds(h: DeviceHarness, agentId: string): string[] {
  return h.runtime.directory
    .list("approval")
    .filter((entry) => entry.agentId === agentId)
    .map((entry) => entry.key);
}

/** A device that said hello and a viewer on the same agent; the viewer asks `q` and its model calls send_command. */
async function viewerAsksForAction(h: DeviceHarness, engine: ScriptedEngine, agentId: string) {
  const dev = await h.open(agentId, "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const viewer = await h.open(agentId, "json", "ws");
  await h.send(viewer, { channel: "reason", frame: { id: "act", q: "Open the door" } });
  (await engine.call(0)).reply({ tool: "send_command", args: '{"name":"open"}' });
  const [approvalId] = await waitFor(() => {
    const ids = pendingApprovalIds(h, agentId);
    return ids.length > 0 ? ids : undefined;
  }, "the viewer's pending approval");
  return { dev, viewer, approvalId };
}

function assertNothingReachedTheDevice(dev: RecordingDevice): void {
  assert.deepEqual(
    dev.frames("reason").filter((f) => f.id === "act"),
    [],
  );
  assert.deepEqual(dev.frames("error"), []);
}

test("a viewer's turn waiting for an approval ends when the viewer leaves, its approval cancelled", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const { dev, viewer, approvalId } = await viewerAsksForAction(h, engine, "viewer-v1");
  await h.close(viewer);
  assert.deepEqual(pendingApprovalIds(h, "viewer-v1"), [], "the operator is no longer asked");
  const [approval] = await h.call<Approval[]>("viewer-v1", "listApprovals", {});
  assert.equal(approval.status, "cancelled");
  assert.match(approval.reason ?? "", /viewer .*disconnected/);
  // An operator's late decision lands on nothing: the tool does not run and no round starts.
  const late = await h.call<ResolveApprovalResult>("viewer-v1", "resolveApproval", approvalId, true);
  assert.equal(late.status, "already_resolved");
  await settle();
  assert.equal(engine.calls.length, 1);
  assert.deepEqual(await h.call<CommandRecord[]>("viewer-v1", "listCommands", {}), []);
  assertNothingReachedTheDevice(dev);
  // The device's own questions are not held up by it.
  await h.send(dev, { channel: "reason", frame: { id: "act", q: "How warm is it?" } });
  (await engine.call(1)).reply({ text: "21 degrees." });
  await waitFor(() => dev.frames("reason").find((f) => f.id === "act" && f.fin === true), "the device's answer");
});

test("a viewer's turn queued for a slot ends with its viewer and its answer never goes to the device", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const { dev, viewer, approvalId } = await viewerAsksForAction(h, engine, "viewer-v2");
  const other = await h.open("viewer-v2", "json", "ws");
  await h.send(other, { channel: "reason", frame: { id: "busy", q: "How warm is it?" } });
  const busy = await engine.call(1);
  // Decided while another viewer's turn holds the viewers' one slot: the viewer's turn is queued.
  await h.call("viewer-v2", "resolveApproval", approvalId, true);
  await h.close(viewer);
  busy.reply({ text: "21 degrees." });
  await waitFor(() => other.frames("reason").find((f) => f.id === "busy" && f.fin === true), "the other's answer");
  await settle();
  assert.equal(engine.calls.length, 2, "no round for a viewer that left");
  assertNothingReachedTheDevice(dev);
  // The viewers' slot is free: the queued turn of the viewer that left ended instead of taking it.
  await h.send(other, { channel: "reason", frame: { id: "act", q: "And now?" } });
  (await engine.call(2)).reply({ text: "Still 21." });
  await waitFor(() => other.frames("reason").find((f) => f.id === "act" && f.fin === true), "the other's act");
});

test("a viewer's waiting turn ends at the next start when its viewer was lost with the process", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  await viewerAsksForAction(h, engine, "viewer-v3");
  await h.restart();
  const [approval] = await h.call<Approval[]>("viewer-v3", "listApprovals", {});
  assert.equal(approval.status, "cancelled");
  assert.deepEqual(pendingApprovalIds(h, "viewer-v3"), []);
  const dev = await h.open("viewer-v3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  await settle();
  assert.equal(engine.calls.length, 1);
  assertNothingReachedTheDevice(dev);
});

test("a viewer's answer is not cut or split to the device's maxFrame: a WebSocket viewer has no limit", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("viewer-v4", "cbor");
  // So small that not one character of a chunk fits next to the id and seq: the device itself gets no text.
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", maxFrame: 24 } });
  const viewer = await h.open("viewer-v4", "json", "ws");
  const answer = "The door is closed and the room is at 21 degrees; nothing needs doing now.";
  await h.send(viewer, { channel: "reason", frame: { id: "whole", q: "Status?", stream: false } });
  (await engine.call(0)).reply({ text: answer });
  const whole = await waitFor(
    () => viewer.frames("reason").find((f) => f.id === "whole" && f.fin === true),
    "the viewer's final frame",
  );
  assert.equal(whole.text, answer);
  assert.equal(whole.fr, "stop");
  await h.send(viewer, { channel: "reason", frame: { id: "streamed", q: "And now?", stream: true } });
  (await engine.call(1)).reply({ text: answer });
  await waitFor(() => viewer.frames("reason").find((f) => f.id === "streamed" && f.fin === true), "the final frame");
  const chunks = viewer.frames("reason").filter((f) => f.id === "streamed" && f.fin !== true);
  assert.equal(chunks.map((c) => c.text).join(""), answer);
  assert.deepEqual(
    chunks.map((c) => c.seq),
    chunks.map((_c, i) => i),
  );
  assertNothingReachedTheDevice(dev);
});

test("a viewer that does not say gets a streamed answer, even from a device that cannot stream", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("viewer-v5", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", stream: false } });
  const viewer = await h.open("viewer-v5", "json", "ws");
  await h.send(viewer, { channel: "reason", frame: { id: "look", q: "Status?" } });
  (await engine.call(0)).reply({ text: "All is well." });
  const fin = await waitFor(
    () => viewer.frames("reason").find((f) => f.id === "look" && f.fin === true),
    "the viewer's final frame",
  );
  assert.equal(fin.text, undefined, "the answer came as chunks, not in the final frame");
  assert.equal(
    viewer
      .frames("reason")
      .filter((f) => f.fin !== true)
      .map((f) => f.text)
      .join(""),
    "All is well.",
  );
  // The device's own default is still its hello's.
  await h.send(dev, { channel: "reason", frame: { id: "own", q: "And you?" } });
  (await engine.call(1)).reply({ text: "Fine." });
  const own = await waitFor(() => dev.frames("reason").find((f) => f.id === "own" && f.fin === true), "the device's");
  assert.equal(own.text, "Fine.");
  assert.equal(dev.frames("reason").length, 1);
});

/** An engine that answers every chat with `deltas`, each after a pause, so each reaches the agent on its own. */
function pacedEngine(deltas: readonly string[], pauseMs: number): ReasoningEngine {
  return {
    async *stream(): AsyncIterable<ChatStreamEvent> {
      for (const text of deltas) {
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        yield { type: "text", text };
      }
      yield { type: "done", finishReason: "stop", usage: { promptTokens: 10, completionTokens: 4, cachedTokens: 0 } };
    },
  };
}

test("a viewer's streamed text is not coalesced into chunks of the device's maxFrame", async () => {
  const deltas = ["a".repeat(40), "b".repeat(40), "c".repeat(40), "d".repeat(40)];
  const h = new DeviceHarness({
    engine: pacedEngine(deltas, 30),
    // A window longer than the answer: after the first text, only the pending bytes or the end flush.
    agentConfig: { DeviceAgent: { reasonChunkIntervalMs: 600_000, reasonBusyChunkIntervalMs: 600_000 } },
  });
  harnesses.push(h);
  const dev = await h.open("viewer-v6", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0", maxFrame: 24 } });
  const viewer = await h.open("viewer-v6", "json", "ws");
  await h.send(viewer, { channel: "reason", frame: { id: "long", q: "Tell me everything.", stream: true } });
  await waitFor(() => viewer.frames("reason").find((f) => f.id === "long" && f.fin === true), "the final frame");
  const chunks = viewer.frames("reason").filter((f) => f.fin !== true);
  // The first text at once, the rest at the end: 160 bytes are far below the 1 KB a flush waits for.
  assert.deepEqual(
    chunks.map((c) => c.text),
    [deltas[0], deltas.slice(1).join("")],
  );
  assertNothingReachedTheDevice(dev);
});
