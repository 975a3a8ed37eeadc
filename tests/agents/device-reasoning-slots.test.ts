/**
 * `maxConcurrentTurns` bounds every round a device's turns run, not only new requests: a turn that resumes after an
 * approval, or when the device comes back (resumeWaitingTurns), waits for a free slot, oldest question first. A
 * viewer's round never holds one of these slots (viewers have their own: device-reasoning-viewer-slots.test.ts).
 * Against a scripted engine, so the test decides when each round ends.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type DeviceHarness, type RecordingDevice, settle } from "./device-harness.ts";
import { type ScriptedCall, type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";

const harness = oneSlotHarnesses();

/** The question a round was asked for (the last user message, before its context snapshot). */
function questionOf(call: ScriptedCall): string {
  const users = call.request.messages.filter((m) => m.role === "user");
  return (users.at(-1)?.content ?? "").split("\n\n---\n")[0];
}

/**
 * Asks `q` under `id` and answers its first round with a send_command call; returns once the turn waits for an
 * operator (its approval is listed).
 */
async function askForAction(h: DeviceHarness, dev: RecordingDevice, engine: ScriptedEngine, id: string, q: string) {
  const index = engine.calls.length;
  const pending = h.runtime.directory.list("approval").filter((entry) => entry.agentId === dev.agentId).length;
  await h.send(dev, { channel: "reason", frame: { id, q } });
  (await engine.call(index)).reply({ tool: "send_command", args: '{"name":"open"}' });
  await pendingApprovals(h, dev.agentId, pending + 1);
}

test("a turn whose approval is decided while another turn runs waits for the slot, then answers", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("slot-a1", "cbor");
  await askForAction(h, dev, engine, "act", "Open the door");
  const [approvalId] = await pendingApprovals(h, "slot-a1", 1);
  // A turn parked for an operator does not hold the slot: another question runs.
  await h.send(dev, { channel: "reason", frame: { id: "other", q: "How warm is it?" } });
  const other = await engine.call(1);

  await h.call("slot-a1", "resolveApproval", approvalId, true);
  await settle();
  assert.equal(engine.calls.length, 2, "no round of the approved turn while the device's one slot is taken");
  assert.equal(engine.open().length, 1);

  other.reply({ text: "21 degrees." });
  await finalFrame(dev, "other");
  const resumed = await engine.call(2);
  assert.equal(questionOf(resumed), "Open the door");
  assert.equal(resumed.request.messages.at(-1)?.role, "tool", "the round continues after the approved tool");
  // While the resumed turn runs, it holds the slot like any running turn.
  await h.send(dev, { channel: "reason", frame: { id: "third", q: "And now?" } });
  assert.deepEqual(
    dev.frames("error").map((e) => [e.code, e.id]),
    [["BRIDGE_ERR_REASON_BUSY", "third"]],
  );
  resumed.reply({ text: "The door is open." });
  assert.equal((await finalFrame(dev, "act")).fr, "stop");
});

test("turns waiting for a slot start oldest question first, one at a time", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("slot-a2", "cbor");
  await askForAction(h, dev, engine, "first", "Open the front door");
  await askForAction(h, dev, engine, "second", "Open the back door");
  const [firstApproval, secondApproval] = await pendingApprovals(h, "slot-a2", 2);
  await h.send(dev, { channel: "reason", frame: { id: "busy", q: "How warm is it?" } });
  const busy = await engine.call(2);
  // Decided in the other order: the older question still goes first.
  await h.call("slot-a2", "resolveApproval", secondApproval, true);
  await h.call("slot-a2", "resolveApproval", firstApproval, true);
  await settle();
  assert.equal(engine.calls.length, 3);

  busy.reply({ text: "21 degrees." });
  const next = await engine.call(3);
  assert.equal(questionOf(next), "Open the front door");
  await settle();
  assert.equal(engine.open().length, 1, "one slot, one round");
  next.reply({ text: "The front door is open." });
  await finalFrame(dev, "first");
  const last = await engine.call(4);
  assert.equal(questionOf(last), "Open the back door");
  last.reply({ text: "The back door is open." });
  await finalFrame(dev, "second");
});

test("a turn resumed when the device comes back does not wait for a viewer's round: viewers have slots of their own", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  let dev = await h.open("slot-a3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  await askForAction(h, dev, engine, "act", "Open the door");
  const [approvalId] = await pendingApprovals(h, "slot-a3", 1);
  await h.close(dev);
  // Decided while the device is offline: nobody to answer, so the turn waits for the device.
  await h.call("slot-a3", "resolveApproval", approvalId, true);
  await settle();
  assert.equal(engine.calls.length, 1);
  const viewer = await h.open("slot-a3", "json", "ws");
  await h.send(viewer, { channel: "reason", frame: { id: "look", q: "What is the device doing?" } });
  const looking = await engine.call(1);

  dev = await h.open("slot-a3", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const resumed = await engine.call(2);
  assert.equal(questionOf(resumed), "Open the door");
  assert.equal(looking.settled, false, "beside the viewer's round, still running");
  resumed.reply({ text: "The door is open." });
  assert.equal((await finalFrame(dev, "act")).fr, "stop");
  looking.reply({ text: "Idle." });
  await finalFrame(viewer, "look");
  assert.equal(
    viewer.frames("reason").filter((f) => f.id === "act").length,
    0,
    "the device's answer is not the viewer's",
  );
});

test("a device's queued turn still waits for the device after a restart that lost its and a viewer's running turns", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  // The viewer connected first: at the next start its lost connection is closed before the device's.
  const viewer = await h.open("slot-a4", "json", "ws");
  const dev = await h.open("slot-a4", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  await askForAction(h, dev, engine, "act", "Open the door");
  const [approvalId] = await pendingApprovals(h, "slot-a4", 1);
  await h.send(viewer, { channel: "reason", frame: { id: "look", q: "What is the device doing?" } });
  await engine.call(1);
  await h.send(dev, { channel: "reason", frame: { id: "busy", q: "How warm is it?" } });
  await engine.call(2);
  // Decided while the device's own round holds its slot: the device's turn is queued.
  await h.call("slot-a4", "resolveApproval", approvalId, true);
  await settle();
  assert.equal(engine.calls.length, 3);

  // Both sessions are lost with the process, and both rounds with them: the slots free as the lost connections
  // close, and no round may start for a connection that is gone.
  await h.restart();
  await settle();
  assert.equal(engine.calls.length, 3, "no round for a device that is not there");

  const back = await h.open("slot-a4", "cbor");
  await h.send(back, { channel: "hello", frame: { fw: "1.0" } });
  const resumed = await engine.call(3);
  assert.equal(questionOf(resumed), "Open the door");
  resumed.reply({ text: "The door is open." });
  assert.equal((await finalFrame(back, "act")).fr, "stop");
});
