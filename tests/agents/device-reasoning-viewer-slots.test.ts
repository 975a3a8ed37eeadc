/**
 * A viewer's questions beside the device's own: request ids are scoped per origin (the device, whichever session it
 * is on, and each viewer connection), and viewers run in slots of their own (`maxConcurrentViewerTurns`, all viewers
 * together), never in the device's `maxConcurrentTurns`. So an operator asking under an id the device uses, or
 * asking at all, never gets the device's own question refused. Held across an approval, a hibernation and a
 * restart. Against a scripted engine, so the test decides when each round ends.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type DeviceHarness, type RecordingDevice, settle } from "./device-harness.ts";
import { finalFrame, oneSlotHarnesses, pendingApprovals } from "./reasoning-turns.ts";
import { type ScriptedEngine, scriptedEngine } from "./scripted-engine.ts";

const harness = oneSlotHarnesses();

/** How a question was answered: it reached the engine (its call index), or `down/error` refused it (its code). */
type Answer = { asked: number } | { refused: string };

/** Asks `q` under `id` from `conn` and says how the agent answered it. */
async function ask(
  h: DeviceHarness,
  conn: RecordingDevice,
  engine: ScriptedEngine,
  id: string,
  q = "How warm?",
): Promise<Answer> {
  const calls = engine.calls.length;
  const errors = conn.frames("error").length;
  assert.deepEqual(await h.send(conn, { channel: "reason", frame: { id, q } }), { status: "committed" });
  const error = conn.frames("error").slice(errors)[0];
  if (error !== undefined) {
    assert.equal(error.id, id);
    return { refused: error.code };
  }
  assert.equal(engine.calls.length, calls + 1, `question ${id} reached the engine`);
  return { asked: calls };
}

const BUSY = { refused: "BRIDGE_ERR_REASON_BUSY" };

/** Asks under `id` from `conn`; its first round calls send_command, so the turn waits for an operator. */
async function askForAction(h: DeviceHarness, conn: RecordingDevice, engine: ScriptedEngine, id: string) {
  const pending = h.runtime.directory.list("approval").filter((entry) => entry.agentId === conn.agentId).length;
  const answer = await ask(h, conn, engine, id, "Open the door");
  assert.ok("asked" in answer, `question ${id} was refused: ${JSON.stringify(answer)}`);
  (await engine.call(answer.asked)).reply({ tool: "send_command", args: '{"name":"open"}' });
  return (await pendingApprovals(h, conn.agentId, pending + 1)).at(-1)!;
}

test("a request id is the asker's own: a viewer's open turn holds it against that viewer only", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("vslot-1", "cbor");
  const viewer = await h.open("vslot-1", "json", "ws");
  const other = await h.open("vslot-1", "json", "ws");
  await askForAction(h, viewer, engine, "1");
  // The viewer's turn waits for an operator under "1": the device and another viewer may still use "1".
  assert.deepEqual(await ask(h, dev, engine, "1"), { asked: 1 });
  assert.deepEqual(await ask(h, other, engine, "1"), { asked: 2 });
  assert.deepEqual(await ask(h, viewer, engine, "1"), BUSY, "the viewer's own id is still taken");
  assert.deepEqual(await ask(h, dev, engine, "1"), BUSY, "and so is the device's");
  // The device's answer goes to the device, the other viewer's to it: the same id, two turns.
  engine.calls[1].reply({ text: "For the device." });
  engine.calls[2].reply({ text: "For the other viewer." });
  assert.equal((await finalFrame(dev, "1")).fr, "stop");
  assert.equal((await finalFrame(other, "1")).fr, "stop");
  assert.deepEqual(
    other
      .frames("reason")
      .filter((f) => f.fin !== true)
      .map((f) => f.text),
    ["For the other viewer."],
  );
  assert.equal(viewer.frames("reason").length, 0, "nothing of the others' turns reached the waiting viewer");
});

test("a viewer's round does not take the device's slot, and viewers are bounded by their own", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("vslot-2", "cbor");
  const viewer = await h.open("vslot-2", "json", "ws");
  const other = await h.open("vslot-2", "json", "ws");
  assert.deepEqual(await ask(h, viewer, engine, "look"), { asked: 0 });
  assert.deepEqual(await ask(h, dev, engine, "own"), { asked: 1 }, "the device's one slot is its own");
  assert.deepEqual(await ask(h, dev, engine, "more"), BUSY, "one device turn at a time");
  assert.deepEqual(await ask(h, other, engine, "peek"), BUSY, "one viewer turn at a time, all viewers together");
  engine.calls[1].reply({ text: "Device done." });
  await finalFrame(dev, "own");
  assert.deepEqual(await ask(h, other, engine, "peek"), BUSY, "the device's freed slot is not a viewer's");
  engine.calls[0].reply({ text: "Viewer done." });
  await finalFrame(viewer, "look");
  assert.deepEqual(await ask(h, other, engine, "peek"), { asked: 2 });
  engine.calls[2].reply({ text: "Peeked." });
  await finalFrame(other, "peek");
});

test("maxConcurrentViewerTurns lets more viewers' rounds run at once, still apart from the device's", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, { maxConcurrentViewerTurns: 2 });
  const dev = await h.open("vslot-3", "cbor");
  const viewer = await h.open("vslot-3", "json", "ws");
  const other = await h.open("vslot-3", "json", "ws");
  assert.deepEqual(await ask(h, viewer, engine, "a"), { asked: 0 });
  assert.deepEqual(await ask(h, other, engine, "b"), { asked: 1 });
  assert.deepEqual(await ask(h, viewer, engine, "c"), BUSY);
  assert.deepEqual(await ask(h, dev, engine, "d"), { asked: 2 });
  for (const call of engine.calls) call.reply({ text: "Done." });
  await finalFrame(viewer, "a");
  await finalFrame(other, "b");
  await finalFrame(dev, "d");
});

test("an approved turn waits for a slot of its own origin: a viewer's for the viewers', the device's for its own", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("vslot-4", "cbor");
  await h.send(dev, { channel: "hello", frame: { fw: "1.0" } });
  const viewer = await h.open("vslot-4", "json", "ws");
  const other = await h.open("vslot-4", "json", "ws");
  const viewerApproval = await askForAction(h, viewer, engine, "act");
  const deviceApproval = await askForAction(h, dev, engine, "act");
  assert.deepEqual(await ask(h, other, engine, "look"), { asked: 2 });
  assert.deepEqual(await ask(h, dev, engine, "busy"), { asked: 3 });
  // Both decided while each origin's one slot is taken: both turns are queued.
  await h.call("vslot-4", "resolveApproval", viewerApproval, true);
  await h.call("vslot-4", "resolveApproval", deviceApproval, true);
  await settle();
  assert.equal(engine.calls.length, 4);

  // The device's slot frees: its own turn resumes, not the viewer's, older as that is.
  engine.calls[3].reply({ text: "21 degrees." });
  await finalFrame(dev, "busy");
  const deviceResumed = await engine.call(4);
  await settle();
  assert.equal(engine.calls.length, 5, "the viewer's turn still waits for a viewers' slot");
  // The viewers' slot frees: the viewer's turn resumes, beside the device's running round.
  engine.calls[2].reply({ text: "Idle." });
  await finalFrame(other, "look");
  const viewerResumed = await engine.call(5);
  viewerResumed.reply({ text: "The door is open, viewer." });
  deviceResumed.reply({ text: "The door is open, device." });
  assert.equal((await finalFrame(viewer, "act")).fr, "stop");
  assert.equal((await finalFrame(dev, "act")).fr, "stop");
  assert.equal(viewer.frames("reason").filter((f) => f.fin !== true)[0]?.text, "The door is open, viewer.");
  assert.equal(
    dev.frames("reason").filter((f) => f.id === "act" && f.fin !== true)[0]?.text,
    "The door is open, device.",
  );
});

test("a viewer's waiting turn keeps its own id across a hibernation, then answers that viewer", async () => {
  const engine = scriptedEngine();
  const h = harness(engine, {}, { idleTimeoutMs: 1000 });
  const dev = await h.open("vslot-5", "cbor");
  const viewer = await h.open("vslot-5", "json", "ws");
  const approvalId = await askForAction(h, viewer, engine, "act");
  const before = h.runtime.stats().active;
  await h.clock.advance(5000);
  assert.ok(h.runtime.stats().active < before, "the agent hibernated");
  // Woken by the device's question under the same id: the turns read back from the database keep their askers.
  assert.deepEqual(await ask(h, dev, engine, "act"), { asked: 1 });
  assert.deepEqual(await ask(h, viewer, engine, "act"), BUSY);
  await h.call("vslot-5", "resolveApproval", approvalId, true);
  const resumed = await engine.call(2);
  resumed.reply({ text: "Opened for the viewer." });
  engine.calls[1].reply({ text: "Hello device." });
  assert.equal((await finalFrame(viewer, "act")).fr, "stop");
  assert.equal((await finalFrame(dev, "act")).fr, "stop");
  assert.equal(dev.frames("reason").filter((f) => f.fin !== true)[0]?.text, "Hello device.");
});

test("after a restart the device's waiting turn holds its id against the device, not against a new viewer", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("vslot-6", "cbor");
  const approvalId = await askForAction(h, dev, engine, "act");
  await h.restart();
  const back = await h.open("vslot-6", "cbor");
  const viewer = await h.open("vslot-6", "json", "ws");
  assert.deepEqual(await ask(h, back, engine, "act"), BUSY);
  assert.deepEqual(await ask(h, viewer, engine, "act"), { asked: 1 });
  engine.calls[1].reply({ text: "Viewer's." });
  await finalFrame(viewer, "act");
  await h.call("vslot-6", "resolveApproval", approvalId, true);
  (await engine.call(2)).reply({ text: "The door is open." });
  assert.equal((await finalFrame(back, "act")).fr, "stop");
  assert.equal(
    viewer.frames("reason").filter((f) => f.fin === true).length,
    1,
    "the device's answer is not the viewer's",
  );
});

test("the approvals listed say who asked, so two asked under one request id can be told apart", async () => {
  const engine = scriptedEngine();
  const h = harness(engine);
  const dev = await h.open("vslot-list", "cbor");
  const viewer = await h.open("vslot-list", "json", "ws");
  const fromViewer = await askForAction(h, viewer, engine, "1");
  const fromDevice = await askForAction(h, dev, engine, "1");
  const listed = (key: string) =>
    h.runtime.directory.list("approval").find((entry) => entry.key === key)?.value as
      | { requestId?: unknown; origin?: unknown }
      | undefined;
  assert.deepEqual([listed(fromViewer)?.requestId, listed(fromViewer)?.origin], ["1", "viewer"]);
  assert.deepEqual([listed(fromDevice)?.requestId, listed(fromDevice)?.origin], ["1", "device"]);
});
